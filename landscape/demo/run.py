"""``landscape demo``: the showcase run on the embedded MNIST-1D, measured and reported.

Stages (each saved when finished and reused on a re-run with the same output directory and settings):

1. **Case II** (SWA Revisited, §4): SGD at the constant rate C_h, stopped before convergence.
2. **Case I**: SGD under the pre-SWA schedule (C_h, linear decrease, C_l; SWA Revisited Fig. 9), to convergence.
3. From each: SWA, DSWA and TSWA (Algorithms 1–3) with the same budget n (k rounds of n/k iterations).
4. SGD-SALR (SALR paper, Algorithm 3) against SGD from the same initial weights at an equal number of gradient
   calls (the sharpness probes' gradients counted, as the SALR paper compares methods).
5. Every solution measured: test accuracy, ϕ(ε) (eq. 1), S(ε) (eq. 2), Ŝ(γ) (Definition 1), the top Hessian
   eigenvalue (Lanczos) and the trace (Hutchinson), on the same training objective.
6. The test-error plane through three SWA samples (SWA Revisited Fig. 6) and the SWA↔DSWA line (Figs. 7–8).

Outputs in ``out_dir``: ``report.html``, ``results.json``, ``figures/``, ``checkpoints/`` (weights-only
state_dicts of every solution), ``surfaces/`` (saved surface results) and ``stages/``.
"""

