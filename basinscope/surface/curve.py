"""Train loss and test error along a mode-connecting curve and along the straight line between its end points
(Garipov, Izmailov, Podoprikhin, Vetrov, Wilson, "Loss Surfaces, Mode Connectivity, and Fast Ensembling of DNNs",
NeurIPS 2018, §3 and Fig. 2), with the barrier height of each path.

The curve φ_θ(t) (Bézier or polygonal chain, :mod:`basinscope.surface.curve_fit`) lies in the plane through w₁, θ
and w₂: φ_θ(t) = w₁ + c_θ(t)·(θ − w₁) + c₂(t)·(w₂ − w₁). Both paths are therefore evaluated by the shared grid
loop (:func:`~basinscope.surface.grid.evaluate_points`): resumable through a store, split across ranks under
torchrun, with the end points (and the chain's bend at t = 0.5) evaluated at their exact weights.

BatchNorm: no point of the curve but its ends was ever trained with running statistics, so for a model with
BatchNorm layers the statistics are recomputed at every evaluated t from the training data (as Garipov et al. do,
and ``torch.optim.swa_utils.update_bn``), on both paths. ``bn_data=False`` keeps the model's statistics instead.

Barrier height of a path, for each metric m (Garipov et al. §3; the same definition for both paths):

    barrier(m) = max_t m(φ(t)) − ½·(m(φ(0)) + m(φ(1))),

over the evaluated t, which include 0 and 1. A barrier near 0 means the path connects the two modes at the height
of its ends.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import params as P
from .._checks import check_int, check_type, fail
from ..objective import Cost, Objective
from ..results import Result
from .curve_fit import CURVE_KINDS, CurveFit, curve_coefficients, fit_curve
from .grid import _has_batchnorm, bn_recompute_kind, evaluate_points
from .points import check_labels, prepare_points, prepare_states
from .results import METRICS

__all__ = ["CurveResult", "barrier_height", "curve", "evaluate_curve"]


def barrier_height(ts: Any, values: Any) -> float:
    """max_t values − ½·(values at t = 0 + values at t = 1); ``ts`` must contain 0 and 1.

    Example:
        >>> barrier_height([0.0, 0.5, 1.0], [1.0, 3.0, 2.0])
        1.5
    """
    t = np.asarray(ts, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or v.shape != t.shape:
        fail("values", f"one value per t ({t.shape[0] if t.ndim == 1 else t.shape})", f"shape {v.shape}", raw=True)
    for end in (0.0, 1.0):
        if not (t == end).any():
            fail("ts", f"coordinates that include t = {end:g} (an end point)", "none at it", raw=True)
    ends = 0.5 * (float(v[t == 0.0][0]) + float(v[t == 1.0][0]))
    return float(np.max(v) - ends)


@dataclasses.dataclass(frozen=True)
class CurveResult(Result):
    """Metrics along a fitted curve and along the straight line between its end points.

    Attributes:
        kind: ``"bezier"`` or ``"polychain"``.
        ts: the evaluated t (in [0, 1], including 0 and 1).
        curve: ``{metric: values along the curve}`` for the measured metrics (``train_loss``, ``train_error``,
            ``test_loss``, ``test_error``).
        line: the same along the line (1 − t)·w₁ + t·w₂.
        barrier: ``{"curve": {metric: height}, "line": {metric: height}}`` (module docstring).
        bend: the bend θ of the curve.
        fit_losses: the minibatch loss at each training step of the bend (empty when the bend was given).
        labels: names of the two end points.
        settings: the fit's and the evaluation's settings (JSON-ready).
        cost: what fitting and evaluating spent.
        seconds: wall time of this call.
    """

    kind: str
    ts: np.ndarray
    curve: dict[str, list[float]]
    line: dict[str, list[float]]
    barrier: dict[str, dict[str, float]]
    bend: P.Params
    fit_losses: np.ndarray
    labels: list[str] = dataclasses.field(default_factory=lambda: ["start", "end"])
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)
    seconds: float = 0.0

    def values(self, path: str, metric: str) -> np.ndarray:
        """The values of ``metric`` along ``path`` (``"curve"`` or ``"line"``)."""
        if path not in ("curve", "line"):
            fail("path", "'curve' or 'line'", path)
        got = getattr(self, path)
        if metric not in got:
            fail("metric", "one of the measured metrics " + ", ".join(map(repr, got)), metric)
        return np.asarray(got[metric], dtype=np.float64)

    def plot(
        self,
        backend: str = "matplotlib",
        *,
        metrics: Sequence[str] | None = None,
        path: Any = None,
        title: str | None = None,
    ) -> Any:
        """Both paths against t, one panel per metric (default: train loss and test error, else train error), the
        style of Garipov et al.'s Fig. 2 (right); ``backend="plotly"`` writes a self-contained HTML page when
        ``path`` ends in ``.html``. Returns the figure."""
        from .curve_plot import plot_curve

        return plot_curve(self, backend=backend, metrics=metrics, path=path, title=title)


def _ts(ts: Any, n: int) -> np.ndarray:
    """The t's: ``ts`` checked (in [0, 1], with both ends), or ``n`` (checked) evenly spaced on [0, 1]."""
    if ts is None:
        return np.linspace(0.0, 1.0, check_int("points", n, minimum=2))
    try:
        t = np.asarray(ts.detach().cpu() if isinstance(ts, torch.Tensor) else ts, dtype=np.float64)
    except (TypeError, ValueError):
        fail("ts", "a 1-D sequence of numbers in [0, 1]", ts, exc=TypeError)
    if t.ndim != 1 or t.size < 2:
        fail("ts", "a 1-D sequence of at least two numbers in [0, 1]", ts)
    if not np.isfinite(t).all() or t.min() < 0.0 or t.max() > 1.0:
        fail("ts", "numbers in [0, 1] (a curve is defined there only)", f"range [{t.min()}, {t.max()}]", raw=True)
    if not ((t == 0.0).any() and (t == 1.0).any()):
        fail("ts", "coordinates that include both end points t = 0 and t = 1", "a grid without them", raw=True)
    return t


