"""The learning-rate schedules of SWA Revisited (§5, Fig. 9) and of the SWA phase (CHC) vs hand-written values."""

from __future__ import annotations

import pytest
import torch

from basinscope.optim import CHCLR, PreSWALR, chc_lr, pre_swa_lr

# total = 20, C_h = 0.05, C_l = 0.01: constant to t = 0.5, linear to t = 0.9, then constant
PRE = {0: 0.05, 5: 0.05, 10: 0.05, 11: 0.045, 12: 0.04, 14: 0.03, 16: 0.02, 18: 0.01, 19: 0.01, 20: 0.01}


def test_pre_swa_schedule_hand_values():
    for step, lr in PRE.items():
        assert pre_swa_lr(step, 20, high=0.05, low=0.01) == pytest.approx(lr, abs=1e-15), step


def test_pre_swa_schedule_matches_reference_code_formula():
    # the SWA reference code's schedule(epoch) with lr_init = 0.1, swa_lr = 0.02, swa_start = 16
    for epoch in range(20):
        t = epoch / 16
        factor = 1.0 if t <= 0.5 else (1.0 - 0.8 * (t - 0.5) / 0.4 if t <= 0.9 else 0.2)
        assert pre_swa_lr(epoch, 16, high=0.1, low=0.02) == pytest.approx(0.1 * factor, rel=1e-14)


def test_chc_cyclic_and_constant_hand_values():
    # c = 4, α1 = 0.05, α2 = 0.01: t(i) = 1/4, 2/4, 3/4, 1 then repeat
    expected = [0.04, 0.03, 0.02, 0.01, 0.04, 0.03, 0.02, 0.01]
    got = [chc_lr(i, high=0.05, low=0.01, cycle=4) for i in range(1, 9)]
    assert got == pytest.approx(expected, abs=1e-15)
    assert [chc_lr(i, high=0.02) for i in (1, 7, 100)] == [0.02, 0.02, 0.02]


def test_schedulers_follow_the_functions():
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.05)
    sched = PreSWALR(opt, 20, high=0.05, low=0.01)
    seen = []
    for _ in range(21):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([pre_swa_lr(s, 20, high=0.05, low=0.01) for s in range(21)], abs=1e-15)
    opt = torch.optim.SGD([w], lr=0.05)
    sched = CHCLR(opt, high=0.05, low=0.01, cycle=3)
    seen = []
    for _ in range(7):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([chc_lr(i, high=0.05, low=0.01, cycle=3) for i in range(1, 8)], abs=1e-15)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pre_swa_lr(0, 0, high=0.1, low=0.01), r"total: expected an integer >= 1, got 0"),
        (lambda: pre_swa_lr(-1, 10, high=0.1, low=0.01), r"step: expected an integer >= 0, got -1"),
        (lambda: pre_swa_lr(0, 10, high=-0.1, low=0.01), r"high: expected a finite number > 0, got -0.1"),
        (lambda: pre_swa_lr(0, 10, high=0.1, low=0.2), r"low: expected a rate <= high=0.1, got 0.2"),
        (lambda: chc_lr(0, high=0.1), r"iteration: expected an integer >= 1, got 0"),
        (lambda: chc_lr(1, high=0.1, low=0.01, cycle=0), r"cycle: expected an integer >= 1, got 0"),
        (lambda: chc_lr(1, high=0.1, low=-0.01), r"low: expected a finite number >= 0, got -0.01"),
    ],
    ids=["total", "step", "high", "low>high", "iteration", "cycle", "low-neg"],
)
def test_bad_schedule_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