from __future__ import annotations

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
from .measure import measure_solution
from .stages import StageStore

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

            self.bar = tqdm(total=total, desc="landscape demo", unit="stage", position=0, leave=True)

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
    out_dir: str | os.PathLike = "landscape-demo",
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
        quick: small budgets (:meth:`DemoConfig.quick`), under 2 minutes on 2 CPU cores.
        seed: seeds the initial weights, the minibatch order and every estimator.
        progress: show progress bars (stderr).
        reuse: reuse finished stages found in ``out_dir`` (``False`` recomputes everything).
        config: explicit settings (overrides ``quick``).

    Returns:
        ``{"report": path, "json": path, "results": dict}``.

    Example:
        >>> out = run_demo("demo-out", quick=True, progress=False)  # doctest: +SKIP
        >>> out["results"]["solutions"]["case1/swa"]["test_accuracy"]  # doctest: +SKIP
        0.6...
    """
    cfg = config if config is not None else (DemoConfig.quick() if quick else DemoConfig())
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _run(out_dir, cfg, quick=quick and config is None, seed=seed, progress=progress, reuse=reuse)
    finally:
        torch.set_num_threads(threads)


def _run(out_dir, cfg: DemoConfig, *, quick: bool, seed: int, progress: bool, reuse: bool) -> dict[str, Any]:
    from ..data import mnist1d
    from ..models import build_model
    from ..optim import swa_rounds, train
    from .report import write_report

    t_start = time.perf_counter()
    out = Path(out_dir)
    store = StageStore(out, cfg.fingerprint(seed), reuse=reuse)
    data = mnist1d()
    train_xy, test_xy = data.train, data.test
    bar = _Progress(total=14, enabled=progress)  # 10 training stages, measure, plane, line, report
    timings: dict[str, float] = {}
    training: dict[str, dict[str, Any]] = {}
    weights: dict[str, dict[str, torch.Tensor]] = {}

    def model_at(state: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
        torch.manual_seed(seed)
        net = build_model(cfg.model, num_classes=data.num_classes)
        if state is not None:
            net.load_state_dict(state)
        return net

    init_state = {k: v.clone() for k, v in model_at().state_dict().items()}
    common = dict(batch_size=cfg.batch_size, seed=seed, test_data=test_xy, progress=progress)

    def run_stage(name: str, fn) -> None:
        bar.stage(name)
        doc = store.load(name)
        if doc is None:
            t0 = time.perf_counter()
            doc, state = fn()
            doc["seconds"] = time.perf_counter() - t0
            store.save(name, doc, state)
        training[name] = doc
        weights[name] = store.load_weights(name)
        timings[f"train {name}"] = doc["seconds"]
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

    # ---- 1-2: SGD, Case II (constant C_h, stopped early) and Case I (pre-SWA schedule, to convergence)
    def sgd_case(iterations: int, schedule: str):
        def fn():
            net = model_at(init_state)
            res = train(
                "sgd",
                net,
                train_xy,
                budget=iterations,
                lr=cfg.lr_high,
                lr_low=cfg.lr_low,
                schedule=schedule,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
                **common,
            )
            return finish(res, net, schedule=schedule)

        return fn

    run_stage("case2/sgd", sgd_case(cfg.case2_iterations, "constant"))
    run_stage("case1/sgd", sgd_case(cfg.case1_iterations, "pre_swa"))

    # ---- 3: SWA, DSWA, TSWA from each SGD solution, equal budgets n
    for case in CASES:
        for method, k in AVERAGING.items():

            def fn(case=case, method=method, k=k):
                net = model_at(weights[f"{case}/sgd"])
                res = swa_rounds(
                    net,
                    train_xy,
                    k=k,
                    n=cfg.swa_iterations,
                    c=cfg.swa_cycle,
                    lr=cfg.swa_lr,
                    momentum=cfg.momentum,
                    weight_decay=cfg.weight_decay,
                    **common,
                )
                extra: dict[str, Any] = {}
                if (case, method) == PLANE_RUN:  # keep three samples for the plane (saved before the stage)
                    picks = [0, len(res.samples) // 2, len(res.samples) - 1]
                    for i, j in enumerate(picks):
                        store.save(f"{case}/{method}-sample{i}", {"index": j}, res.samples[j])
                    extra["plane_samples"] = picks
                return finish(
                    res, net, rounds=k, averaging_iterations=cfg.swa_iterations, samples=len(res.samples), **extra
                )

            run_stage(f"{case}/{method}", fn)
    samples_kept = [store.load_weights(f"{PLANE_RUN[0]}/{PLANE_RUN[1]}-sample{i}") for i in range(3)]

    # ---- 4: SGD vs SGD-SALR at an equal number of gradient calls, from the same initial weights
    def equal(method: str, **options: Any):
        def fn():
            net = model_at(init_state)
            res = train(
                method,
                net,
                train_xy,
                budget=cfg.salr_gradient_calls,
                lr=cfg.salr_lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
                **options,
                **common,
            )
            return finish(res, net)

        return fn

    run_stage("equal-budget/sgd", equal("sgd"))
    run_stage(
        "equal-budget/salr-sgd",
        equal("salr-sgd", c=cfg.salr_every, gamma=cfg.salr_gamma, n_descent=cfg.salr_steps, n_ascent=cfg.salr_steps),
    )

    # ---- 5: measure every solution on the same objective
    net = model_at(init_state)
    n_meas = min(cfg.measure_samples, len(train_xy[0]))
    x_m, y_m = train_xy[0][:n_meas], train_xy[1][:n_meas]
    obj = Objective(net, F.cross_entropy, [(x_m[i : i + 1000], y_m[i : i + 1000]) for i in range(0, n_meas, 1000)])
    test_obj = Objective(net, F.cross_entropy, [(test_xy[0], test_xy[1])])
    names = list(training)
    solutions: dict[str, dict[str, Any]] = {}
    bar.stage("measure")
    measure_bar = None
    if progress:
        from tqdm.auto import tqdm

        measure_bar = tqdm(total=len(names), desc="measure solutions", unit="solution", leave=False, position=1)
    for name in names:
        doc = store.load(f"measure/{name}")
        if doc is None:
            t0 = time.perf_counter()
            params = {k: weights[name][k] for k in obj.names}
            doc = measure_solution(obj, test_obj, params, cfg, seed=seed)
            doc["seconds"] = time.perf_counter() - t0
            store.save(f"measure/{name}", doc)
        t = training[name]
        solutions[name] = {
            **{k: v for k, v in doc.items() if k != "seconds"},
            "gradient_calls": t["gradient_calls"],
            "iterations": t["iterations"],
            **({"averaging_iterations": t["averaging_iterations"]} if "averaging_iterations" in t else {}),
        }
        timings[f"measure {name}"] = doc["seconds"]
        if measure_bar is not None:
            measure_bar.update(1)
    if measure_bar is not None:
        measure_bar.close()
    bar.done()

    # ---- 6: the test-error plane through three SWA samples and the SWA <-> DSWA line
    surfaces = _surfaces(obj, test_obj, samples_kept, weights, cfg, out / "surfaces", store, progress, bar, timings)

    # ---- report
    bar.stage("report")
    results = {
        "title": "landscape demo: SWA, DSWA, TSWA and SALR on MNIST-1D",
        "quick": quick,
        "seed": seed,
        "config": cfg.as_dict(),
        "machine": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
            "device": "cpu",
        },
        "solutions": solutions,
        "training": {n: {k: v for k, v in d.items() if k != "history"} for n, d in training.items()},
        "histories": {n: d["history"] for n, d in training.items() if "history" in d},
        "surfaces": {k: v["json"] for k, v in surfaces.items()},
        "seconds": timings,
    }
    results["wall_seconds"] = time.perf_counter() - t_start
    paths = write_report(out, results, {k: v["result"] for k, v in surfaces.items()})
    bar.done()
    bar.close()
    return {**paths, "results": results}


def _surfaces(obj, test_obj, samples, weights, cfg, folder, store, progress, bar, timings) -> dict[str, Any]:
    """Plane through three SWA samples of the Case I SWA run, and the line from SWA to DSWA (Case I)."""
    import numpy as np

    from .. import surface
    from ..surface import Surface1D, Surface2D

    out: dict[str, Any] = {}
    folder.mkdir(parents=True, exist_ok=True)
    names = obj.names

    def params(state):
        return {k: state[k] for k in names}

    bar.stage("plane")
    plane_path = folder / "plane"
    t0 = time.perf_counter()
    if store.load("surface/plane") is not None and plane_path.with_suffix(".npz").is_file():
        plane = Surface2D.load(plane_path)
    else:
        swa_avg = params(weights["case1/swa"])
        plane = surface.plane(
            obj,
            *[params(s) for s in samples],
            test=test_obj,
            resolution=cfg.plane_resolution,
            labels=("sample 1", "sample 2", "sample 3"),
            marks={"SWA": swa_avg},
            store=folder / "plane-store",
            progress=progress,
        )
        plane.save(plane_path)
        store.save("surface/plane", {"seconds": time.perf_counter() - t0})
    timings["surface plane"] = plane.seconds
    bar.done()
    out["plane"] = {
        "result": plane,
        "json": {
            "alphas": plane.alphas,
            "betas": plane.betas,
            "train_loss": plane.train_loss,
            "test_error": plane.test_error,
            "points": plane.points,
            "point_labels": plane.point_labels,
            "seconds": plane.seconds,
        },
    }

    bar.stage("line")
    line_path = folder / "line"
    if store.load("surface/line") is not None and line_path.with_suffix(".npz").is_file():
        line = Surface1D.load(line_path)
    else:
        t0 = time.perf_counter()
        line = surface.line(
            obj,
            params(weights["case1/swa"]),
            params(weights["case1/dswa"]),
            test=test_obj,
            ts=np.linspace(-0.5, 1.5, cfg.line_points),
            labels=("SWA", "DSWA"),
            store=folder / "line-store",
            progress=progress,
        )
        line.save(line_path)
        store.save("surface/line", {"seconds": time.perf_counter() - t0})
    timings["surface line"] = line.seconds
    bar.done()
    out["line"] = {
        "result": line,
        "json": {
            "ts": line.ts,
            "train_loss": line.train_loss,
            "test_error": line.test_error,
            "labels": line.point_labels,
            "seconds": line.seconds,
        },
    }
    return out