def _weights(obj: Objective, start: Any, end: Any) -> tuple[P.Params, P.Params]:
    """Weights of the end points; full state_dicts are accepted and their buffers dropped (BatchNorm statistics
    are recomputed along the paths)."""
    (w1, w2), _ = prepare_states(obj, [("start", start), ("end", end)])
    return w1, w2


def _bn(obj: Objective, bn_data: Any) -> Any:
    if bn_data is None:
        return True if not obj.is_function and _has_batchnorm(obj.model) else None
    return bn_data


def _store(store: Any, name: str) -> Path | None:
    if store is None:
        return None
    if not isinstance(store, (str, os.PathLike)):
        fail("store", "a directory path (str or os.PathLike) or None", store, exc=TypeError)
    return Path(store) / name


def evaluate_curve(
    obj: Objective,
    start: Mapping[str, torch.Tensor],
    bend: Mapping[str, torch.Tensor],
    end: Mapping[str, torch.Tensor],
    *,
    kind: str = "bezier",
    ts: Any = None,
    points: int = 21,
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    labels: Sequence[str] = ("start", "end"),
    fit: CurveFit | None = None,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
) -> CurveResult:
    """Train/test loss and error along the curve φ_θ(t) through ``bend`` and along the line, with barriers.

    Args:
        obj: the training objective.
        start, end: the end points (weight dicts, or full state_dicts whose buffers are dropped).
        bend: the bend θ (e.g. ``fit_curve(...).bend``).
        kind: ``"bezier"`` or ``"polychain"``.
        ts: the t's (in [0, 1], including 0 and 1); default ``points`` evenly spaced.
        points: number of t's when ``ts`` is ``None``.
        test: optional test objective.
        bn_data: ``None`` (default): recompute BatchNorm statistics at every t from ``obj``'s data when the model
            has BatchNorm layers; ``True`` / data: recompute (from that data); ``False``: the model's statistics.
        store: directory for partial results (``store/curve`` and ``store/line``; resumable).
        progress: progress bars.
        labels: names of the end points.
        fit: the :class:`CurveFit` that produced ``bend`` (its losses and settings are kept in the result).
        checkpoint_every, distributed: as in :func:`~basinscope.surface.line.line`.

    Returns:
        :class:`CurveResult`.
    """
    check_type("obj", obj, Objective, "an Objective")
    if kind not in CURVE_KINDS:
        fail("kind", "one of " + ", ".join(map(repr, CURVE_KINDS)), kind)
    labels = check_labels(labels, 2)
    t = _ts(ts, points)
    t0 = time.perf_counter()
    w1, w2 = _weights(obj, start, end)
    (b,) = prepare_points(obj, [("bend", bend)])
    coefs = np.array([curve_coefficients(kind, tk) for tk in t])
    exact: dict[int, P.Params] = {}
    for k, tk in enumerate(t):
        if tk == 0.0:
            exact[k] = w1
        elif tk == 1.0:
            exact[k] = w2
        elif kind == "polychain" and tk == 0.5:
            exact[k] = b
    bn_data = _bn(obj, bn_data)
    bn_kind = bn_recompute_kind(bn_data)
    common = {
        "test": test,
        "bn_data": bn_data,
        "progress": progress,
        "checkpoint_every": checkpoint_every,
        "distributed": distributed,
    }
    curve_vals, cost_c, _ = evaluate_points(
        obj,
        w1,
        [P.sub(b, w1), P.sub(w2, w1)],
        coefs[:, 1:],
        exact=exact,
        store=_store(store, "curve"),
        desc=f"{kind} curve",
        key={"kind": "curve", "curve": kind, "bn": bn_kind},
        **common,
    )
    line_exact = {k: (w1 if tk == 0.0 else w2) for k, tk in enumerate(t) if tk in (0.0, 1.0)}
    line_vals, cost_l, _ = evaluate_points(
        obj,
        w1,
        [P.sub(w2, w1)],
        t[:, None],
        exact=line_exact,
        store=_store(store, "line"),
        desc="line",
        key={"kind": "line", "bn": bn_kind},
        **common,
    )
    curve_d = {m: curve_vals[m].tolist() for m in METRICS if curve_vals[m] is not None}
    line_d = {m: line_vals[m].tolist() for m in METRICS if line_vals[m] is not None}
    barrier = {
        "curve": {m: barrier_height(t, v) for m, v in curve_d.items()},
        "line": {m: barrier_height(t, v) for m, v in line_d.items()},
    }
    f64 = {k: v.to(torch.float64) for k, v in P.sub(w2, w1).items()}
    settings: dict[str, Any] = {
        "bn_recompute": bn_kind,
        "test": test is not None,
        "distance": float(P.norm(f64)),
        "fit": None if fit is None else fit.settings,
    }
    cost = cost_c + cost_l + (fit.cost if fit is not None else Cost())
    seconds = time.perf_counter() - t0
    cost.seconds = seconds + (fit.cost.seconds if fit is not None else 0.0)
    return CurveResult(
        kind=kind,
        ts=t,
        curve=curve_d,
        line=line_d,
        barrier=barrier,
        bend={k: v.detach().cpu() for k, v in b.items()},
        fit_losses=np.zeros(0) if fit is None else fit.losses,
        labels=labels,
        settings=settings,
        cost=cost,
        seconds=cost.seconds,
    )


