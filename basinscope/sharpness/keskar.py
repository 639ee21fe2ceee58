"""Keskar sharpness ϕ (SALR paper, §III, eq. 1; Keskar et al., ICLR 2017, §2.2.1).

    ϕ(ε, θ) = [ max_{θ' ∈ C_ε(θ)} f(θ') − f(θ) ] / (1 + f(θ))

Two neighbourhoods C_ε(θ):

* ``method="ball"`` (default) — the Euclidean ball B_ε(θ) = {θ' : ‖θ' − θ‖₂ ≤ ε} of the SALR paper's eq. 1,
  maximized by projected normalized gradient ascent with restarts (:mod:`basinscope.sharpness._ball`).
* ``method="box"`` — Keskar et al.'s original box {θ' : |θ'_i − θ_i| ≤ ε(|θ_i| + 1)}, maximized with scipy's
  L-BFGS-B (bound constraints), as in Keskar et al. With ``subspace_dim=p`` the search runs in a random
  p-dimensional subspace, θ' = θ + A·y, with bounds |y_i| ≤ ε(|(A⁺θ)_i| + 1) (Keskar et al.'s C_ε with a
  random A). Here A has orthonormal columns (a QR factor of a seeded Gaussian n×p matrix), so A⁺ = Aᵀ.

Keskar et al. report 100·ϕ; this function returns ϕ as in the SALR paper's eq. 1 (no factor 100).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .. import params as P
from .._checks import check_choice, check_finite_tensor, check_int, check_positive, fail
from ..objective import Objective
from ._ball import ball_extremum
from ._common import checked_objective, finite_float, guard, progress_bar, start_point
from .result import SharpnessResult

__all__ = ["keskar", "random_subspace"]


def random_subspace(n: int, p: int, seed: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The n×p matrix A with orthonormal columns used by ``keskar(..., method="box", subspace_dim=p)``.

    Drawn on the CPU from ``seed`` (the same A on every device): Q factor of an i.i.d. N(0, 1) matrix.
    """
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n, p, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(g)
    return q.to(dtype)


