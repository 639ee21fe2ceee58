"""``basinscope demo``: the paper experiments at demo size on the embedded MNIST-1D, measured, as one report.

Steps (each resumable: re-running with the same output directory reuses every finished piece):

1. Every experiment named in :attr:`DemoConfig.experiments` (by default the SWA Revisited experiments
   ``swa-case2``, ``swa-case1``, ``swa-line`` and the SALR experiments ``salr-budget``, ``salr-table2``) runs
   through :func:`basinscope.experiments.run_experiment` at size ``"demo"`` (``"quick"`` for ``--quick``) with
   ``DemoConfig.seeds`` seeds, into ``out_dir/experiments``; a name not registered in this installation is
   skipped and the report says so. Their claims, intervals, verdicts and figures are the report's numbers:
   nothing in the verdict table is computed outside the experiments.
2. The first seed's solutions that the experiments expose (``result.numbers["checkpoints"]``: name → weights
   file relative to the experiments folder) are measured on one training objective: ϕ(ε) (SALR eq. 1), S(ε)
   (eq. 2), Ŝ(γ) (Definition 1), the top Hessian eigenvalue (Lanczos), the trace (Hutchinson).
3. The test-error plane through three samples of the first seed's Case I SWA run (SWA Revisited Fig. 6), with
   the SWA average marked and every marked point evaluated at its own weights.

Outputs in ``out_dir``: ``report.html``, ``results.json``, ``figures/``, ``experiments/`` (each experiment's
``result.json`` and kept runs), ``surfaces/`` and ``stages/`` (the measurements).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .._progress import progress as progress_bar
from .._threads import torch_threads
from ..objective import Objective
from .config import DemoConfig
from .measure import measure_solution
from .stages import StageStore
from .surfaces import demo_plane

__all__ = ["run_demo"]

PLANE_RUN = "case1/swa"  # the run whose samples span the plane (SWA Revisited, Fig. 6)


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
        out_dir: output directory (created; finished pieces in it are reused).
        quick: the quick settings (:meth:`DemoConfig.quick`, experiments at size ``"quick"``): under a minute on
            2 CPU cores, numbers not evidence.
        seed: the first seed (seeds ``seed … seed + cfg.seeds − 1``).
        progress: show progress bars (stderr).
        reuse: reuse finished pieces found in ``out_dir`` (``False`` deletes the demo's own folders in it first).
        config: explicit settings (overrides ``quick``).

    Returns:
        ``{"report": path, "json": path, "results": dict}``.

    Example:
        >>> out = run_demo("demo-out", quick=True, progress=False)  # doctest: +SKIP
        >>> out["results"]["claims"][0]["verdict"]  # doctest: +SKIP
        'inconclusive'
    """
    cfg = config if config is not None else (DemoConfig.quick() if quick else DemoConfig())
    with torch_threads(cfg.threads):
        return _run(Path(out_dir), cfg, seed=seed, progress=progress, reuse=reuse)


def _run(out: Path, cfg: DemoConfig, *, seed: int, progress: bool, reuse: bool) -> dict[str, Any]:
    from .. import experiments as ex
    from ..data import mnist1d
    from ..models import build_model
    from .report import write_report

    t_start = time.perf_counter()
    if not reuse:
        for sub in ("experiments", "stages", "checkpoints", "surfaces", "figures"):
            shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [seed + i for i in range(cfg.seeds)]
    size = cfg.size
    registered = ex.available()
    timings: dict[str, float] = {}

    # ---- 1: the experiments
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    figures: dict[str, dict[str, Path]] = {}
    bar = progress_bar(total=len(cfg.experiments) + 2, desc="basinscope demo", unit="step", enabled=progress)
    for name in cfg.experiments:
        bar.set_postfix_str(name)
        if name not in registered:
            skipped[name] = "not registered in this installation (see basinscope reproduce --list)"
            bar.update(1)
            continue
        t0 = time.perf_counter()
        res = ex.run_experiment(name, seeds=seeds, size=size, out_dir=out / "experiments", progress=progress)
        timings[f"experiment {name}"] = time.perf_counter() - t0
        results[name] = res
        figures[name] = ex.make_figures(res, out / "figures")
        bar.update(1)

    # ---- 2: measure the first seed's solutions the experiments expose
    bar.set_postfix_str("measure")
    data = mnist1d()
    n_meas = min(cfg.measure_samples, len(data.train[0]))
    x_m, y_m = data.train[0][:n_meas], data.train[1][:n_meas]
    torch.manual_seed(seeds[0])
    net = build_model(cfg.model, num_classes=data.num_classes)
    obj = Objective(net, F.cross_entropy, [(x_m[i : i + 1000], y_m[i : i + 1000]) for i in range(0, n_meas, 1000)])
    test_obj = Objective(net, F.cross_entropy, [data.test])
    store = StageStore(out, cfg.fingerprint(seeds[0]), reuse=True)
    paths = {
        sol: out / "experiments" / rel
        for res in results.values()
        for sol, rel in res.numbers.get("checkpoints", {}).items()
    }
    solutions: dict[str, dict[str, Any]] = {}
    for sol, path in paths.items():
        if "-sample" in sol:
            continue
        m = store.load(f"measure/{sol}")
        if m is None:
            t0 = time.perf_counter()
            state = _load(path)
            m = measure_solution(obj, test_obj, {k: state[k] for k in obj.names}, cfg, seed=seeds[0])
            m["seconds"] = time.perf_counter() - t0
            store.save(f"measure/{sol}", m)
        timings[f"measure {sol}"] = m["seconds"]
        solutions[sol] = m
    bar.update(1)

    # ---- 3: the plane through three SWA samples of the first seed's Case I run
    bar.set_postfix_str("plane")
    plane = None
    samples = [paths.get(f"{PLANE_RUN}-sample{i}") for i in range(3)]
    if all(p is not None for p in samples) and PLANE_RUN in paths:
        states = [_load(p) for p in samples]
        plane = demo_plane(
            obj, test_obj, states, _load(paths[PLANE_RUN]), cfg, out / "surfaces", store, progress, timings
        )
    bar.update(1)
    bar.close()

    doc = {
        "title": "basinscope demo: SWA Revisited and SALR experiments on MNIST-1D, measured",
        "size": size,
        "seed": seeds[0],
        "seeds": seeds,
        "config": cfg.as_dict(),
        "machine": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
            "device": "cpu",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "experiments": {name: res.to_dict() for name, res in results.items()},
        "skipped": skipped,
        "claims": [c for res in results.values() for c in res.to_dict()["claims"]],
        "measure_samples": n_meas,
        "solutions": solutions,
        "plane": None if plane is None else plane["json"],
        "seconds": timings,
    }
    doc["wall_seconds"] = time.perf_counter() - t_start
    out_paths = write_report(out, doc, results, figures, None if plane is None else plane["result"])
    return {**out_paths, "results": doc}


def _load(path: Path) -> dict[str, torch.Tensor]:
    from ..checkpoint import load_state_dict

    return load_state_dict(path)
