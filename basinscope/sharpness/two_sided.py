"""Two-sided sharpness S (SALR paper, §III, eq. 2).

    S(ε, θ) = max_{θ' ∈ B_ε(θ)} f(θ') − min_{θ' ∈ B_ε(θ)} f(θ')

Unlike Keskar's ϕ (eq. 1), S does not vanish at a local maximum: there the minimum over the ball is below
f(θ). At a local minimum the two coincide up to the normalization 1 + f(θ). Both extrema are found by the
same projected normalized gradient search as ``keskar(method="ball")`` (:mod:`basinscope.sharpness._ball`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .. import params as P
from .._checks import check_int, check_positive
from ..objective import Objective
from ._ball import ball_extremum
from ._common import checked_objective, finite_float, guard, start_point
from .result import SharpnessResult

__all__ = ["two_sided"]


def two_sided(
    obj: Objective,
    epsilon: float,
    *,
    steps: int = 20,
    restarts: int = 1,
    step_size: float = 2.0,
    seed: int = 0,
    params: Mapping[str, torch.Tensor] | None = None,
    progress: bool = False,
) -> SharpnessResult:
    """Two-sided sharpness S(ε, θ) = max_{B_ε(θ)} f − min_{B_ε(θ)} f (SALR paper, eq. 2).

    Args:
        obj: the objective f.
        epsilon: the Euclidean radius ε > 0 of the ball B_ε(θ).
        steps: projected gradient steps per run, for the maximum and for the minimum (default 20).
        restarts: further runs from uniformly random points of the ball (default 1; run 0 starts at θ).
        step_size: first step length as a fraction of ε (constant for half
            the steps, then decays to 1% of it; default 2.0).
        seed: seeds the random starts (the maximum uses ``seed``, the minimum ``seed + 1``).
        params: the point θ (default: the model's current parameters).
        progress: show a tqdm progress bar.

    Returns:
        :class:`SharpnessResult` with ``kind="two_sided"``, ``value`` = S, ``f_high``/``point_high`` the
        maximum found, ``f_low``/``point_low`` the minimum found. Cost: 2·(1 + restarts)·steps gradients.

    Example:
        >>> import torch
        >>> from basinscope.objective import Objective
        >>> obj = Objective.from_function(lambda t: -0.5 * (t**2).sum(), torch.zeros(1, dtype=torch.float64))
        >>> round(two_sided(obj, 0.1).value, 6)   # a maximum: S = ½·0.1², where ϕ would be 0
        0.005
    """
    obj = checked_objective(obj)
    eps = check_positive("epsilon", epsilon)
    steps = check_int("steps", steps, minimum=1)
    restarts = check_int("restarts", restarts, minimum=0)
    step_size = check_positive("step_size", step_size)
    seed = check_int("seed", seed, minimum=0)
    seed = obj.common_seed(seed)  # rank 0's random starts on every rank of a distributed objective
    settings: dict[str, Any] = {
        "epsilon": eps,
        "method": "ball",
        "steps": steps,
        "restarts": restarts,
        "step_size": step_size,
        "seed": seed,
    }
    common = {"steps": steps, "restarts": restarts, "step_size": step_size, "progress": progress}
    with guard(obj), obj.track() as tracker:
        theta = start_point(obj, params)
        f0 = obj.loss(theta)
        f_max, x_max = ball_extremum(obj, theta, f0, eps, maximize=True, seed=seed, desc="S: max", **common)
        f_min, x_min = ball_extremum(obj, theta, f0, eps, maximize=False, seed=seed + 1, desc="S: min", **common)
        f0_value = finite_float("loss", f0)
        f_max_value = finite_float("loss", f_max)
        f_min_value = finite_float("loss", f_min)
    return SharpnessResult(
        kind="two_sided",
        value=f_max_value - f_min_value,
        f0=f0_value,
        f_high=f_max_value,
        f_low=f_min_value,
        point_high=P.clone(x_max),
        point_low=P.clone(x_min),
        settings=settings,
        cost=tracker.cost,
    )