def _box_maximum(
    obj: Objective,
    theta: P.Params,
    f_center: torch.Tensor,
    epsilon: float,
    *,
    steps: int,
    restarts: int,
    subspace_dim: int | None,
    seed: int,
    progress: bool,
) -> tuple[torch.Tensor, P.Params]:
    """max f over Keskar's box by L-BFGS-B (full space or a random subspace); returns (value, point)."""
    from scipy.optimize import minimize

    flat = P.flatten(theta)
    n = flat.numel()
    basis = None
    if subspace_dim is None:
        half_width = epsilon * (flat.abs() + 1.0)
    else:
        basis = random_subspace(n, subspace_dim, seed).to(device=flat.device, dtype=flat.dtype)
        half_width = epsilon * ((basis.T @ flat).abs() + 1.0)
    hw = half_width.detach().cpu().double().numpy()
    bounds = list(zip(-hw, hw))
    rng = np.random.default_rng(seed)
    bar = progress_bar((1 + restarts) * steps, progress, "keskar box")

    def point_of(y: np.ndarray) -> P.Params:
        yt = torch.as_tensor(y, dtype=flat.dtype, device=flat.device)
        offset = yt if basis is None else basis @ yt
        return P.unflatten(flat + offset, theta)

    def negative(y: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = obj.loss_and_grad(point_of(y))
        check_finite_tensor("loss", f)  # L-BFGS-B syncs on every evaluation anyway
        gflat = P.flatten(g)
        gy = gflat if basis is None else basis.T @ gflat
        return -float(f), -gy.detach().cpu().double().numpy()

    best_f = float(f_center)
    best_y = np.zeros_like(hw)
    try:
        for run in range(1 + restarts):
            y0 = np.zeros_like(hw) if run == 0 else rng.uniform(-hw, hw)
            res = minimize(
                negative,
                y0,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": steps},
                callback=lambda *_: bar.update(1),
            )
            y = np.clip(res.x, -hw, hw)
            f_y = finite_float("loss", obj.loss(point_of(y)))
            if f_y > best_f:
                best_f, best_y = f_y, y
    finally:
        bar.close()
    return torch.as_tensor(best_f, dtype=f_center.dtype, device=f_center.device), point_of(best_y)


def keskar(
    obj: Objective,
    epsilon: float,
    *,
    method: str = "ball",
    steps: int = 20,
    restarts: int = 1,
    step_size: float = 2.0,
    subspace_dim: int | None = None,
    seed: int = 0,
    params: Mapping[str, torch.Tensor] | None = None,
    progress: bool = False,
) -> SharpnessResult:
    """Keskar sharpness ϕ(ε, θ) = [max_{θ'∈C_ε(θ)} f(θ') − f(θ)] / (1 + f(θ)) (SALR paper, eq. 1).

    Args:
        obj: the objective f (a network with data, or ``Objective.from_function``).
        epsilon: the radius ε > 0 (ball: Euclidean radius; box: relative half-width, Keskar et al. used
            1e-3 and 5e-4).
        method: ``"ball"`` (default; B_ε(θ), eq. 1 of the SALR paper, projected gradient ascent) or
            ``"box"`` (Keskar et al.'s |θ'_i − θ_i| ≤ ε(|θ_i|+1), scipy L-BFGS-B).
        steps: ball: gradient steps per run (default 20); box: L-BFGS-B iterations per run (``maxiter``).
        restarts: further runs from points drawn uniformly from the neighbourhood (default 1; run 0 starts
            at θ). The largest value found over all runs is reported.
        step_size: ball only: the first step length as a fraction of ε (constant for half
            the steps, then decays to 1% of it; default 2.0).
        subspace_dim: box only: search in a random subspace of this dimension (Keskar et al.'s A, n×p);
            ``None`` (default) searches the full space.
        seed: seeds the random starts, the fallback direction at a critical point and the subspace.
        params: the point θ (default: the model's current parameters).
        progress: show a tqdm progress bar.

    Returns:
        :class:`SharpnessResult` with ``kind="keskar"``, ``value`` = ϕ, ``f0`` = f(θ), ``f_high`` = the
        maximum found, ``point_high`` = its location, and the cost.

    Example:
        >>> import torch
        >>> from basinscope.objective import Objective
        >>> obj = Objective.from_function(lambda t: 0.5 * (t**2).sum(), torch.zeros(2, dtype=torch.float64))
        >>> round(keskar(obj, 0.1).value, 6)    # ½·λ_max·ε² / (1 + 0)
        0.005
    """
    obj = checked_objective(obj)
    eps = check_positive("epsilon", epsilon)
    method = check_choice("method", method, ("ball", "box"))
    steps = check_int("steps", steps, minimum=1)
    restarts = check_int("restarts", restarts, minimum=0)
    step_size = check_positive("step_size", step_size)
    seed = check_int("seed", seed, minimum=0)
    seed = obj.common_seed(seed)  # rank 0's random starts on every rank of a distributed objective
    if subspace_dim is not None:
        if method != "box":
            fail("subspace_dim", "None for method='ball' (subspaces are part of the box method)", subspace_dim)
        subspace_dim = check_int("subspace_dim", subspace_dim, minimum=1, maximum=obj.dim)
    settings: dict[str, Any] = {
        "epsilon": eps,
        "method": method,
        "steps": steps,
        "restarts": restarts,
        "step_size": step_size,
        "subspace_dim": subspace_dim,
        "seed": seed,
    }
    with guard(obj), obj.track() as tracker:
        theta = start_point(obj, params)
        f0 = obj.loss(theta)
        if method == "ball":
            f_max, x_max = ball_extremum(
                obj,
                theta,
                f0,
                eps,
                maximize=True,
                steps=steps,
                restarts=restarts,
                step_size=step_size,
                seed=seed,
                progress=progress,
                desc="keskar ball",
            )
        else:
            f_max, x_max = _box_maximum(
                obj,
                theta,
                f0,
                eps,
                steps=steps,
                restarts=restarts,
                subspace_dim=subspace_dim,
                seed=seed,
                progress=progress,
            )
        f0_value = finite_float("loss", f0)
        f_max_value = finite_float("loss", f_max)
    if 1.0 + f0_value == 0.0:
        fail("obj", "f(θ) ≠ −1 (ϕ divides by 1 + f(θ))", "f(θ) = −1", raw=True)
    value = (f_max_value - f0_value) / (1.0 + f0_value)
    return SharpnessResult(
        kind="keskar",
        value=value,
        f0=f0_value,
        f_high=f_max_value,
        f_low=None,
        point_high=P.clone(x_max),
        point_low=None,
        settings=settings,
        cost=tracker.cost,
    )
