"""Slices along the top Hessian eigenvectors: f(θ + α·v₁) and f(θ + α·v₁ + β·v₂), with H(θ)·vᵢ = λᵢ·vᵢ.

Random directions (Li et al. 2018) show a typical cross-section; the eigenvectors of the largest eigenvalues show
the sharpest one — along v₁ the loss rises as ½·λ₁·α² to second order — so a plane spanned by v₁ and v₂ displays the
curvature that :func:`~basinscope.hessian.eigen.top_eigenvalues` measures (Yao, Gholami, Keutzer, Mahoney,
"PyHessian: Neural Networks Through the Lens of the Hessian", 2020, Fig. 1, draw the loss along the top
eigenvectors this way). The eigenvectors come from :func:`~basinscope.hessian.eigen.top_eigenvalues` (Lanczos by
default) and are orthonormal, so α and β are Euclidean distances in weight space and the plane is drawn with equal
aspect. The sign of an eigenvector is arbitrary; it is fixed here so that its entry of largest magnitude is
positive.

The Hessian is that of ``obj`` (its data, its mode) at the centre, taken with the model's own buffers: for a
BatchNorm network load the checkpoint into the model first (the CLI does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .. import params as P
from .._checks import check_positive, check_type, fail
from ..hessian.eigen import top_eigenvalues
from ..hessian.results import EigenResult
from ..objective import Objective
from ._axes import axis_with_nodes, resolution_pair
from .line import line_coordinates
from .results import Surface1D, Surface2D
from .slices import center_point, slice_line, slice_plane

__all__ = ["hessian_directions", "hessian_line", "hessian_plane"]


def _fix_sign(v: P.Params) -> P.Params:
    flat = P.flatten({k: t.detach().to(torch.float64) for k, t in v.items()})
    i = int(torch.argmax(flat.abs()))
    return P.scale(v, -1.0) if float(flat[i]) < 0 else v


def hessian_directions(
    obj: Objective, n: int = 2, *, center: Mapping[str, torch.Tensor] | None = None, **eigen_kw: Any
) -> tuple[list[P.Params], EigenResult]:
    """The ``n`` top eigenvectors of H(θ) (unit norm, sign fixed) and the :class:`EigenResult` they come from.

    Args:
        obj: the objective.
        n: how many (1 for a line, 2 for a plane).
        center: θ (default: the model's weights); a full state_dict's buffers are ignored here (module docstring).
        **eigen_kw: passed to :func:`~basinscope.hessian.eigen.top_eigenvalues` (``method``, ``tol``, ``seed``...).

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope import Objective
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
        >>> obj = Objective(model, F.cross_entropy, (torch.randn(16, 3).double(), torch.randint(0, 2, (16,))))
        >>> (v1, v2), eig = hessian_directions(obj, 2)
        >>> round(float(P.norm(v1)), 6), eig.eigenvalues[0] >= eig.eigenvalues[1]
        (1.0, True)
    """
    check_type("obj", obj, Objective, "an Objective")
    if obj.is_function:
        fail("obj", "an Objective built from a model and data", "a function objective", raw=True)
    if n not in (1, 2) or isinstance(n, bool):
        fail("n", "1 (a line) or 2 (a plane)", n)
    for bad in ("k", "params", "which", "layers"):
        if bad in eigen_kw:
            fail(bad, "not given (hessian_directions sets it)", eigen_kw[bad])
    theta, _ = center_point(obj, center, n)
    eig = top_eigenvalues(obj, k=n, params=theta, which="largest", **eigen_kw)  # restores the model itself
    vectors = [_fix_sign(v) for v in eig.eigenvectors]
    return vectors, eig


def _eig_settings(eig: EigenResult) -> dict[str, Any]:
    return {
        "eigenvalues": [float(v) for v in eig.eigenvalues],
        "residuals": [float(r) for r in eig.residuals],
        "converged": bool(eig.converged),
        "eigen": {"method": eig.method, **{k: v for k, v in eig.settings.items() if k in ("tol", "seed")}},
    }


def hessian_line(
    obj: Objective,
    *,
    center: Mapping[str, torch.Tensor] | None = None,
    ts: Any = None,
    span: float = 1.0,
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
    **eigen_kw: Any,
) -> Surface1D:
    """f(θ + α·v₁) along the top Hessian eigenvector (unit norm: α is a distance in weight space).

    Args:
        obj: the training objective (its Hessian gives v₁).
        center: θ (default: the model's weights); a full state_dict also fixes the buffers along the line.
        ts: the α's (any real numbers; 0 is evaluated at θ exactly); default 41 on [−span, span].
        span: half-width of the default α's.
        test, bn_data, store, progress, checkpoint_every, distributed: as in
            :func:`~basinscope.surface.random.random_line`.
        **eigen_kw: passed to :func:`~basinscope.hessian.eigen.top_eigenvalues`.

    Returns:
        :class:`Surface1D` of kind ``"hessian_line"``; ``settings["eigenvalues"]`` holds λ₁.
    """
    check_type("obj", obj, Objective, "an Objective")
    span = check_positive("span", span)
    t = line_coordinates(ts, (-span, span, 41), (0.0,))
    theta, state = center_point(obj, center, 1)
    (v1,), eig = hessian_directions(obj, 1, center=theta, **eigen_kw)
    settings = {"directions": "hessian", **_eig_settings(eig)}
    surf = slice_line(
        obj,
        theta,
        state,
        v1,
        t,
        kind="hessian_line",
        settings=settings,
        test=test,
        bn_data=bn_data,
        store=store,
        progress=progress,
        checkpoint_every=checkpoint_every,
        distributed=distributed,
    )
    return _with_cost(surf, eig)


def hessian_plane(
    obj: Objective,
    *,
    center: Mapping[str, torch.Tensor] | None = None,
    span: float = 1.0,
    resolution: int | tuple[int, int] = 21,
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
    **eigen_kw: Any,
) -> Surface2D:
    """f(θ + α·v₁ + β·v₂) on [−span, span]² along the two top Hessian eigenvectors (orthonormal).

    Args:
        obj: the training objective (its Hessian gives v₁, v₂).
        center: θ (default: the model's weights); a full state_dict also fixes the buffers on the plane.
        span: half-width of the grid (a distance in weight space).
        resolution: nodes per axis (``int`` or ``(nx, ny)``); (0, 0) is always a node.
        test, bn_data, store, progress, checkpoint_every, distributed: as in
            :func:`~basinscope.surface.random.random_plane`.
        **eigen_kw: passed to :func:`~basinscope.hessian.eigen.top_eigenvalues`.

    Returns:
        :class:`Surface2D` of kind ``"hessian_plane"``; ``settings["eigenvalues"]`` holds λ₁, λ₂.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope import Objective
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
        >>> obj = Objective(model, F.cross_entropy, (torch.randn(16, 3).double(), torch.randint(0, 2, (16,))))
        >>> s = hessian_plane(obj, span=0.5, resolution=5, progress=False)
        >>> s.kind, s.shape, s.at_point("θ") == float(obj.loss())
        ('hessian_plane', (5, 5), True)
    """
    check_type("obj", obj, Objective, "an Objective")
    span = check_positive("span", span)
    nx, ny = resolution_pair(resolution)
    theta, state = center_point(obj, center, 2)
    (v1, v2), eig = hessian_directions(obj, 2, center=theta, **eigen_kw)
    alphas = axis_with_nodes(-span, span, nx, (0.0,))
    betas = axis_with_nodes(-span, span, ny, (0.0,))
    settings = {"directions": "hessian", "span": span, "resolution": [nx, ny], **_eig_settings(eig)}
    surf = slice_plane(
        obj,
        theta,
        state,
        [v1, v2],
        alphas,
        betas,
        kind="hessian_plane",
        settings=settings,
        test=test,
        bn_data=bn_data,
        store=store,
        progress=progress,
        checkpoint_every=checkpoint_every,
        distributed=distributed,
    )
    return _with_cost(surf, eig)


def _with_cost(surf: Any, eig: EigenResult) -> Any:
    """The surface with the eigenvector computation's cost added (HVPs, seconds)."""
    import dataclasses

    cost = surf.cost + eig.cost
    return dataclasses.replace(surf, cost=cost, seconds=float(surf.seconds + eig.cost.seconds))
