"""Learning-rate schedules of the SWA papers.

* :func:`pre_swa_lr` — the schedule run *before* SWA ("SWA Revisited", §5 and Fig. 9; the ``schedule()`` of
  the SWA reference code of Izmailov et al., 2018). With t = step / total:

      lr(t) = C_h                                      t ≤ 0.5
      lr(t) = C_h · (1 − (1 − C_l/C_h)·(t − 0.5)/0.4)   0.5 < t ≤ 0.9   (linear decrease)
      lr(t) = C_l                                      t > 0.9

  Fig. 9 uses C_h = 0.05, C_l = 0.01.
* :func:`chc_lr` — the Cyclical or High Constant (CHC) schedule of the SWA phase (Algorithm 1, line 3).
  High constant: α(i) = α₁. Cyclical with cycle length c (Izmailov et al., 2018, eq. 2), for i = 1, 2, …:

      t(i) = (mod(i − 1, c) + 1) / c,    α(i) = (1 − t(i))·α₁ + t(i)·α₂

  so the rate falls linearly from near α₁ to α₂ within each cycle and reaches α₂ exactly at i ≡ 0 (mod c),
  the iterations at which Algorithm 1 collects its SWA samples.

Both exist as plain functions of the step and as ``torch.optim.lr_scheduler.LRScheduler`` subclasses
(:class:`PreSWALR`, :class:`CHCLR`) that set absolute rates.

Example:
    >>> [round(pre_swa_lr(s, 10, high=0.05, low=0.01), 4) for s in (0, 5, 7, 9, 10)]
    [0.05, 0.05, 0.03, 0.01, 0.01]
    >>> [round(chc_lr(i, high=0.05, low=0.01, cycle=2), 4) for i in (1, 2, 3)]
    [0.03, 0.01, 0.03]
"""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LRScheduler

from .._checks import check_int, check_positive, fail

__all__ = ["CHCLR", "PreSWALR", "chc_lr", "pre_swa_lr"]


def _check_rates(high: float, low: float | None) -> tuple[float, float | None]:
    high = check_positive("high", high)
    if low is not None:
        low = check_positive("low", low, allow_zero=True)
        if low > high:
            fail("low", f"a rate <= high={high}", low)
    return high, low


def pre_swa_lr(step: int, total: int, *, high: float, low: float) -> float:
    """The pre-SWA schedule (SWA Revisited §5, Fig. 9): constant ``high`` (C_h) for the first half of
    ``total`` steps, linear decrease until 90 %, then constant ``low`` (C_l)."""
    check_int("step", step, minimum=0)
    check_int("total", total, minimum=1)
    high, low = _check_rates(high, low)
    t = step / total
    if t <= 0.5:
        factor = 1.0
    elif t <= 0.9:
        factor = 1.0 - (1.0 - low / high) * (t - 0.5) / 0.4
    else:
        factor = low / high
    return high * factor


def chc_lr(iteration: int, *, high: float, low: float | None = None, cycle: int = 1) -> float:
    """The CHC schedule of the SWA phase at ``iteration`` (1-based, as Algorithm 1's loop): ``high`` when
    ``low`` is None (high constant), else cyclical from ``high`` to ``low`` over ``cycle`` iterations."""
    check_int("iteration", iteration, minimum=1)
    check_int("cycle", cycle, minimum=1)
    high, low = _check_rates(high, low)
    if low is None:
        return high
    t = ((iteration - 1) % cycle + 1) / cycle
    return (1.0 - t) * high + t * low


class PreSWALR(LRScheduler):
    """:func:`pre_swa_lr` as an LR scheduler: call ``scheduler.step()`` once per iteration.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
        >>> sched = PreSWALR(opt, total=10, high=0.05, low=0.01)
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total: int, *, high: float, low: float, last_epoch=-1):
        self.total = check_int("total", total, minimum=1)
        self.high, self.low = _check_rates(high, low)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lr = pre_swa_lr(max(self.last_epoch, 0), self.total, high=self.high, low=self.low)
        return [lr for _ in self.optimizer.param_groups]


class CHCLR(LRScheduler):
    """:func:`chc_lr` as an LR scheduler. The rate in force during the i-th ``optimizer.step()`` (i = 1, 2, …)
    is ``chc_lr(i)``; call ``scheduler.step()`` after each ``optimizer.step()``."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        high: float,
        low: float | None = None,
        cycle: int = 1,
        last_epoch: int = -1,
    ):
        self.cycle = check_int("cycle", cycle, minimum=1)
        self.high, self.low = _check_rates(high, low)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lr = chc_lr(max(self.last_epoch, 0) + 1, high=self.high, low=self.low, cycle=self.cycle)
        return [lr for _ in self.optimizer.param_groups]
