"""``basinscope demo``: the showcase run on the embedded MNIST-1D, measured and reported.

Stages (each saved when finished and reused on a re-run with the same output directory and settings), every
training stage once per seed (``DemoConfig.seeds`` seeds from ``seed`` on):

1. **Case II** (SWA Revisited §5): SGD on the Fig. 9 schedule (C_h, linear decrease, C_l) with a short L, so it
   does not converge. Momentum 0 and weight decay 0 throughout, as §5.
2. **Case I**: the same schedule with a long L, to convergence (checked and reported: the full training loss
   at 90 % of L and at the end, its relative change, the full-batch gradient norm).
3. From each: SWA, DSWA and TSWA (Algorithms 1–3) with the same budget n (k rounds of n/k iterations) at the
   SWA rate ``swa_lr``; the same-budget SGD baseline is SGD continued for the same n iterations at the same
   rate — exactly the SWA run's last iterate (its last sample), so it costs no extra training.
4. SGD-SALR (SALR paper, Algorithm 3) against SGD from the same initial weights at an equal number of gradient
   calls (the sharpness probes' gradients counted, as the SALR paper compares methods).
5. Every solution evaluated for every seed (test and training accuracy/loss); the first seed's solutions also
   measured: ϕ(ε) (eq. 1), S(ε) (eq. 2), Ŝ(γ) (Definition 1), the top Hessian eigenvalue (Lanczos) and the
   trace (Hutchinson), on the same training objective.
6. First seed: the test-error plane through three SWA samples (SWA Revisited Fig. 6) with the SWA average
   marked and evaluated, the Case II SWA→DSWA and SWA→TSWA lines (Fig. 7) and the Case I SWA→DSWA line
   (Fig. 8).

Outputs in ``out_dir``: ``report.html``, ``results.json``, ``figures/``, ``checkpoints/`` (weights-only
state_dicts of every solution), ``surfaces/`` (saved surface results) and ``stages/``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..objective import Objective
from .config import DemoConfig
from .measure import convergence_check, evaluate_solution, measure_solution
from .stages import StageStore
from .summary import summarize
from .surfaces import demo_surfaces

__all__ = ["run_demo"]

CASES = {"case2": "Case II: SGD stopped before convergence", "case1": "Case I: SGD run to convergence"}
AVERAGING = {"swa": 1, "dswa": 2, "tswa": 3}
PLANE_RUN = ("case1", "swa")  # the run whose samples span the plane (SWA Revisited, Fig. 6)


def _history(res: Any, max_points: int = 2000) -> dict[str, list[float]]:
    """The run's per-iteration history as lists, thinned to at most ``max_points`` entries per series."""
    out: dict[str, list[float]] = {}
    for key in ("loss", "lr", "sharpness", "grad_calls"):
        if key in res.history:
            t = res.history[key].detach().cpu().double()
            step = max(1, -(-t.numel() // max_points))
            out[key] = t[::step].tolist()
            out.setdefault("iteration", list(range(0, t.numel(), step)))
    return out


class _Progress:
    """The outer bar over the demo's stages (inner bars belong to the training and measurement calls)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="basinscope demo", unit="stage", position=0, leave=True)

    def stage(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(name)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_demo(
    out_dir: str | os.PathLike = "basinscope-demo",
    *,
    quick: bool = False,
    seed: int = 0,
    progress: bool = True,
    reuse: bool = True,
    config: DemoConfig | None = None,
) -> dict[str, Any]:
    """Run the demo and write its report; see the module docstring for what it does.

    Args:
        out_dir: output directory (created; finished stages in it are reused).
        quick: small budgets (:meth:`DemoConfig.quick`), about a minute on 2 CPU cores.
        seed: the first seed (seeds ``seed … seed + cfg.seeds − 1``): initial weights, minibatch order and the
            estimators.
        progress: show progress bars (stderr).
        reuse: reuse finished stages found in ``out_dir`` (``False`` recomputes everything).
        config: explicit settings (overrides ``quick``).

    Returns:
        ``{"report": path, "json": path, "results": dict}``.

    Example:
        >>> out = run_demo("demo-out", quick=True, progress=False)  # doctest: +SKIP
        >>> out["results"]["summary"]["case2/swa"]["test_accuracy"]["mean"]  # doctest: +SKIP
        0.6...
    """
    cfg = config if config is not None else (DemoConfig.quick() if quick else DemoConfig())
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        # labelled quick when the settings are the quick ones (whatever the thread count)
        is_quick = dataclasses.replace(cfg, threads=1) == dataclasses.replace(DemoConfig.quick(), threads=1)
        return _run(out_dir, cfg, quick=is_quick, seed=seed, progress=progress, reuse=reuse)
    finally:
        torch.set_num_threads(threads)


def _run(out_dir, cfg: DemoConfig, *, quick: bool, seed: int, progress: bool, reuse: bool) -> dict[str, Any]:
    from ..data import mnist1d
    from ..models import build_model
    from .report import write_report

    t_start = time.perf_counter()
    out = Path(out_dir)
    seeds = [seed + i for i in range(cfg.seeds)]
    stores = {s: StageStore(out, cfg.fingerprint(s), reuse=reuse) for s in seeds}
    data = mnist1d()
    train_xy, test_xy = data.train, data.test
    # per seed: the training stages and one evaluation; then measure, plane, lines, report
    bar = _Progress(total=(9 + len(cfg.salr_max_ratios)) * len(seeds) + 4, enabled=progress)
    timings: dict[str, float] = {}
    training: dict[str, dict[str, dict[str, Any]]] = {}  # seed key -> stage name -> document
    weights: dict[str, dict[str, dict[str, torch.Tensor]]] = {}

    n_meas = min(cfg.measure_samples, len(train_xy[0]))
    x_m, y_m = train_xy[0][:n_meas], train_xy[1][:n_meas]

    def model_at(s: int, state: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
        torch.manual_seed(s)
        net = build_model(cfg.model, num_classes=data.num_classes)
        if state is not None:
            net.load_state_dict(state)
        return net

    net0 = model_at(seed)
    obj = Objective(net0, F.cross_entropy, [(x_m[i : i + 1000], y_m[i : i + 1000]) for i in range(0, n_meas, 1000)])
    full = Objective(net0, F.cross_entropy, [(train_xy[0], train_xy[1])])
    test_obj = Objective(net0, F.cross_entropy, [(test_xy[0], test_xy[1])])

    for s in seeds:
        _train_seed(
            s,
            seeds[0],
            cfg,
            stores[s],
            model_at,
            train_xy,
            test_xy,
            full,
            test_obj,
            progress,
            bar,
            timings,
            training,
            weights,
        )

    # ---- 5: evaluate every seed's solutions; measure the first seed's
    per_seed: dict[str, dict[str, dict[str, Any]]] = {}
    solutions: dict[str, dict[str, Any]] = {}
    for s in seeds:
        key, store = f"seed{s}", stores[s]
        bar.stage(f"evaluate {key}")
        per_seed[key] = {}
        for name, doc in training[key].items():
            if "diverged" in doc:
                per_seed[key][name] = {"diverged": doc["diverged"]}
                continue
            ev = store.load(f"{key}/evaluate/{name}")
            if ev is None:
                params = {k: weights[key][name][k] for k in obj.names}
                ev = evaluate_solution(obj, test_obj, params)
                store.save(f"{key}/evaluate/{name}", ev)
            per_seed[key][name] = {**ev, "gradient_calls": doc["gradient_calls"], "iterations": doc["iterations"]}
        bar.done()
    bar.stage("measure")
    first = f"seed{seeds[0]}"
    for name, doc in training[first].items():
        if "diverged" in doc:
            continue
        m = stores[seeds[0]].load(f"{first}/measure/{name}")
        if m is None:
            t0 = time.perf_counter()
            params = {k: weights[first][name][k] for k in obj.names}
            m = measure_solution(obj, test_obj, params, cfg, seed=seeds[0])
            m["seconds"] = time.perf_counter() - t0
            stores[seeds[0]].save(f"{first}/measure/{name}", m)
        timings[f"measure {name} ({first})"] = m["seconds"]
        solutions[name] = {
            **{k: v for k, v in m.items() if k != "seconds"},
            "gradient_calls": doc["gradient_calls"],
            "iterations": doc["iterations"],
            **({"averaging_iterations": doc["averaging_iterations"]} if "averaging_iterations" in doc else {}),
        }
    bar.done()

    # ---- 6: surfaces of the first seed
    w0 = weights[first]
    samples_kept = [stores[seeds[0]].load_weights(f"{first}/{PLANE_RUN[0]}/{PLANE_RUN[1]}-sample{i}") for i in range(3)]
    surfaces = demo_surfaces(
        obj, test_obj, samples_kept, w0, cfg, out / "surfaces", stores[seeds[0]], first, progress, bar, timings
    )

    # ---- report
    bar.stage("report")
    results = {
        "title": "basinscope demo: SWA, DSWA, TSWA and SALR on MNIST-1D",
        "quick": quick,
        "seed": seeds[0],
        "seeds": seeds,
        "test_samples": len(test_xy[0]),
        "train_samples": len(train_xy[0]),
        "measure_samples": n_meas,
        "config": cfg.as_dict(),
        "machine": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
            "device": "cpu",
        },
        "solutions": solutions,
        "per_seed": per_seed,
        "summary": summarize(per_seed),
        "convergence": {
            key: {c: training[key][f"{c}/sgd"]["convergence"] for c in CASES} for key in (f"seed{s}" for s in seeds)
        },
        "training": {
            key: {n: {k: v for k, v in d.items() if k != "history"} for n, d in docs.items()}
            for key, docs in training.items()
        },
        "histories": {n: d["history"] for n, d in training[first].items() if "history" in d},
        "surfaces": {k: v["json"] for k, v in surfaces.items()},
        "seconds": timings,
    }
    results["wall_seconds"] = time.perf_counter() - t_start
    paths = write_report(out, results, {k: v["result"] for k, v in surfaces.items()})
    bar.done()
    bar.close()
    return {**paths, "results": results}


def _train_seed(
    s, first_seed, cfg, store, model_at, train_xy, test_xy, full, test_obj, progress, bar, timings, training, weights
) -> None:
    """The ten training stages of seed ``s`` (and the same-budget SGD baselines they yield)."""
    from ..optim import swa_rounds, train
    from ..optim.runner import NonFiniteLossError

    key = f"seed{s}"
    training[key], weights[key] = {}, {}
    init_state = {k: v.clone() for k, v in model_at(s).state_dict().items()}
    common = dict(batch_size=cfg.batch_size, seed=s, test_data=test_xy, progress=progress)
    sgd_opts = dict(momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    def run_stage(name: str, fn) -> None:
        bar.stage(f"{key} {name}")
        doc = store.load(f"{key}/{name}")
        if doc is None:
            t0 = time.perf_counter()
            doc, state = fn()
            doc["seconds"] = time.perf_counter() - t0
            store.save(f"{key}/{name}", doc, state)
        training[key][name] = doc
        weights[key][name] = store.load_weights(f"{key}/{name}")
        timings[f"train {name} ({key})"] = doc["seconds"]
        bar.done()

    def finish(res: Any, net: torch.nn.Module, **extra: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        doc = {
            "method": res.method,
            "iterations": int(res.iterations),
            "gradient_calls": int(res.grad_calls),
            "test": dict(res.test),
            "history": _history(res),
            **extra,
        }
        return doc, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}

    # ---- 1-2: SGD on the Fig. 9 schedule, short L (Case II) and long L (Case I), with the convergence check
    def sgd_case(iterations: int):
        def fn():
            net = model_at(s, init_state)
            at90: dict[str, float] = {}
            mark = round(0.9 * iterations)

            def cb(it: int, info: dict[str, Any]) -> None:
                if it == mark:
                    at90["loss"] = full.evaluate({n: p.detach() for n, p in net.named_parameters()})["loss"]

            res = train(
                "sgd",
                net,
                train_xy,
                budget=iterations,
                lr=cfg.lr_high,
                lr_low=cfg.lr_low,
                schedule="pre_swa",
                callback=cb,
                **sgd_opts,
                **common,
            )
            params = {n: p.detach() for n, p in net.named_parameters()}
            check = convergence_check(full, params, at90.get("loss", float("nan")), res.history["loss"])
            return finish(res, net, schedule="pre_swa", convergence=check)

        return fn

    run_stage("case2/sgd", sgd_case(cfg.case2_iterations))
    run_stage("case1/sgd", sgd_case(cfg.case1_iterations))

    # ---- 3: SWA, DSWA, TSWA from each SGD solution, equal budgets n; SWA's last iterate = SGD continued
    for case in CASES:
        for method, k in AVERAGING.items():

            def fn(case=case, method=method, k=k):
                net = model_at(s, weights[key][f"{case}/sgd"])
                res = swa_rounds(
                    net, train_xy, k=k, n=cfg.swa_iterations, c=cfg.swa_cycle, lr=cfg.swa_lr, **sgd_opts, **common
                )
                # every sample's and every round average's test accuracy, beside the final average's
                extra: dict[str, Any] = {
                    "sample_test_accuracy": [test_obj.evaluate(p)["accuracy"] for p in res.samples],
                    "sample_rounds": list(res.sample_rounds),
                    "round_average_test_accuracy": [test_obj.evaluate(p)["accuracy"] for p in res.round_averages],
                }
                if k == 1:  # saved before this stage: a finished SWA stage always has its baseline
                    last = dict(net.state_dict())
                    last.update(res.samples[-1])
                    base = {
                        "method": "sgd",
                        "iterations": int(res.iterations),
                        "gradient_calls": int(res.grad_calls),
                        "test": {},
                        "history": _history(res),
                        "lr": cfg.swa_lr,
                        "continued_from": f"{case}/sgd",
                        "seconds": 0.0,
                    }
                    store.save(f"{key}/{case}/sgd-continued", base, {n: v.detach().clone() for n, v in last.items()})
                if s == first_seed and (case, method) == PLANE_RUN:  # three samples for the plane
                    picks = [0, len(res.samples) // 2, len(res.samples) - 1]
                    for i, j in enumerate(picks):
                        store.save(f"{key}/{case}/{method}-sample{i}", {"index": j}, res.samples[j])
                    extra["plane_samples"] = picks
                return finish(
                    res,
                    net,
                    rounds=k,
                    averaging_iterations=cfg.swa_iterations,
                    samples=len(res.samples),
                    swa_lr=cfg.swa_lr,
                    **extra,
                )

            run_stage(f"{case}/{method}", fn)
            if k == 1:
                training[key][f"{case}/sgd-continued"] = store.load(f"{key}/{case}/sgd-continued")
                weights[key][f"{case}/sgd-continued"] = store.load_weights(f"{key}/{case}/sgd-continued")

    # ---- 4: SGD vs SGD-SALR at an equal number of gradient calls, from the same initial weights
    def equal(method: str, **options: Any):
        def fn():
            net = model_at(s, init_state)
            try:
                res = train(
                    method,
                    net,
                    train_xy,
                    budget=cfg.salr_gradient_calls,
                    lr=cfg.salr_lr,
                    **sgd_opts,
                    **options,
                    **common,
                )
            except NonFiniteLossError as e:  # reported as such, never as a solution
                doc = {"method": method, "diverged": str(e), "iterations": None, "gradient_calls": None, "history": {}}
                return doc, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            return finish(res, net)

        return fn

    run_stage("equal-budget/sgd", equal("sgd"))
    salr = dict(c=cfg.salr_every, gamma=cfg.salr_gamma, n_descent=cfg.salr_steps, n_ascent=cfg.salr_steps)
    for r in cfg.salr_max_ratios:
        run_stage(salr_name(r), equal("salr-sgd", min_ratio=cfg.salr_min_ratio, max_ratio=float(r), **salr))


def salr_name(max_ratio: float) -> str:
    """Stage name of the SGD-SALR run with rate bound ``max_ratio`` (``inf``: Algorithm 1 unbounded)."""
    return "equal-budget/salr-sgd" if max_ratio == float("inf") else f"equal-budget/salr-sgd-max{max_ratio:g}"
