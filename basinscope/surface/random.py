"""Random 1-D and 2-D slices through one point (Li, Xu, Taylor, Studer, Goldstein, NeurIPS 2018, §4–5):

    line:   f(θ + α·d),            plane:  f(θ + α·d₁ + β·d₂),

with d, d₁, d₂ filter-normalized random directions (:func:`~basinscope.surface.directions.random_directions`).
Coordinates are in units of the filter-normalized directions (α = 1 moves every filter by its own norm);
the defaults span [−1, 1] as in Li et al. The centre (0 or (0, 0)) is evaluated at θ itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .._checks import check_positive, check_type, fail
from ..objective import Objective
from ._axes import axis_with_nodes, resolution_pair
from .directions import random_directions
from .line import line_coordinates
from .results import Surface1D, Surface2D
from .slices import center_point, slice_line, slice_plane

__all__ = ["random_line", "random_plane"]


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
    theta, state = center_point(obj, center, 1)
    seed = obj.common_seed(seed)
    (d,) = random_directions(theta, 1, seed=seed, normalize=normalize, ignore=ignore)
    t = line_coordinates(ts, (-1.0, 1.0, 41), (0.0,))
    settings = {"seed": seed, "normalize": normalize, "ignore": ignore}
    return slice_line(
        obj,
        theta,
        state,
        d,
        t,
        kind="random_line",
        settings=settings,
        test=test,
        bn_data=bn_data,
        store=store,
        progress=progress,
        checkpoint_every=checkpoint_every,
        distributed=distributed,
        key={"kind": "random_line", **settings},
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
    theta, state = center_point(obj, center, 2)
    seed = obj.common_seed(seed)
    d1, d2 = random_directions(theta, 2, seed=seed, normalize=normalize, ignore=ignore)
    alphas = axis_with_nodes(-sa, sa, nx, (0.0,))
    betas = axis_with_nodes(-sb, sb, ny, (0.0,))
    settings = {"seed": seed, "span": [sa, sb], "resolution": [nx, ny], "normalize": normalize, "ignore": ignore}
    return slice_plane(
        obj,
        theta,
        state,
        [d1, d2],
        alphas,
        betas,
        kind="random_plane",
        settings=settings,
        test=test,
        bn_data=bn_data,
        store=store,
        progress=progress,
        checkpoint_every=checkpoint_every,
        distributed=distributed,
        key={"kind": "random_plane", "seed": seed, "normalize": normalize, "ignore": ignore},
    )
