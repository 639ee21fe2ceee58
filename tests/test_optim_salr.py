"""SALR (SALR paper, Algorithms 1, 3, 4): the learning-rate rule, the wrappers and the tensor-rate optimizers."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from basinscope.objective import Objective
from basinscope.optim import SALR, SGD, SGDSALR, Adam, AdamSALR, EntropySGDSALR, SALRRule
from basinscope.sharpness.stochastic import stochastic_probe

from .conftest import tiny_bn_net, tiny_data


def _mlp(seed=0, device="cpu"):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).double().to(device)


def _closure(opt, model, x, y):
    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return closure


SEQ = [0.4, 1.0, 0.2, 3.0, 0.7, 0.7, 2.5, 0.1]


@pytest.mark.parametrize("c", [1, 2, 3])
def test_lr_sequence_matches_hand_computed_medians(c, device):
    model = _mlp(device=device)
    x, y = tiny_data(n=8, device=device)
    opt = SALR(SGD(model.parameters(), lr=0.1), c=c)
    lrs, recorded = [], []
    for k in range(len(SEQ)):
        opt.step(_closure(opt, model, x, y), sharpness=SEQ[k])  # used only when k mod c = 0
        lrs.append(float(opt.param_groups[0]["lr"]))
        if k % c == 0:
            recorded.append(SEQ[k])
        # Algorithm 3: η_k = η0 · Ŝ_last / median(all recorded Ŝ), held between measurements
        assert lrs[-1] == pytest.approx(0.1 * recorded[-1] / np.median(recorded), rel=1e-12)
    assert opt.iteration == len(SEQ)


def test_rule_guards():
    rule = SALRRule()
    assert float(rule.update(torch.tensor(2.0))) == 1.0
    assert float(rule.update(torch.tensor(float("nan")))) == 1.0  # skipped: base rate
    assert float(rule.update(torch.tensor(4.0))) == pytest.approx(4.0 / 3.0)
    assert float(rule.update(torch.tensor(float("inf")))) == 1.0  # skipped: back to the base rate
    neg = SALRRule()
    neg.update(torch.tensor(-1.0))
    assert float(neg.ratio) == 1.0  # median ≤ 0 → base rate
    pos = SALRRule()
    pos.update(torch.tensor(1.0))
    pos.update(torch.tensor(2.0))
    assert float(pos.update(torch.tensor(-5.0))) == 0.0  # clamped: never gradient ascent
    capped = SALRRule(max_ratio=2.0)
    capped.update(torch.tensor(1.0))
    capped.update(torch.tensor(1.0))
    assert float(capped.update(torch.tensor(100.0))) == 2.0
    assert torch.isnan(rule.values()[1])


def test_non_finite_sharpness_resets_a_huge_ratio_to_one():
    """A probe that meets a diverged loss must not freeze the (huge) rate that caused it: η falls back to η₀."""
    rule = SALRRule()
    for s in (1e-3, 1e-3, 1e-3):
        rule.update(torch.tensor(s))
    assert float(rule.update(torch.tensor(10.0))) > 1000.0
    assert float(rule.update(torch.tensor(float("nan")))) == 1.0
    assert float(rule.update(torch.tensor(float("-inf")))) == 1.0
    assert int(rule.count) == 4 and rule.updates == 6


def test_rule_grows_its_history():
    rule = SALRRule(capacity=2)
    vals = [1.0, 5.0, 2.0, 4.0, 3.0]
    for v in vals:
        r = rule.update(torch.tensor(v))
    assert float(r) == pytest.approx(3.0 / np.median(vals))
    state = rule.state_dict()
    other = SALRRule()
    other.load_state_dict(state)
    assert float(other.update(torch.tensor(6.0))) == pytest.approx(6.0 / np.median([*vals, 6.0]))


@pytest.mark.parametrize("steps", [1, 7])
def test_adam_salr_with_constant_sharpness_equals_torch_adam(steps):
    x, y = tiny_data(n=10)
    a, b = _mlp(1), _mlp(1)
    salr = AdamSALR(a, F.cross_entropy, lr=0.01, c=1)
    ref = torch.optim.Adam(b.parameters(), lr=0.01)
    for _ in range(steps):
        salr.step(_closure(salr, a, x, y), sharpness=0.37)
        ref.step(_closure(ref, b, x, y))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_sgd_salr_probe_equals_stochastic_probe_and_is_counted(device):
    model = tiny_bn_net(seed=2, device=device)
    x, y = tiny_data(n=10, device=device)
    reference = Objective(tiny_bn_net(seed=2, device=device), F.cross_entropy, (x, y))
    expected = stochastic_probe(reference, 0.02, 2, 3).value
    opt = SGDSALR(model, F.cross_entropy, lr=0.1, c=2, gamma=0.02, n_descent=2, n_ascent=3)
    model.train()
    for _ in range(3):
        opt.step(_closure(opt, model, x, y), batch=(x, y))
    assert opt.probe_gradient_calls == 2 * 5  # iterations 0 and 2
    assert float(opt.rule.values()[0]) == pytest.approx(expected, rel=1e-12)
    assert model.training  # the probe restored the mode


def test_salr_lr_is_a_device_tensor_for_tensor_rate_optimizers(device):
    model = _mlp(device=device)
    opt = SGDSALR(model, F.cross_entropy, lr=0.1)
    x, y = tiny_data(n=8, device=device)
    opt.step(_closure(opt, model, x, y), batch=(x, y))
    assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)
    plain = SALR(torch.optim.SGD(model.parameters(), lr=0.1), model, F.cross_entropy)
    plain.step(_closure(plain, model, x, y), batch=(x, y))
    assert isinstance(plain.param_groups[0]["lr"], float)


def test_entropy_sgd_salr_changes_outer_rate():
    model = _mlp()
    x, y = tiny_data(n=8)
    opt = EntropySGDSALR(model, F.cross_entropy, lr=1.0, c=1, entropy={"langevin_steps": 2, "noise": 0.0})
    for s in (1.0, 3.0):
        opt.step(_closure(opt, model, x, y), sharpness=s)
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(1.5)
    assert opt.gradient_calls_per_step == 2


def test_salr_state_dict_round_trip():
    model = _mlp()
    x, y = tiny_data(n=8)
    opt = AdamSALR(model, F.cross_entropy, lr=0.01, c=2)
    for _ in range(3):
        opt.step(_closure(opt, model, x, y), batch=(x, y))
    state = copy.deepcopy(opt.state_dict())  # torch's load_state_dict would share the moment tensors
    twin = _mlp()
    twin.load_state_dict(model.state_dict())
    opt2 = AdamSALR(twin, F.cross_entropy, lr=0.01, c=2)
    opt2.load_state_dict(state)
    for _ in range(3):
        opt.step(_closure(opt, model, x, y), batch=(x, y))
        opt2.step(_closure(opt2, twin, x, y), batch=(x, y))
    for pa, pb in zip(model.parameters(), twin.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    ("make", "ref"),
    [
        (lambda p: SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
        (
            lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        ),
        (
            lambda p: SGD(p, lr=0.1, momentum=0.5, dampening=0.1),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, dampening=0.1),
        ),
        (lambda p: Adam(p, lr=0.01, weight_decay=1e-2), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-2)),
        (lambda p: Adam(p, lr=torch.tensor(0.01, dtype=torch.float64)), lambda p: torch.optim.Adam(p, lr=0.01)),
    ],
    ids=["sgd", "sgd-nesterov-wd", "sgd-dampening", "adam-wd", "adam-tensor-lr"],
)
def test_tensor_rate_optimizers_equal_torch(make, ref):
    x, y = tiny_data(n=10)
    a, b = _mlp(4), _mlp(4)
    oa, ob = make(a.parameters()), ref(b.parameters())
    for _ in range(5):
        oa.step(_closure(oa, a, x, y))
        ob.step(_closure(ob, b, x, y))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_sgd_tensor_rate_matches_to_rounding():
    x, y = tiny_data(n=10)
    a, b = _mlp(4), _mlp(4)
    oa = SGD(a.parameters(), lr=torch.tensor(0.1, dtype=torch.float64), momentum=0.9)
    ob = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        oa.step(_closure(oa, a, x, y))
        ob.step(_closure(ob, b, x, y))
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda m: SGDSALR(m, F.cross_entropy, lr=0.1, c=0), r"c: expected an integer >= 1, got 0"),
        (lambda m: SGDSALR(m, F.cross_entropy, lr=0.1, c=-2), r"c: expected an integer >= 1, got -2"),
        (lambda m: SGDSALR(m, F.cross_entropy, lr=0.1, gamma=0.0), r"gamma: expected a finite number > 0, got 0.0"),
        (lambda m: SGDSALR(m, F.cross_entropy, lr=0.1, gamma=-0.1), r"gamma: expected a finite number > 0, got -0.1"),
        (lambda m: SGDSALR(m, F.cross_entropy, lr=-0.1), r"lr: expected a finite number >= 0, got -0.1"),
        (lambda m: AdamSALR(m, F.cross_entropy, lr=-1e-3), r"lr: expected a finite number >= 0, got -0.001"),
        (lambda m: SGDSALR(m, F.cross_entropy, normalize="x"), r"normalize: expected one of 'per_example', 'batch'"),
        (lambda m: SALR(object()), r"optimizer: expected a torch optimizer with step\(closure\) and param_groups"),
        (lambda m: Adam(m.parameters(), betas=(0.9, 1.0)), r"betas: expected two numbers in \[0, 1\)"),
        (lambda m: SGD(m.parameters(), lr=0.1, nesterov=True), r"nesterov: expected momentum > 0 and dampening = 0"),
    ],
    ids=["c0", "c-neg", "gamma0", "gamma-neg", "lr-neg", "adam-lr-neg", "normalize", "optimizer", "betas", "nesterov"],
)
def test_bad_hyperparameters_rejected(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build(_mlp())


def test_measuring_step_needs_a_batch():
    model = _mlp()
    opt = SGDSALR(model, F.cross_entropy, lr=0.1)
    with pytest.raises(ValueError, match=r"batch: expected the minibatch \(inputs, targets\) on a measuring iteration"):
        opt.step(lambda: torch.tensor(0.0))
    assert math.isnan(float(opt.last_sharpness))
