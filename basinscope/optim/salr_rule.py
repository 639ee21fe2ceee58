"""The SALR learning-rate rule (SALR paper, Algorithm 1, line 6).

η_k = η₀ · Ŝ_k / median(Ŝ_1, …, Ŝ_k)

where Ŝ_i are the sharpness values measured so far (Algorithm 2 every ``c`` iterations). The history lives in a
pre-allocated tensor on the device, so the rule needs no host synchronization.

Guards (documented behaviour, tested):
* a non-finite Ŝ_k (the probe met a NaN/inf loss or gradient) is not recorded and resets the ratio to 1, i.e.
  the base rate η₀: keeping the previous ratio would freeze a rate that may itself have caused the divergence;
* when median ≤ 0 (possible with stochastic estimates) the ratio Ŝ_k/median is undefined and is set to 1,
  i.e. the base rate η₀ is used;
* the ratio is clamped to ``[min_ratio, max_ratio]`` (defaults 0 and +inf): a negative Ŝ_k never turns the step
  into gradient ascent.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_int, check_positive

__all__ = ["SALRRule"]


class SALRRule:
    """Stateful Ŝ history and the resulting learning-rate multiplier Ŝ_k / median(Ŝ_1..Ŝ_k).

    Args:
        capacity: initial size of the history buffer (grows by doubling).
        min_ratio, max_ratio: clamp of the multiplier.
        device: where the history lives.

    Example:
        >>> rule = SALRRule()
        >>> [float(rule.update(torch.tensor(s))) for s in (1.0, 3.0, 2.0)]
        [1.0, 1.5, 1.0]
    """

    def __init__(
        self,
        capacity: int = 1024,
        *,
        min_ratio: float = 0.0,
        max_ratio: float = math.inf,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        check_int("capacity", capacity, minimum=1)
        check_positive("min_ratio", min_ratio, allow_zero=True)
        if not (max_ratio > min_ratio):
            raise ValueError(f"max_ratio: expected a number > min_ratio={min_ratio}, got {max_ratio!r}")
        self.min_ratio = float(min_ratio)
        self.max_ratio = float(max_ratio)
        self.history = torch.full((capacity,), float("nan"), device=device, dtype=dtype)
        self.count = torch.zeros((), dtype=torch.long, device=device)
        self.ratio = torch.ones((), device=device, dtype=dtype)
        self.updates = 0

    def update(self, sharpness: torch.Tensor) -> torch.Tensor:
        """Record Ŝ_k and return the multiplier Ŝ_k / median(Ŝ_1..Ŝ_k) as a 0-d device tensor."""
        s = torch.as_tensor(sharpness, dtype=self.history.dtype, device=self.history.device).reshape(())
        if self.updates >= self.history.numel():
            grown = torch.full((2 * self.history.numel(),), float("nan"), device=s.device, dtype=s.dtype)
            grown[: self.history.numel()] = self.history
            self.history = grown
        finite = torch.isfinite(s)
        # write at the slot `updates`; non-finite values stay NaN and nanmedian skips them
        self.history[self.updates] = torch.where(finite, s, torch.full_like(s, float("nan")))
        self.updates += 1
        # the usual median (mean of the two middle values for an even count), as numpy.median
        med = torch.nanquantile(self.history[: self.updates], 0.5)
        ratio = torch.where(med > 0, s / med, torch.ones_like(s))
        ratio = ratio.clamp(self.min_ratio, self.max_ratio)
        # a non-finite probe falls back to η₀ (ratio 1), never to the previous (possibly huge) ratio
        self.ratio = torch.where(finite, ratio, torch.ones_like(ratio))
        self.count = self.count + finite.long()
        return self.ratio

    def values(self) -> torch.Tensor:
        """The recorded Ŝ values (NaN where a non-finite value was skipped)."""
        return self.history[: self.updates].clone()

    def state_dict(self) -> dict:
        return {
            "history": self.history.clone(),
            "updates": self.updates,
            "ratio": self.ratio.clone(),
            "count": self.count.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.history = state["history"].clone().to(self.history.device)
        self.updates = int(state["updates"])
        self.ratio = state["ratio"].clone().to(self.history.device)
        self.count = state["count"].clone().to(self.history.device)
