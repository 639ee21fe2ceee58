"""The probe sharpness Ŝ (SALR paper, §III, Definition 1), with full-objective gradients.

From θ_k two walks of normalized gradient steps of length γ, both starting at θ_k
(θ_{k,−}^{(0)} = θ_{k,+}^{(0)} = θ_k):

    descent (n₁ steps):  θ_{k,−}^{(i+1)} = θ_{k,−}^{(i)} − γ ∇f(θ_{k,−}^{(i)}) / ‖∇f(θ_{k,−}^{(i)})‖
    ascent  (n₂ steps):  θ_{k,+}^{(i+1)} = θ_{k,+}^{(i)} + γ ∇f(θ_{k,+}^{(i)}) / ‖∇f(θ_{k,+}^{(i)})‖

    Ŝ(θ_k) = f(θ_{k,+}^{(n₂)}) − f(θ_{k,−}^{(n₁)})

The paper's n₁ counts the *descent* steps (``n_descent``) and n₂ the *ascent* steps (``n_ascent``); the
paper's prose swaps them, Definition 1 and Algorithm 2 do not (see the papers' README). Normalizing the
gradient (Remark 2) makes every step exactly γ long, so the walks stay in B_{nγ}(θ_k) and Ŝ does not vanish
at a sharp minimum where the gradient is small. Where the gradient is exactly zero the normalized step is
undefined; this implementation then takes a zero step (the walk rests at the critical point).

The minibatch version with per-example normalization (Algorithm 2) is :func:`stochastic_probe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .. import params as P
from .._checks import check_int, check_positive
from ..objective import Objective
from ._common import checked_objective, finite_float, guard, start_point, tiny
from .result import SharpnessResult

__all__ = ["normalized_walk", "probe"]


def normalized_walk(
    obj: Objective, theta: P.Params, gamma: float, n_steps: int, *, ascent: bool
) -> tuple[P.Params, torch.Tensor | None]:
    """``n_steps`` normalized gradient steps of length γ from θ (uphill if ``ascent``).

    Returns (end point, f(θ) from the first gradient evaluation or ``None`` when ``n_steps == 0``).
    No host synchronization: the zero-gradient guard is a clamp, not a branch.
    """
    x = P.clone(theta)
    f_start = None
    sign = 1.0 if ascent else -1.0
    for i in range(n_steps):
        f, g = obj.loss_and_grad(x)
        if i == 0:
            f_start = f
        gnorm = P.norm(g)
        x = P.axpy((sign * gamma) / gnorm.clamp_min(tiny(gnorm.dtype)), g, x)
    return x, f_start


def probe(
    obj: Objective,
    gamma: float,
    n_descent: int,
    n_ascent: int,
    *,
    params: Mapping[str, torch.Tensor] | None = None,
) -> SharpnessResult:
    """Ŝ(θ) = f(θ⁺) − f(θ⁻) after ``n_ascent`` normalized ascent and ``n_descent`` normalized descent steps of
    length ``gamma`` from θ (SALR paper, Definition 1; full-objective gradients).

    Args:
        obj: the objective f (all of its data are used for every gradient).
        gamma: the step length γ > 0.
        n_descent: n₁ of Definition 1, the number of descent steps (≥ 0).
        n_ascent: n₂ of Definition 1, the number of ascent steps (≥ 0).
        params: the point θ (default: the model's current parameters).

    Returns:
        :class:`SharpnessResult` with ``kind="probe"``, ``value`` = Ŝ, ``f_high`` = f(θ⁺), ``f_low`` = f(θ⁻),
        ``point_high`` = θ⁺, ``point_low`` = θ⁻. Cost: n_descent + n_ascent gradients and up to 3 forward
        passes (f(θ⁺), f(θ⁻), and f(θ) when no step is taken).

    Example:
        >>> import torch
        >>> from basinscope.objective import Objective
        >>> obj = Objective.from_function(lambda t: 0.5 * (t**2).sum(), torch.tensor([1.0], dtype=torch.float64))
        >>> r = probe(obj, 0.1, n_descent=2, n_ascent=2)
        >>> round(r.value, 6)    # ½·1.2² − ½·0.8²
        0.4
    """
    obj = checked_objective(obj)
    gamma = check_positive("gamma", gamma)
    n_descent = check_int("n_descent", n_descent, minimum=0)
    n_ascent = check_int("n_ascent", n_ascent, minimum=0)
    settings: dict[str, Any] = {"gamma": gamma, "n_descent": n_descent, "n_ascent": n_ascent}
    with guard(obj), obj.track() as tracker:
        theta = start_point(obj, params)
        x_low, f0_descent = normalized_walk(obj, theta, gamma, n_descent, ascent=False)
        x_high, f0_ascent = normalized_walk(obj, theta, gamma, n_ascent, ascent=True)
        f0 = f0_descent if f0_descent is not None else f0_ascent
        if f0 is None:
            f0 = obj.loss(theta)
        f_low = obj.loss(x_low) if n_descent > 0 else f0
        f_high = obj.loss(x_high) if n_ascent > 0 else f0
        f0_value = finite_float("loss", f0)
        f_low_value = finite_float("loss", f_low)
        f_high_value = finite_float("loss", f_high)
    return SharpnessResult(
        kind="probe",
        value=f_high_value - f_low_value,
        f0=f0_value,
        f_high=f_high_value,
        f_low=f_low_value,
        point_high=x_high,
        point_low=x_low,
        settings=settings,
        cost=tracker.cost,
    )
