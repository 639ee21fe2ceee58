"""Paper experiments: each table or figure reproduced is a function returning an :class:`ExperimentResult`.

An experiment is registered under a name with :func:`register`; :func:`run_experiment` runs it (the demo report
and ``basinscope reproduce NAME`` call it). Every experiment function has the signature::

    fn(*, seeds: Sequence[int], size: str, out_dir: Path, progress: bool) -> ExperimentResult

and must be resumable: finished pieces (one training run per method and seed) are kept under ``out_dir``
(see :class:`basinscope.demo.stages.StageStore`) so an interrupted call, re-run with the same arguments, reuses
them and ends with the identical result. ``size`` is one of :data:`SIZES`: ``"quick"`` is a small setting the
tests run (its numbers are not evidence and the report says so), ``"demo"`` the setting ``basinscope demo`` uses
(the whole demo within 20 minutes on 2 cores), ``"full"`` the study as the paper runs it (``basinscope
reproduce``). An experiment may also register a figure maker with :func:`register_figures`:
``figures(result, folder) -> dict[str, Path]`` (title → image written into ``folder``).

Solutions for the demo's measurements: an experiment may put ``numbers["checkpoints"]`` = {solution name: weights
file of its first seed, relative to the parent of ``out_dir``} in its result; ``basinscope demo`` measures every
one of them (sharpness, Hessian) and draws the plane through the ``case1/swa-sample0..2`` files when present.

``basinscope reproduce NAME`` is :func:`reproduce`: it runs the experiments, draws their figures and writes a page
whose verdict table comes first (:mod:`basinscope.experiments.page`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .._checks import check_choice, check_int, fail
from .result import Claim, ExperimentResult, claim
from .stats import Interval, paired_difference, spread_difference, verdict

__all__ = [
    "EXPERIMENTS",
    "Claim",
    "ExperimentResult",
    "Interval",
    "available",
    "claim",
    "make_figures",
    "paired_difference",
    "register",
    "register_figures",
    "reproduce",
    "run_experiment",
    "spread_difference",
    "verdict",
]

ExperimentFn = Callable[..., ExperimentResult]

#: name → experiment function (filled by :func:`register` in the experiment modules).
EXPERIMENTS: dict[str, ExperimentFn] = {}

FigureFn = Callable[[ExperimentResult, Path], dict[str, Path]]

#: name → figure maker of that experiment's result (filled by :func:`register_figures`).
FIGURES: dict[str, FigureFn] = {}

SIZES = ("quick", "demo", "full")

DEFAULT_SEEDS = (0, 1, 2, 3, 4)


def register(name: str) -> Callable[[ExperimentFn], ExperimentFn]:
    """Decorator: make ``fn`` available as ``run_experiment(name)`` and ``basinscope reproduce name``."""

    def deco(fn: ExperimentFn) -> ExperimentFn:
        if name in EXPERIMENTS:
            raise RuntimeError(f"experiment {name!r} registered twice")
        EXPERIMENTS[name] = fn
        return fn

    return deco


def register_figures(name: str) -> Callable[[FigureFn], FigureFn]:
    """Decorator: ``fn(result, folder) -> {title: path}`` draws experiment ``name``'s figures."""

    def deco(fn: FigureFn) -> FigureFn:
        FIGURES[name] = fn
        return fn

    return deco


def _load_all() -> None:
    """Import the experiment modules (each registers its experiments)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name not in ("result", "stats", "page"):
            importlib.import_module(f"{__name__}.{info.name}")


def run_experiment(
    name: str,
    *,
    seeds: Sequence[int] | int = DEFAULT_SEEDS,
    size: str = "full",
    out_dir: str | os.PathLike = "basinscope-reproduce",
    progress: bool = True,
) -> ExperimentResult:
    """Run (or resume) experiment ``name`` at ``size`` with ``seeds`` (a list, or a count n: seeds 0..n−1).

    The result is also saved as ``out_dir/NAME/result.json``.
    """
    _load_all()
    check_choice("name", name, sorted(EXPERIMENTS))
    check_choice("size", size, SIZES)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = list(range(check_int("seeds", seeds, minimum=2)))
    seeds = list(seeds)
    if len(seeds) < 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        fail("seeds", "at least 2 non-negative integer seeds", seeds)
    if len(set(seeds)) != len(seeds):
        fail("seeds", "distinct seeds", seeds)
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    res = EXPERIMENTS[name](seeds=seeds, size=size, out_dir=folder, progress=progress)
    if res.wall_s == 0.0:
        import dataclasses

        res = dataclasses.replace(res, wall_s=time.perf_counter() - start)
    res.save(folder / "result.json")
    return res


def available() -> list[str]:
    """The registered experiment names (every experiment module imported)."""
    _load_all()
    return sorted(EXPERIMENTS)


def make_figures(result: ExperimentResult, folder: str | os.PathLike) -> dict[str, Path]:
    """Draw ``result``'s figures into ``folder`` with its experiment's figure maker (``{}`` when it has none)."""
    _load_all()
    fn = FIGURES.get(result.name)
    if fn is None:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    Path(folder).mkdir(parents=True, exist_ok=True)
    return fn(result, Path(folder))


def reproduce(
    names: Sequence[str],
    *,
    seeds: Sequence[int] | int = DEFAULT_SEEDS,
    size: str = "full",
    out_dir: str | os.PathLike = "basinscope-reproduce",
    progress: bool = True,
) -> dict[str, object]:
    """Run (or resume) every experiment in ``names``; write each ``out_dir/NAME/result.json``, the figures
    under ``out_dir/figures`` and the page ``out_dir/index.html`` (verdict table first).

    Returns ``{"page": path, "results": {name: ExperimentResult}, "figures": {name: {title: path}}}``.

    Example:
        >>> out = reproduce(["swa-line"], seeds=2, size="quick", out_dir="repro")  # doctest: +SKIP
        >>> out["results"]["swa-line"].claims[0].verdict  # doctest: +SKIP
        'inconclusive'
    """
    import platform

    from .page import write_page

    _load_all()
    if isinstance(names, str) or not names:
        fail("names", "a non-empty list of experiment names", names)
    for name in names:
        check_choice("name", name, sorted(EXPERIMENTS))
    out = Path(out_dir)
    results = {n: run_experiment(n, seeds=seeds, size=size, out_dir=out, progress=progress) for n in names}
    figures = {n: make_figures(r, out / "figures") for n, r in results.items()}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    wall = sum(r.wall_s for r in results.values())
    subtitle = f"size {size} · {platform.platform()} · {stamp} · computed in {wall:.0f} s (reused parts count 0)"
    page = write_page(list(results.values()), out, figures, subtitle=subtitle)
    return {"page": page, "results": results, "figures": figures}
