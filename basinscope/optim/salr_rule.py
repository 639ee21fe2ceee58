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

With ``band=(low, high)`` the rule is the one of the SALR authors' released training script (``CIFAR10/main.py``,
``SALR(variant="released")``): the ratio is Ŝ_k / P50 only when Ŝ_k lies outside the percentile band,

    ratio = Ŝ_k / P50(Ŝ_1..Ŝ_k)   if Ŝ_k > P_high or Ŝ_k < P_low,   else 1,

then clamped to ``[min_ratio, max_ratio]`` (the script: no lower bound, ``max_ratio`` 5). Percentiles are
numpy's default linear interpolation, computed on the device by ``torch.nanquantile`` with Python-float
quantiles (a tensor of quantiles would be range-checked on the host: one sync). The script has no median ≤ 0
guard (kept: the band rule divides by P50 whatever its sign), and it would record a non-finite Ŝ, after which every
percentile is NaN and the rate η₀ for good; here a non-finite Ŝ is skipped as in the median rule.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_int, check_positive, fail

__all__ = ["SALRRule", "check_band"]


def check_band(band: tuple[float, float]) -> tuple[float, float]:
    """Validate a percentile band ``(low, high)`` with 0 <= low <= 50 <= high <= 100; returns floats."""
    ok = (
        isinstance(band, (tuple, list))
        and len(band) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in band)
    )
    if not ok or not (0 <= band[0] <= 50 <= band[1] <= 100):
        fail("band", "two percentiles (low, high) with 0 <= low <= 50 <= high <= 100", band)
    return float(band[0]), float(band[1])


class SALRRule:
    """Stateful Ŝ history and the resulting learning-rate multiplier Ŝ_k / median(Ŝ_1..Ŝ_k).

    Args:
        capacity: initial size of the history buffer (grows by doubling).
        min_ratio, max_ratio: clamp of the multiplier (with ``band``, ``min_ratio`` may be negative or -inf).
        band: ``None`` (the paper's median rule) or the percentile band ``(low, high)`` of the released rule.
        device: where the history lives.

    Example:
        >>> rule = SALRRule()
        >>> [float(rule.update(torch.tensor(s))) for s in (1.0, 3.0, 2.0)]
        [1.0, 1.5, 1.0]
        >>> released = SALRRule(band=(49, 51), min_ratio=-math.inf, max_ratio=5.0)
        >>> [round(float(released.update(torch.tensor(s))), 4) for s in (1.0, 3.0, 2.0, 40.0)]
        [1.0, 1.5, 1.0, 5.0]
    """

    def __init__(
        self,
        capacity: int = 1024,
        *,
        min_ratio: float = 0.0,
        max_ratio: float = math.inf,
        band: tuple[float, float] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        check_int("capacity", capacity, minimum=1)
        if band is None:
            check_positive("min_ratio", min_ratio, allow_zero=True)
        else:
            band = check_band(band)
            if isinstance(min_ratio, bool) or not isinstance(min_ratio, (int, float)) or math.isnan(min_ratio):
                fail("min_ratio", "a number (-inf for no lower bound)", min_ratio)
        self.band = band
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
        if self.band is None:
            ratio = torch.where(med > 0, s / med, torch.ones_like(s))
        else:  # the released script: Ŝ/P50 outside the (low, high) percentile band, else 1
            low = torch.nanquantile(self.history[: self.updates], self.band[0] / 100)
            high = torch.nanquantile(self.history[: self.updates], self.band[1] / 100)
            ratio = torch.where((s > high) | (s < low), s / med, torch.ones_like(s))
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