def curve(
    obj: Objective,
    start: Mapping[str, torch.Tensor],
    end: Mapping[str, torch.Tensor],
    *,
    kind: str = "bezier",
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
    ts: Any = None,
    points: int = 21,
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    labels: Sequence[str] = ("start", "end"),
    checkpoint_every: int = 200,
    distributed: bool | None = None,
) -> CurveResult:
    """Fit a curve between two solutions, then evaluate it and the straight line (Garipov et al. 2018).

    :func:`~basinscope.surface.curve_fit.fit_curve` trains the bend (``kind``, ``steps``, ``batch_size``, ``lr``,
    ``momentum``, ``weight_decay``, ``seed``: see there), :func:`evaluate_curve` measures both paths (``ts``,
    ``points``, ``test``, ``bn_data``: see there). With ``store=DIR`` everything resumes: the fit from
    ``DIR/fit.pt`` (every ``checkpoint_every`` steps), the two paths from ``DIR/curve`` and ``DIR/line``; an
    interrupted call run again with the same arguments returns the identical result.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope import Objective
        >>> _ = torch.manual_seed(0)
        >>> obj = Objective(torch.nn.Linear(3, 2), F.cross_entropy, (torch.randn(32, 3), torch.randint(0, 2, (32,))))
        >>> a = obj.point(); b = {k: v + 1.0 for k, v in a.items()}
        >>> r = curve(obj, a, b, steps=20, batch_size=8, points=5, progress=False)
        >>> sorted(r.barrier), r.ts.tolist()
        (['curve', 'line'], [0.0, 0.25, 0.5, 0.75, 1.0])
    """
    check_type("obj", obj, Objective, "an Objective")
    w1, w2 = _weights(obj, start, end)
    _ts(ts, points)  # bad coordinates fail before the fit
    fit = fit_curve(
        obj,
        w1,
        w2,
        kind=kind,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        seed=seed,
        checkpoint=_store(store, "fit.pt"),
        checkpoint_every=checkpoint_every,
        progress=progress,
    )
    return evaluate_curve(
        obj,
        w1,
        fit.bend,
        w2,
        kind=kind,
        ts=ts,
        points=points,
        test=test,
        bn_data=bn_data,
        store=store,
        progress=progress,
        labels=labels,
        fit=fit,
        distributed=distributed,
    )
