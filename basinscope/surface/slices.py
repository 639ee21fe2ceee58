"""1-D and 2-D slices through one point along given directions: f(θ + α·d) and f(θ + α·d₁ + β·d₂).

The shared part of the surfaces whose directions carry meaning — Hessian eigenvectors
(:mod:`basinscope.surface.directions_hessian`), principal components of a training trajectory
(:mod:`basinscope.surface.pca`): the centre is validated (a weight dict or a full state_dict, whose buffers are then
held fixed along the slice), the grid has the centre on a node evaluated at its exact weights, and the evaluation is
the resumable grid loop :func:`~basinscope.surface.grid.evaluate_points`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import params as P
from ..objective import Objective
from .grid import evaluate_points
from .points import prepare_states, state_directions
from .results import Surface1D, Surface2D

__all__ = ["center_point", "slice_line", "slice_plane"]


def center_point(obj: Objective, center: Mapping[str, torch.Tensor] | None, n_directions: int) -> tuple[P.Params, Any]:
    """θ and, for a full state_dict, the state held fixed along the slice (``evaluate_points``'s ``states``)."""
    if center is None:
        return obj.point(), None
    (theta,), states = prepare_states(obj, [("center", center)])
    if states is None:
        return theta, None
    return theta, (states[0], state_directions(states, [[0.0]] * n_directions))


def _cast(d: Mapping[str, torch.Tensor], like: Mapping[str, torch.Tensor]) -> P.Params:
    return {k: d[k].to(device=like[k].device, dtype=like[k].dtype) for k in like}


def slice_line(
    obj: Objective,
    theta: P.Params,
    state: Any,
    direction: Mapping[str, torch.Tensor],
    ts: np.ndarray,
    *,
    kind: str,
    settings: dict[str, Any],
    points: Sequence[float] = (0.0,),
    labels: Sequence[str] = ("θ",),
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
) -> Surface1D:
    """f(θ + t·d) for every t in ``ts`` (which holds 0: evaluated at θ exactly)."""
    exact = {k: theta for k, tk in enumerate(ts) if tk == 0.0}
    values, cost, seconds = evaluate_points(
        obj,
        theta,
        [_cast(direction, theta)],
        ts[:, None],
        exact=exact,
        test=test,
        bn_data=bn_data,
        store=store,
        checkpoint_every=checkpoint_every,
        progress=progress,
        distributed=distributed,
        desc=kind.replace("_", " "),
        key={"kind": kind, "settings": settings},
        states=state,
    )
    return Surface1D(
        ts=ts,
        **values,
        points=np.asarray(points, dtype=np.float64),
        point_labels=list(labels),
        kind=kind,
        settings={**settings, "test": test is not None},
        cost=cost,
        seconds=seconds,
    )


def slice_plane(
    obj: Objective,
    theta: P.Params,
    state: Any,
    directions: Sequence[Mapping[str, torch.Tensor]],
    alphas: np.ndarray,
    betas: np.ndarray,
    *,
    kind: str,
    settings: dict[str, Any],
    path: np.ndarray | None = None,
    label: str = "θ",
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
) -> Surface2D:
    """f(θ + α·d₁ + β·d₂) on the grid ``alphas × betas`` (both hold 0: the centre, evaluated at θ exactly)."""
    aa, bb = np.meshgrid(alphas, betas)
    coords = np.stack([aa.reshape(-1), bb.reshape(-1)], axis=1)
    i0, j0 = int(np.flatnonzero(alphas == 0.0)[0]), int(np.flatnonzero(betas == 0.0)[0])
    values, cost, seconds = evaluate_points(
        obj,
        theta,
        [_cast(d, theta) for d in directions],
        coords,
        exact={j0 * len(alphas) + i0: theta},
        test=test,
        bn_data=bn_data,
        store=store,
        checkpoint_every=checkpoint_every,
        progress=progress,
        distributed=distributed,
        desc=kind.replace("_", " "),
        key={"kind": kind, "settings": settings},
        states=state,
    )
    shape = (len(betas), len(alphas))
    return Surface2D(
        alphas=alphas,
        betas=betas,
        **{k: None if a is None else a.reshape(shape) for k, a in values.items()},
        points=np.zeros((1, 2)),
        point_labels=[label],
        point_indices=[[i0, j0]],
        kind=kind,
        settings={**settings, "test": test is not None},
        cost=cost,
        seconds=seconds,
        path=path,
    )
