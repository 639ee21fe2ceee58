"""Random 1-D and 2-D slices through one point (Li, Xu, Taylor, Studer, Goldstein, NeurIPS 2018, §4–5):

    line:   f(θ + α·d),            plane:  f(θ + α·d₁ + β·d₂),

with d, d₁, d₂ filter-normalized random directions (:func:`~basinscope.surface.directions.random_directions`).
Coordinates are in units of the filter-normalized directions (α = 1 moves every filter by its own norm);
the defaults span [−1, 1] as in Li et al. The centre (0 or (0, 0)) is evaluated at θ itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._checks import check_positive, check_type, fail
from ..objective import Objective
from ._axes import axis_with_nodes, resolution_pair
from .directions import random_directions
from .grid import evaluate_points
from .line import line_coordinates
from .points import prepare_states, state_directions
from .results import Surface1D, Surface2D

__all__ = ["random_line", "random_plane"]


def _center(obj: Objective, center: Mapping[str, torch.Tensor] | None, n_directions: int):
    """θ and, for a full state_dict, the state held fixed along the slice (``evaluate_points``'s ``states``)."""
    if center is None:
        return obj.point(), None
    (theta,), states = prepare_states(obj, [("center", center)])
    if states is None:
        return theta, None
    return theta, (states[0], state_directions(states, [[0.0]] * n_directions))


def random_line(
    obj: Objective,
    *,
    seed: int = 0,
    center: Mapping[str, torch.Tensor] | None = None,
    ts: Any = None,
    test: Objective | None = None,
    normalize: str | None = "filter",
    ignore: str | None = "biasbn",
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
) -> Surface1D:
    """f(θ + α·d) along one filter-normalized random direction d (Li et al. 2018).

    Args:
        obj: the training objective.
        seed: seeds the direction (the same seed gives the same direction on every device).
        center: θ (default: the model's current weights); a full state_dict also fixes the buffers (e.g.
            BatchNorm statistics) used along the line.
        ts: coordinates α; default 41 points on [−1, 1] including 0.
        test: optional test objective.
        normalize, ignore: see :func:`~basinscope.surface.directions.random_directions` (``ignore="biasbn"``
            leaves biases and BatchNorm parameters fixed).
        bn_data, store, progress, checkpoint_every, distributed: as in :func:`~basinscope.surface.line.line`.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope import Objective
        >>> obj = Objective(torch.nn.Linear(3, 2), F.cross_entropy, (torch.randn(16, 3), torch.randint(0, 2, (16,))))
        >>> s = random_line(obj, seed=1, ts=[-1.0, 0.0, 1.0], progress=False)
        >>> float(s.train_loss[1]) == float(obj.loss())
        True
    """
    check_type("obj", obj, Objective, "an Objective")
    theta, state = _center(obj, center, 1)
    seed = obj.common_seed(seed)
    (d,) = random_directions(theta, 1, seed=seed, normalize=normalize, ignore=ignore)
    t = line_coordinates(ts, (-1.0, 1.0, 41), (0.0,))
    exact = {k: theta for k, tk in enumerate(t) if tk == 0.0}
    values, cost, seconds = evaluate_points(
        obj,
        theta,
        [d],
        t[:, None],
        exact=exact,
        test=test,
        bn_data=bn_data,
        store=store,
        checkpoint_every=checkpoint_every,
        progress=progress,
        distributed=distributed,
        desc="random line",
        key={"kind": "random_line", "seed": seed, "normalize": normalize, "ignore": ignore},
        states=state,
    )
    return Surface1D(
        ts=t,
        **values,
        points=np.array([0.0]),
        point_labels=["θ"],
        kind="random_line",
        settings={"seed": seed, "normalize": normalize, "ignore": ignore, "test": test is not None},
        cost=cost,
        seconds=seconds,
    )


def random_plane(
    obj: Objective,
    *,
    seed: int = 0,
    center: Mapping[str, torch.Tensor] | None = None,
    span: float | Sequence[float] = 1.0,
    resolution: int | Sequence[int] = 21,
    test: Objective | None = None,
    normalize: str | None = "filter",
    ignore: str | None = "biasbn",
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
) -> Surface2D:
    """f(θ + α·d₁ + β·d₂) on [−span, span]² with two filter-normalized random directions (Li et al. 2018).

    Args:
        obj: the training objective.
        seed: seeds both directions (drawn one after the other from one generator).
        center: θ (default: the model's current weights); a full state_dict also fixes the buffers.
        span: half-width of the grid in direction units (a number, or ``(span_alpha, span_beta)``).
        resolution: nodes per axis (``int`` or ``(nx, ny)``); (0, 0) is always a node.
        test, normalize, ignore, bn_data, store, progress, checkpoint_every, distributed: as in
            :func:`random_line` and :func:`~basinscope.surface.plane.plane`.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope import Objective
        >>> obj = Objective(torch.nn.Linear(3, 2), F.cross_entropy, (torch.randn(16, 3), torch.randint(0, 2, (16,))))
        >>> s = random_plane(obj, seed=0, resolution=5, progress=False)
        >>> s.at_point("θ") == float(obj.loss())
        True
    """
    check_type("obj", obj, Objective, "an Objective")
    if isinstance(span, (list, tuple)):
        if len(span) != 2:
            fail("span", "a number or a pair (span_alpha, span_beta)", span)
        sa, sb = check_positive("span[0]", span[0]), check_positive("span[1]", span[1])
    else:
        sa = sb = check_positive("span", span)
    nx, ny = resolution_pair(resolution)
    theta, state = _center(obj, center, 2)
    seed = obj.common_seed(seed)
    d1, d2 = random_directions(theta, 2, seed=seed, normalize=normalize, ignore=ignore)
    alphas = axis_with_nodes(-sa, sa, nx, (0.0,))
    betas = axis_with_nodes(-sb, sb, ny, (0.0,))
    aa, bb = np.meshgrid(alphas, betas)
    coords = np.stack([aa.reshape(-1), bb.reshape(-1)], axis=1)
    i0, j0 = int(np.flatnonzero(alphas == 0.0)[0]), int(np.flatnonzero(betas == 0.0)[0])
    values, cost, seconds = evaluate_points(
        obj,
        theta,
        [d1, d2],
        coords,
        exact={j0 * len(alphas) + i0: theta},
        test=test,
        bn_data=bn_data,
        store=store,
        checkpoint_every=checkpoint_every,
        progress=progress,
        distributed=distributed,
        desc="random plane",
        key={"kind": "random_plane", "seed": seed, "normalize": normalize, "ignore": ignore},
        states=state,
    )
    shape = (len(betas), len(alphas))
    return Surface2D(
        alphas=alphas,
        betas=betas,
        **{k: None if a is None else a.reshape(shape) for k, a in values.items()},
        points=np.zeros((1, 2)),
        point_labels=["θ"],
        point_indices=[[i0, j0]],
        kind="random_plane",
        settings={
            "seed": seed,
            "span": [sa, sb],
            "resolution": [nx, ny],
            "normalize": normalize,
            "ignore": ignore,
            "test": test is not None,
        },
        cost=cost,
        seconds=seconds,
    )
