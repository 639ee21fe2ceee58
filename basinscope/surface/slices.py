"""1-D and 2-D slices through one point along given directions: f(θ + α·d) and f(θ + α·d₁ + β·d₂).

The shared part of the slices through one point — filter-normalized random directions
(:mod:`basinscope.surface.random`), Hessian eigenvectors (:mod:`basinscope.surface.directions_hessian`), principal
components of a training trajectory (:mod:`basinscope.surface.pca`): the centre is validated (a weight dict or a
full state_dict, whose buffers are then held fixed along the slice), the grid has the centre on a node evaluated at
its exact weights, and the evaluation is the resumable grid loop :func:`~basinscope.surface.grid.evaluate_points`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import params as P
from ..objective import Cost, Objective
from ._axes import grid_coords
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


def _evaluate(
    obj: Objective,
    theta: P.Params,
    state: Any,
    directions: Sequence[Mapping[str, torch.Tensor]],
    coords: np.ndarray,
    exact: dict[int, P.Params],
    kind: str,
    settings: dict[str, Any],
    key: dict[str, Any] | None,
    evaluation: dict[str, Any],
) -> tuple[dict[str, np.ndarray | None], Cost, float, dict[str, Any]]:
    """The grid loop over ``θ + coords @ directions`` and the result's settings (``settings`` with ``"test"``)."""
    values, cost, seconds = evaluate_points(
        obj,
        theta,
        [_cast(d, theta) for d in directions],
        coords,
        exact=exact,
        desc=kind.replace("_", " "),
        key={"kind": kind, "settings": settings} if key is None else key,
        states=state,
        **evaluation,
    )
    return values, cost, seconds, {**settings, "test": evaluation.get("test") is not None}


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
    key: dict[str, Any] | None = None,
    **evaluation: Any,
) -> Surface1D:
    """f(θ + t·d) for every t in ``ts`` (which holds 0: evaluated at θ exactly).

    ``settings`` (with ``"test"`` added) go into the result; ``key`` identifies the run in ``store`` (default
    ``{"kind": kind, "settings": settings}``); ``evaluation`` (``test``, ``bn_data``, ``store``, ``progress``,
    ``checkpoint_every``, ``distributed``) goes to :func:`~basinscope.surface.grid.evaluate_points`.
    """
    exact = {k: theta for k, tk in enumerate(ts) if tk == 0.0}
    values, cost, seconds, settings = _evaluate(
        obj, theta, state, [direction], ts[:, None], exact, kind, settings, key, evaluation
    )
    return Surface1D(
        ts=ts,
        **values,
        points=np.asarray(points, dtype=np.float64),
        point_labels=list(labels),
        kind=kind,
        settings=settings,
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
    key: dict[str, Any] | None = None,
    **evaluation: Any,
) -> Surface2D:
    """f(θ + α·d₁ + β·d₂) on the grid ``alphas × betas`` (both hold 0: the centre, evaluated at θ exactly).

    ``settings``, ``key`` and ``evaluation`` as in :func:`slice_line`.
    """
    i0, j0 = int(np.flatnonzero(alphas == 0.0)[0]), int(np.flatnonzero(betas == 0.0)[0])
    exact = {j0 * len(alphas) + i0: theta}
    values, cost, seconds, settings = _evaluate(
        obj, theta, state, directions, grid_coords(alphas, betas), exact, kind, settings, key, evaluation
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
        settings=settings,
        cost=cost,
        seconds=seconds,
        path=path,
    )
