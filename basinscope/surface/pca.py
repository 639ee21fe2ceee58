"""Principal directions of a training trajectory (Li, Xu, Taylor, Studer, Goldstein, "Visualizing the Loss Landscape
of Neural Nets", NeurIPS 2018, §7 and Fig. 9).

Random directions are nearly orthogonal to an optimization path in high dimension, so the path barely shows in a
random plane. Li et al. therefore take the iterates θ₀, …, θ_{n−1} of a run and its final point θ_n, form

    M = [θ₀ − θ_n; θ₁ − θ_n; …; θ_{n−1} − θ_n]          (one flattened row per iterate),

and span the plane by its two principal directions d₁, d₂ (unit, orthogonal). As in the authors' code (which uses
scikit-learn's PCA), the rows are centred before the decomposition: with X = M − mean of the rows and the SVD
X = U·S·Vᵀ, dᵢ is the i-th row of Vᵀ and its explained variance ratio is sᵢ² / Σⱼ sⱼ². The trajectory is drawn at
the coordinates (⟨θ_k − θ_n, d₁⟩, ⟨θ_k − θ_n, d₂⟩) (their projection, not centred), over the loss on the plane
θ_n + α·d₁ + β·d₂; θ_n is at the origin. ``centered=False`` uses the SVD of M itself. The sign of a direction is
arbitrary; it is fixed so that the first iterate has a non-negative coordinate.

The decomposition holds the trajectory as one float64 matrix (iterates × parameters) on the objective's device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import params as P
from .._checks import check_int, check_positive, check_type, fail
from ..objective import Objective
from ..results import Result
from ._axes import axis_with_nodes, resolution_pair
from .line import line_coordinates
from .points import prepare_states
from .results import Surface1D, Surface2D
from .slices import center_point, slice_line, slice_plane

__all__ = ["PCADirections", "pca_directions", "pca_line", "pca_plane"]


@dataclasses.dataclass(frozen=True)
class PCADirections(Result):
    """The principal directions of a trajectory relative to its final point.

    Attributes:
        directions: ``n`` orthonormal directions (weight dicts in the objective's dtype).
        explained_variance_ratio: sᵢ² / Σⱼ sⱼ² of each direction.
        singular_values: the sᵢ of all components.
        projections: ``(m, n)`` coordinates of the iterates, ⟨θ_k − θ_final, dᵢ⟩.
        settings: ``{"iterates", "centered"}``.
    """

    directions: list[P.Params]
    explained_variance_ratio: list[float]
    singular_values: list[float]
    projections: np.ndarray
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)


def _trajectory_weights(obj: Objective, trajectory: Any) -> list[P.Params]:
    if isinstance(trajectory, (Mapping, str, bytes, torch.Tensor)) or not isinstance(trajectory, Sequence):
        fail("trajectory", "a sequence of weight dicts (the saved iterates)", trajectory, exc=TypeError)
    if len(trajectory) < 2:
        fail("trajectory", "at least two iterates", f"{len(trajectory)}", raw=True)
    weights, _ = prepare_states(obj, [(f"trajectory[{i}]", w) for i, w in enumerate(trajectory)])
    return weights


def pca_directions(
    obj: Objective,
    trajectory: Sequence[Mapping[str, torch.Tensor]],
    *,
    final: Mapping[str, torch.Tensor] | None = None,
    n: int = 2,
    centered: bool = True,
) -> PCADirections:
    """The first ``n`` principal directions of ``trajectory`` relative to ``final`` (module docstring).

    Args:
        obj: the objective whose trainable parameters the iterates hold (keys, shapes, device, dtype).
        trajectory: the saved iterates θ₀, …, θ_{n−1} (weight dicts or full state_dicts; e.g. the checkpoints of a
            run, or SWA samples as :class:`~basinscope.results.ParamFiles`).
        final: θ_n (default: the last iterate, whose row of M is then zero, as in Li et al.'s code).
        n: how many directions (1 or 2).
        centered: centre the rows of M before the SVD (scikit-learn's PCA, used by Li et al.).

    Example:
        >>> import torch
        >>> from basinscope import Objective
        >>> obj = Objective(torch.nn.Linear(3, 1), torch.nn.functional.mse_loss, (torch.randn(8, 3), torch.randn(8, 1)))
        >>> w = obj.point()
        >>> traj = [{k: v + 0.1 * i * torch.ones_like(v) + 0.01 * i * i for k, v in w.items()} for i in range(5)]
        >>> pcs = pca_directions(obj, traj)
        >>> round(sum(pcs.explained_variance_ratio), 6) <= 1.0, pcs.projections.shape
        (True, (5, 2))
    """
    check_type("obj", obj, Objective, "an Objective")
    if n not in (1, 2) or isinstance(n, bool):
        fail("n", "1 (a line) or 2 (a plane)", n)
    iterates = _trajectory_weights(obj, trajectory)
    if final is None:
        last = iterates[-1]
    else:
        (last,), _ = prepare_states(obj, [("final", final)])
    keys = obj.names
    last64 = {k: last[k].to(torch.float64) for k in keys}
    rows = torch.stack([P.flatten({k: w[k].to(torch.float64) - last64[k] for k in keys}) for w in iterates])
    x = rows - rows.mean(dim=0, keepdim=True) if centered else rows
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    scale = float(s[0]) if s.numel() else 0.0
    if s.numel() < n or scale == 0.0 or float(s[n - 1]) <= 1e-12 * scale:
        got = int((s > 1e-12 * max(scale, 1e-300)).sum())
        fail(
            "trajectory",
            f"iterates that spread in at least {n} directions" + (" after centring" if centered else ""),
            f"{got} (too few distinct iterates, or all on a line)",
            raw=True,
        )
    dirs = vh[:n].clone()
    proj = rows @ dirs.T
    for i in range(n):
        if float(proj[0, i]) < 0.0:
            dirs[i] = -dirs[i]
            proj[:, i] = -proj[:, i]
    ratio = (s**2 / (s**2).sum()).tolist()
    like = iterates[0]
    shapes = {k: like[k] for k in keys}  # unflatten takes only the shapes (and key order)
    directions = [{k: v.to(like[k].dtype) for k, v in P.unflatten(d, shapes).items()} for d in dirs]
    return PCADirections(
        directions=directions,
        explained_variance_ratio=ratio[:n],
        singular_values=s.tolist(),
        projections=proj.cpu().numpy(),
        settings={"iterates": len(iterates), "centered": bool(centered)},
    )


def _axis(values: np.ndarray, margin: float, n: int, required: Sequence[float] = (0.0,)) -> np.ndarray:
    """``n`` nodes over ``values`` and 0, widened by ``margin`` of their extent, with ``required`` on nodes."""
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    ext = (hi - lo) or 1.0
    return axis_with_nodes(lo - margin * ext, hi + margin * ext, n, required)


def _center(obj: Objective, trajectory: Any, final: Any, n: int):
    """The final point (and, for a full state_dict, its buffers held fixed on the slice)."""
    return center_point(obj, trajectory[-1] if final is None else final, n)


def _settings(pcs: PCADirections, centered: bool, margin: float, **grid: Any) -> dict[str, Any]:
    """The result's settings: the directions' explained variance and iterate count, ``centered``, ``grid``
    (``resolution`` of a plane) and ``margin``, in the order the results have always listed them."""
    return {
        "directions": "pca",
        "explained_variance_ratio": pcs.explained_variance_ratio,
        "iterates": pcs.settings["iterates"],
        "centered": bool(centered),
        **grid,
        "margin": margin,
    }


def pca_line(
    obj: Objective,
    trajectory: Sequence[Mapping[str, torch.Tensor]],
    *,
    final: Mapping[str, torch.Tensor] | None = None,
    ts: Any = None,
    points: int = 41,
    margin: float = 0.25,
    centered: bool = True,
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
) -> Surface1D:
    """f(θ_final + α·d₁) along the first principal direction of ``trajectory`` (Li et al. 2018, §7).

    Args:
        obj: the training objective.
        trajectory, final, centered: see :func:`pca_directions` (a full state_dict as ``final``, or as the last
            iterate, also fixes the buffers along the line).
        ts: the α's (0 is θ_final, evaluated exactly); default ``points`` over the iterates' coordinates widened by
            ``margin`` of their extent on each side.
        test, bn_data, store, progress, checkpoint_every, distributed: as in :func:`~basinscope.surface.line.line`.

    Returns:
        :class:`Surface1D` of kind ``"pca_line"`` with the final point and the first iterate marked;
        ``settings["explained_variance_ratio"]``.
    """
    margin = check_positive("margin", margin, allow_zero=True)
    pcs = pca_directions(obj, trajectory, final=final, n=1, centered=centered)
    theta, state = _center(obj, trajectory, final, 1)
    alpha = pcs.projections[:, 0]
    if ts is None:
        ts = _axis(alpha, margin, check_int("points", points, minimum=2), (0.0, float(alpha[0])))
    t = line_coordinates(ts, (-1.0, 1.0, 41), (0.0,))
    if not (t == 0.0).any():
        fail("ts", "coordinates that include 0 (the final point)", "none at it", raw=True)
    settings = _settings(pcs, centered, margin)
    return slice_line(
        obj,
        theta,
        state,
        pcs.directions[0],
        t,
        kind="pca_line",
        settings=settings,
        points=(0.0, float(alpha[0])),
        labels=("final", "start"),
        test=test,
        bn_data=bn_data,
        store=store,
        progress=progress,
        checkpoint_every=checkpoint_every,
        distributed=distributed,
    )


def pca_plane(
    obj: Objective,
    trajectory: Sequence[Mapping[str, torch.Tensor]],
    *,
    final: Mapping[str, torch.Tensor] | None = None,
    resolution: int | tuple[int, int] = 21,
    margin: float = 0.25,
    centered: bool = True,
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
) -> Surface2D:
    """The loss on the plane θ_final + α·d₁ + β·d₂ of the trajectory's two principal directions, with the
    trajectory projected onto it (Li et al. 2018, §7, Fig. 9).

    Args:
        obj: the training objective.
        trajectory, final, centered: see :func:`pca_directions`.
        resolution: nodes per axis (``int`` or ``(nx, ny)``); (0, 0) — the final point — is always a node.
        margin: the grid covers the projected iterates widened by ``margin`` times their extent on each side.
        test, bn_data, store, progress, checkpoint_every, distributed: as in :func:`~basinscope.surface.plane.plane`.

    Returns:
        :class:`Surface2D` of kind ``"pca_plane"``: ``path`` holds the projected iterates (ending at the final point),
        ``settings["explained_variance_ratio"]`` the share of each direction.

    Example:
        >>> import torch
        >>> from basinscope import Objective
        >>> obj = Objective(torch.nn.Linear(3, 1), torch.nn.functional.mse_loss, (torch.randn(8, 3), torch.randn(8, 1)))
        >>> w = obj.point()
        >>> traj = [{k: v + 0.1 * i * torch.ones_like(v) + 0.01 * i * i for k, v in w.items()} for i in range(5)]
        >>> s = pca_plane(obj, traj, resolution=5, progress=False)
        >>> s.kind, s.path.shape, s.at_point("final") == float(obj.loss(traj[-1]))
        ('pca_plane', (5, 2), True)
    """
    margin = check_positive("margin", margin, allow_zero=True)
    nx, ny = resolution_pair(resolution)
    pcs = pca_directions(obj, trajectory, final=final, n=2, centered=centered)
    theta, state = _center(obj, trajectory, final, 2)
    proj = pcs.projections
    path = proj if (proj[-1] == 0.0).all() else np.concatenate([proj, np.zeros((1, 2))])  # ends at the final point
    alphas, betas = _axis(proj[:, 0], margin, nx), _axis(proj[:, 1], margin, ny)
    settings = _settings(pcs, centered, margin, resolution=[nx, ny])
    return slice_plane(
        obj,
        theta,
        state,
        pcs.directions,
        alphas,
        betas,
        kind="pca_plane",
        settings=settings,
        path=path,
        label="final",
        test=test,
        bn_data=bn_data,
        store=store,
        progress=progress,
        checkpoint_every=checkpoint_every,
        distributed=distributed,
    )
