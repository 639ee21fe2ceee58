"""Extrema of f over a Euclidean ball B_ε(θ) by projected, normalized gradient steps (one implementation,
used by :func:`~basinscope.sharpness.keskar` with ``method="ball"`` and by :func:`~basinscope.sharpness.two_sided`).

Each run starts at a point x₀ of the ball and repeats, for t = 0, …, steps−1,

    x ← Π_ε( x ± α_t · ∇f(x)/‖∇f(x)‖ ),

    α_t = step_size·ε for the first ⌊steps/2⌋ steps, then geometric decay to 0.01·step_size·ε,

with Π_ε the Euclidean projection onto B_ε(θ) (rescale x − θ to norm ε if it is longer) and "+" for the
maximum, "−" for the minimum. Long constant steps first (on the sphere, where the maximum of a convex
function lies, they converge like power iteration; step_size = 2 measured better than 1 on quadratics),
then the decay, so an interior extremum of a non-convex f is located to within a small fraction of ε instead of being
circled at a fixed step length. Where the gradient is exactly zero (θ itself at a critical point) the step
follows a fixed random unit direction instead, so a run started at a minimum still leaves it.

The best value seen (including f(θ) itself and the last iterate) is kept, so the reported maximum is never
below f(θ) and the minimum never above it. Run 0 starts at θ; each of ``restarts`` further runs starts at a
point drawn uniformly from the ball (seeded), in antithetic pairs: run 1 lies on the opposite side of θ from
the direction run 0 leaves a critical point in, runs 2 and 3 on opposite sides along a fresh direction, etc.
Everything stays on the device: no host synchronization per step (the objective's own finiteness check
aside); a non-finite value met on the way is kept on the device and raised once at the end.
"""

from __future__ import annotations

import torch

from .. import params as P
from .._checks import check_finite_tensor
from ..objective import Objective
from ._common import progress_bar, tiny

__all__ = ["ball_extremum"]

_FINAL_FRACTION = 0.01


def _unit_direction(like: P.Params, gen: torch.Generator) -> P.Params:
    d = P.random_direction(like, generator=gen)
    return P.scale(d, 1.0 / P.norm(d))


def _radius_in_ball(n: int, epsilon: float, gen: torch.Generator) -> float:
    """Radius of a uniform draw from an n-dimensional ball of radius ε."""
    return epsilon * float(torch.rand((), generator=gen, dtype=torch.float64)) ** (1.0 / n)


def _project(x: P.Params, center: P.Params, epsilon: float) -> P.Params:
    delta = P.sub(x, center)
    length = P.norm(delta)
    factor = (epsilon / length).clamp(max=1.0)  # length 0 gives inf, clamped to 1
    return P.axpy(factor, delta, center)


def step_lengths(epsilon: float, steps: int, step_size: float) -> list[float]:
    """The schedule α_0, …, α_{steps−1} (constant, then geometric decay to 1% of step_size·ε)."""
    hold = steps // 2
    decay = steps - hold
    out = [step_size * epsilon] * hold
    out += [step_size * epsilon * _FINAL_FRACTION ** ((t + 1) / decay) for t in range(decay)]
    return out


def ball_extremum(
    obj: Objective,
    center: P.Params,
    f_center: torch.Tensor,
    epsilon: float,
    *,
    maximize: bool,
    steps: int,
    restarts: int,
    step_size: float,
    seed: int,
    progress: bool = False,
    desc: str = "ball search",
) -> tuple[torch.Tensor, P.Params]:
    """(best value, best point) of f over B_ε(center) found by projected normalized gradient steps.

    ``f_center`` is f(center) (a 0-d tensor); it seeds the best value. See the module docstring for the
    iteration. Costs ``(1 + restarts)·steps`` gradients and ``1 + restarts`` extra forward passes.
    """
    gen = torch.Generator().manual_seed(seed)
    sign = 1.0 if maximize else -1.0
    alphas = step_lengths(epsilon, steps, step_size)
    best_f = f_center.detach().clone()
    best_x = P.clone(center)
    keys = list(center)
    bar = progress_bar((1 + restarts) * steps, progress, desc)

    bad = torch.zeros_like(best_f)  # the first non-finite value seen (the objective may not check)

    def keep_if_better(f: torch.Tensor, x: P.Params) -> None:
        nonlocal best_f, best_x, bad
        bad = torch.where(torch.isfinite(f) | ~torch.isfinite(bad), bad, f)
        better = f > best_f if maximize else f < best_f
        best_f = torch.where(better, f, best_f)
        best_x = {k: torch.where(better, x[k], best_x[k]) for k in keys}

    n = P.numel(center)
    direction = _unit_direction(center, gen)
    try:
        for run in range(1 + restarts):
            # run 0: θ itself, leaving a critical point along `direction`; odd runs: a uniform point on the
            # opposite side (−direction), even runs: a fresh uniform point. The antithetic pairs make sure
            # both sides of a critical point are searched (in 1-D: both ends of the interval).
            if run == 0:
                x = P.clone(center)
            else:
                if run % 2 == 0:
                    direction = _unit_direction(center, gen)
                sign_side = -1.0 if run % 2 == 1 else 1.0
                x = P.axpy(sign_side * _radius_in_ball(n, epsilon, gen), direction, center)
            fallback = direction if run % 2 == 0 else P.scale(direction, -1.0)
            for alpha in alphas:
                f, g = obj.loss_and_grad(x)
                keep_if_better(f, x)
                gnorm = P.norm(g)
                coef = (sign * alpha) / gnorm.clamp_min(tiny(gnorm.dtype))
                at_critical = (gnorm == 0).to(gnorm.dtype)
                x = P.axpy(coef, g, x)
                x = P.axpy(at_critical * alpha, fallback, x)
                x = _project(x, center, epsilon)
                bar.update(1)
            keep_if_better(obj.loss(x), x)
    finally:
        bar.close()
    check_finite_tensor("loss", bad)
    return best_f, best_x
