"""Loss along the line between two points of weight space (SWA-revisited paper, Figs. 7–8: train loss and
test error on the line from the SWA solution to the DSWA/TSWA solution; Goodfellow, Vinyals, Saxe 2015 for
linear interpolation in general).

    θ(t) = (1 − t)·start + t·end = start + t·(end − start),   t ∈ R (t < 0 and t > 1 extrapolate).

Points with t = 0 and t = 1 are evaluated at ``start`` and ``end`` themselves, so the curve there is exactly
``obj.loss(start)`` and ``obj.loss(end)``.

``start`` and ``end`` may be full state_dicts (parameters and buffers, e.g. BatchNorm running statistics): the
floating buffers are then interpolated with the same t, state(t) = (1 − t)·state_start + t·state_end, and
integer buffers (``num_batches_tracked``) are those of ``start`` — the "states" direction of Li et al.'s
loss-landscape code. ``bn_data`` recomputes the BatchNorm statistics at every point instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import params as P
from .._checks import check_type, fail
from ..objective import Objective
from ._axes import axis_with_nodes
from .grid import bn_recompute_kind, evaluate_points, warn_batchnorm
from .points import check_labels, prepare_states, state_directions
from .results import Surface1D

__all__ = ["line", "line_coordinates"]


def line_coordinates(ts: Any, default: tuple[float, float, int], required: Sequence[float]) -> np.ndarray:
    """Validated 1-D float64 array of line coordinates (``None`` → ``default`` = (lo, hi, n) with the
    ``required`` values placed on nodes)."""
    if ts is None:
        lo, hi, n = default
        return axis_with_nodes(lo, hi, n, required)
    try:
        arr = np.asarray(ts.detach().cpu() if isinstance(ts, torch.Tensor) else ts, dtype=np.float64)
    except (TypeError, ValueError):
        fail("ts", "a 1-D sequence of finite numbers", ts, exc=TypeError)
    if arr.ndim != 1 or arr.size == 0:
        fail("ts", "a non-empty 1-D sequence of numbers (an empty grid has nothing to evaluate)", ts)
    if not np.isfinite(arr).all():
        fail("ts", "finite numbers", f"{int((~np.isfinite(arr)).sum())} non-finite entries", raw=True)
    return arr


def line(
    obj: Objective,
    start: Mapping[str, torch.Tensor],
    end: Mapping[str, torch.Tensor],
    *,
    ts: Any = None,
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    labels: Sequence[str] = ("start", "end"),
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
) -> Surface1D:
    """Train loss/error and test loss/error at θ(t) = (1 − t)·start + t·end for every t in ``ts``.

    Args:
        obj: the training objective.
        start, end: weight dicts keyed like ``obj.names`` (e.g. the SWA and DSWA solutions), or both full
            state_dicts of ``obj.model`` (``model.state_dict()``): their floating buffers are interpolated too.
        ts: coordinates t (any real numbers); default 41 points on [−0.5, 1.5] including 0 and 1 exactly.
        test: optional test objective (test loss and error).
        bn_data: recompute BatchNorm statistics at every point (``True``: from ``obj``'s data, or given data).
            ``None`` (default) keeps the model's statistics and warns for a BatchNorm model; ``False`` silently.
        store: directory for partial results (resumable).
        progress: show a progress bar.
        labels: names of the two end points.
        checkpoint_every: seconds between writes to ``store``.
        distributed: split the points across torch.distributed ranks (default: under torchrun).

    Returns:
        :class:`Surface1D`.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope import Objective
        >>> obj = Objective(torch.nn.Linear(3, 2), F.cross_entropy, (torch.randn(16, 3), torch.randint(0, 2, (16,))))
        >>> a = obj.point(); b = {k: v + 1.0 for k, v in a.items()}
        >>> s = line(obj, a, b, ts=[0.0, 0.5, 1.0], progress=False)
        >>> float(s.train_loss[2]) == float(obj.loss(b))
        True
    """
    check_type("obj", obj, Objective, "an Objective")
    labels = check_labels(labels, 2)
    t = line_coordinates(ts, (-0.5, 1.5, 41), (0.0, 1.0))
    (a, b), states = prepare_states(obj, [("start", start), ("end", end)])
    if states is None:  # full state_dicts carry their own BatchNorm statistics
        warn_batchnorm(obj, bn_data)
    direction = P.sub(b, a)
    exact, exact_states = {}, {}
    for k, tk in enumerate(t):
        if tk in (0.0, 1.0):
            exact[k] = a if tk == 0.0 else b
            if states is not None:
                exact_states[k] = states[0] if tk == 0.0 else states[1]
    state_path = None if states is None else (states[0], state_directions(states, [[-1.0, 1.0]]))
    bn_kind = bn_recompute_kind(bn_data)
    values, cost, seconds = evaluate_points(
        obj,
        a,
        [direction],
        t[:, None],
        exact=exact,
        test=test,
        bn_data=bn_data,
        store=store,
        checkpoint_every=checkpoint_every,
        progress=progress,
        distributed=distributed,
        desc="line",
        key={"kind": "line", "bn": bn_kind},
        states=state_path,
        exact_states=exact_states,
    )
    return Surface1D(
        ts=t,
        **values,
        points=np.array([0.0, 1.0]),
        point_labels=labels,
        kind="line",
        settings={
            "bn_recompute": bn_kind,
            "buffers": "interpolated" if states is not None else "model",
            "test": test is not None,
            "distance": float(P.norm({k: v.to(torch.float64) for k, v in direction.items()})),
        },
        cost=cost,
        seconds=seconds,
    )
