"""The result object shared by every sharpness estimator (SALR paper, §III, eqs. 1–2 and Definition 1)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..objective import Cost
from ..params import Params
from ..results import Result

__all__ = ["SharpnessResult"]


@dataclasses.dataclass(frozen=True)
class SharpnessResult(Result):
    """A sharpness value with the points that produced it.

    Attributes:
        kind: ``"keskar"`` (ϕ, eq. 1), ``"two_sided"`` (S, eq. 2), ``"probe"`` (Ŝ, Definition 1) or
            ``"stochastic_probe"`` (Ŝ of Algorithm 2 on a minibatch).
        value: the sharpness.
        f0: f(θ) at the measured point.
        f_high: the largest value found (f(θ_max) for ϕ and S; f(θ⁺) after the ascent steps for Ŝ).
        f_low: the smallest value found (f(θ_min) for S; f(θ⁻) after the descent steps for Ŝ; ``None`` for ϕ).
        point_high: θ_max / θ⁺ as a parameter dict (``None`` if not kept).
        point_low: θ_min / θ⁻ (``None`` for ϕ or if not kept).
        settings: the estimator's arguments (ε or γ, step counts, seeds, method).
        cost: what the estimate spent (forward passes, gradients, seconds).
    """

    kind: str
    value: float
    f0: float
    f_high: float | None = None
    f_low: float | None = None
    point_high: Params | None = None
    point_low: Params | None = None
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)

    def __float__(self) -> float:
        return float(self.value)
