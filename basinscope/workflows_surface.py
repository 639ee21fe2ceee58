"""The ``basinscope surface`` jobs as functions: planes, lines and mode-connecting curves from checkpoint files.

:func:`surface_run` (plane through three checkpoints, line between two, or a line/plane through one along random,
Hessian or PCA directions) and :func:`curve_run` (a Bézier curve or polygonal chain between two checkpoints, with
the straight line beside it) load the checkpoints, data and model from their specs, call
:mod:`basinscope.surface`, and write the result (npz + json) with a matplotlib PNG and a self-contained plotly page.
Both resume from ``out_dir/store``. Re-exported by :mod:`basinscope.workflows`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._checks import check_choice, check_device, check_int, check_positive, fail
from .objective import Objective

__all__ = ["curve_run", "surface_run"]


def _surface_summary(surf: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": surf.kind, "seconds": surf.seconds, "labels": list(surf.point_labels)}
    for m in ("train_loss", "train_error", "test_loss", "test_error"):
        v = getattr(surf, m)
        if v is not None:
            arr = np.asarray(v, dtype=np.float64)
            out[m] = {"min": float(np.nanmin(arr)), "max": float(np.nanmax(arr))}
    return out


def _surface_inputs(
    checkpoints: Sequence[str | os.PathLike],
    model: str,
    data: str,
    *,
    recompute_bn: bool,
    keep_buffers: bool,
    train_samples: int | None,
    test_samples: int | None,
    batch_size: int,
    device: torch.device | str | None,
) -> tuple[list[dict[str, torch.Tensor]], Objective, Objective]:
    """Load checkpoints, data and model for a surface command: (points, train objective, test objective).

    Full state_dicts are loaded into the model (every key and shape checked); with ``keep_buffers`` their buffers
    are part of the returned points (they move along a line or plane). Parameter-only files need ``recompute_bn``
    for a model with buffers."""
    from .checkpoint import load_into, load_params, load_state_dict
    from .specs import resolve_data, resolve_model
    from .workflows import make_objectives

    dev = check_device("device", device) if device is not None else torch.device("cpu")
    states = [load_state_dict(c) for c in checkpoints]  # fail on a bad file before loading data
    dataset = resolve_data(data).subset(train_samples, test_samples)
    net = resolve_model(model, defaults=dataset.model_defaults())
    buffers = [n for n, _ in net.named_buffers()]
    no_buffers = [n for n in buffers if n not in states[0]]
    if buffers and len(no_buffers) == len(buffers):
        # parameter-only files (SWA samples written by `basinscope train`): the buffers are not part of the point
        if not recompute_bn:
            fail(
                "checkpoints",
                "full state_dicts with the model's buffers, or --recompute-bn for parameter-only files such as SWA"
                " samples",
                f"'{checkpoints[0]}' without {len(no_buffers)} buffers ({no_buffers[0]!r}, ...)",
                raw=True,
            )
    else:
        load_into(net, states[0])  # every key and shape checked against the model
        for c, st in zip(checkpoints[1:], states[1:]):
            missing = [k for k in states[0] if k not in st]
            extra = [k for k in st if k not in states[0]]
            if missing or extra:
                fail(
                    "checkpoints",
                    f"state_dicts with the keys of '{checkpoints[0]}'",
                    f"'{c}' with {len(missing)} missing ({', '.join(map(repr, missing[:3]))}) and {len(extra)} "
                    f"unexpected ({', '.join(map(repr, extra[:3]))})",
                    raw=True,
                )
    net = net.to(dev)
    weights = [load_params(net, s) for s in states]
    if keep_buffers and len(no_buffers) < len(buffers):
        # full state_dicts: their buffers (BatchNorm statistics) move along the line/plane with the weights
        weights = [{**w, **{k: v for k, v in st.items() if k not in w}} for w, st in zip(weights, states)]
    obj, test = make_objectives(net, dataset, batch_size=batch_size, device=dev)
    return weights, obj, test


def _save_figures(result: Any, out: Path, name: str) -> list[Path]:
    """``name.npz``/``name.json`` (the result), ``name.png`` (matplotlib) and ``name.html`` (plotly, self-contained)."""
    import matplotlib.pyplot as plt

    base = result.save(out / name)
    fig = result.plot("matplotlib", path=str(out / f"{name}.png"))
    plt.close(fig)
    result.plot("plotly", path=str(out / f"{name}.html"))
    return [base.with_suffix(".npz"), base.with_suffix(".json"), out / f"{name}.png", out / f"{name}.html"]


_DIRECTIONS = ("random", "hessian", "pca")


def surface_run(
    kind: str,
    checkpoints: Sequence[str | os.PathLike],
    model: str,
    data: str,
    *,
    out_dir: str | os.PathLike,
    directions: str | None = None,
    trajectory: Sequence[str | os.PathLike] | None = None,
    resolution: int = 21,
    margin: float = 0.25,
    coord_range: tuple[float, float] | None = None,
    points: int = 41,
    span: float = 1.0,
    seed: int = 0,
    recompute_bn: bool = False,
    batch_size: int = 500,
    train_samples: int | None = None,
    test_samples: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """``basinscope surface``: a plane through three checkpoints, a line between two, or a random plane; or a line /
    plane through one checkpoint along directions that carry meaning.

    Partial results go to ``out_dir/store`` so an interrupted run resumes; the result is saved as
    ``surface.npz``/``surface.json`` with ``surface.png`` (matplotlib) and ``surface.html`` (plotly,
    self-contained).

    Args:
        kind: ``"plane"`` (3 checkpoints, or 1 with ``directions``), ``"line"`` (2, or 1 with ``directions``) or
            ``"random"`` (1; the same as ``"plane"`` with ``directions="random"``).
        checkpoints: checkpoint paths (weights only).
        model, data: specs (see :mod:`basinscope.specs`).
        out_dir: output directory.
        directions: ``None`` (through the given points), ``"random"`` (filter-normalized, Li et al. 2018),
            ``"hessian"`` (top Hessian eigenvectors at the checkpoint) or ``"pca"`` (principal directions of
            ``trajectory`` relative to the checkpoint, Li et al. 2018 §7).
        trajectory: the iterates of a run (checkpoint paths, in training order) for ``directions="pca"``.
        resolution, margin: plane grid (``margin`` also widens a PCA grid around the projected iterates).
        coord_range, points: the line's range and number of coordinates (default range: −0.5:1.5 between two
            checkpoints, −1:1 along a random or Hessian direction, the iterates' range for PCA).
        span: half-width of a random plane (direction units) or a Hessian plane (weight-space distance).
        seed: seed of the random directions, or of the Lanczos start vector for Hessian directions.
        recompute_bn: recompute BatchNorm statistics at every point from the training data. Without it the
            checkpoints must be full state_dicts: a line or plane then interpolates their floating buffers
            (BatchNorm running statistics) along with the weights (see :func:`basinscope.surface.line`); a plane
            or line through one checkpoint uses its buffers.
        batch_size, train_samples, test_samples, device, progress: evaluation settings.

    Returns:
        ``{"files": [...], "summary": {...}}``.
    """
    from . import surface
    from .surface._axes import check_grid_size, resolution_pair

    kind = check_choice("kind", kind, ("plane", "line", "random"))
    if kind == "random":
        if directions not in (None, "random"):
            fail("directions", "'random' (or none) for a random plane", directions)
        kind, directions = "plane", "random"
    if directions is not None:
        directions = check_choice("directions", directions, _DIRECTIONS)
    if kind == "plane":
        resolution_pair(resolution)  # a grid too large is refused before any file or data is read
    need = 1 if directions is not None else {"plane": 3, "line": 2}[kind]
    if len(checkpoints) != need:
        what = f"a {kind} along {directions} directions" if directions else f"a {kind} through checkpoints"
        fail(
            "checkpoints",
            f"{need} checkpoint file{'s' if need > 1 else ''} for {what}",
            f"{len(checkpoints)}",
            raw=True,
        )
    if (directions == "pca") != bool(trajectory):
        fail(
            "trajectory",
            "the iterates of a run (at least two checkpoints) with --directions pca, and only then",
            f"{len(trajectory or [])} file(s) with directions {directions!r}",
            raw=True,
        )
    files = list(checkpoints) + list(trajectory or [])
    weights, obj, test = _surface_inputs(
        files,
        model,
        data,
        recompute_bn=recompute_bn,
        keep_buffers=True,
        train_samples=train_samples,
        test_samples=test_samples,
        batch_size=batch_size,
        device=device,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {"test": test, "store": out / "store", "progress": progress}
    if recompute_bn:
        common["bn_data"] = True
    names = _names(checkpoints)
    res = check_int("resolution", resolution, minimum=2)
    n = check_int("points", points, minimum=2)
    check_grid_size("points", n, "a line")
    if coord_range is not None and not coord_range[0] < coord_range[1]:
        fail("range", "LO < HI", f"{coord_range[0]}:{coord_range[1]}", raw=True)

    def ts(default: tuple[float, float]) -> np.ndarray:
        lo, hi = coord_range if coord_range is not None else default
        return np.linspace(lo, hi, n)

    center = weights[0]
    if directions is None and kind == "plane":
        m = check_positive("margin", margin, allow_zero=True)
        surf = surface.plane(obj, *weights, resolution=res, margin=m, labels=names, **common)
    elif directions is None:
        surf = surface.line(obj, weights[0], weights[1], ts=ts((-0.5, 1.5)), labels=names, **common)
    elif directions == "random" and kind == "plane":
        surf = surface.random_plane(obj, seed=seed, center=center, span=span, resolution=res, **common)
    elif directions == "random":
        surf = surface.random_line(obj, seed=seed, center=center, ts=_with_zero(ts((-1.0, 1.0))), **common)
    elif directions == "hessian" and kind == "plane":
        surf = surface.hessian_plane(obj, center=center, span=span, resolution=res, seed=seed, **common)
    elif directions == "hessian":
        surf = surface.hessian_line(obj, center=center, ts=_with_zero(ts((-1.0, 1.0))), seed=seed, **common)
    elif kind == "plane":
        surf = surface.pca_plane(obj, weights[1:], final=center, resolution=res, margin=margin, **common)
    else:
        given = None if coord_range is None else _with_zero(ts((0.0, 1.0)))
        surf = surface.pca_line(obj, weights[1:], final=center, ts=given, points=n, margin=margin, **common)
    files_out = _save_figures(surf, out, "surface")
    return {"files": files_out, "summary": _surface_summary(surf)}


def _names(checkpoints: Sequence[str | os.PathLike]) -> list[str]:
    """Labels of the checkpoints: their file names without suffix, or their paths where two names are the same."""
    stems = [Path(c).stem for c in checkpoints]
    return stems if len(set(stems)) == len(stems) else [str(Path(c).with_suffix("")) for c in checkpoints]


def _with_zero(ts: np.ndarray) -> np.ndarray:
    """The coordinates with 0 (the centre, evaluated at its exact weights) on the node nearest to it."""
    from .surface._axes import axis_with_nodes

    if ts[0] > 0.0 or ts[-1] < 0.0:
        return np.unique(np.concatenate([ts, [0.0]]))
    return axis_with_nodes(float(ts[0]), float(ts[-1]), len(ts), (0.0,))


def curve_run(
    checkpoints: Sequence[str | os.PathLike],
    model: str,
    data: str,
    *,
    out_dir: str | os.PathLike,
    kind: str = "bezier",
    steps: int = 1000,
    fit_batch_size: int = 128,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
    points: int = 21,
    batch_size: int = 500,
    train_samples: int | None = None,
    test_samples: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """``basinscope surface curve``: fit a mode-connecting curve between two checkpoints (Garipov et al. 2018) and
    measure train loss and test error along it and along the straight line.

    The fit and both paths resume from ``out_dir/store``; the result is saved as ``curve.npz``/``curve.json``
    (the JSON holds the ``curve`` and ``line`` arrays and the ``barrier`` heights), ``curve.png`` and ``curve.html``.
    BatchNorm statistics are recomputed at every evaluated t, so parameter-only checkpoints are accepted.

    Args:
        checkpoints: the two end points.
        model, data: specs (see :mod:`basinscope.specs`).
        out_dir: output directory.
        kind, steps, fit_batch_size, lr, momentum, weight_decay, seed: the fit
            (:func:`basinscope.surface.fit_curve`; ``fit_batch_size`` is its minibatch size).
        points: evaluated t's, evenly spaced on [0, 1].
        batch_size, train_samples, test_samples, device, progress: evaluation settings.

    Returns:
        ``{"files": [...], "summary": {"barrier": ..., "kind", "seconds"}}``.
    """
    from . import surface

    if len(checkpoints) != 2:
        fail("checkpoints", "2 checkpoint files (the end points of the curve)", f"{len(checkpoints)}", raw=True)
    kind = check_choice("kind", kind, surface.curve_fit.CURVE_KINDS)
    (w1, w2), obj, test = _surface_inputs(
        checkpoints,
        model,
        data,
        recompute_bn=True,
        keep_buffers=False,
        train_samples=train_samples,
        test_samples=test_samples,
        batch_size=batch_size,
        device=device,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = surface.curve(
        obj,
        w1,
        w2,
        kind=kind,
        steps=steps,
        batch_size=fit_batch_size,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        seed=seed,
        points=points,
        test=test,
        store=out / "store",
        progress=progress,
        labels=_names(checkpoints),
    )
    files = _save_figures(res, out, "curve")
    return {"files": files, "summary": {"kind": res.kind, "barrier": res.barrier, "seconds": res.seconds}}
