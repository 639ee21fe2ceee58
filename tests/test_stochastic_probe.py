"""Algorithm 2 of the SALR paper (stochastic sharpness) against explicit per-example loops in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from basinscope import params as P
from basinscope.objective import Objective
from basinscope.sharpness.stochastic import probe_kernel, stochastic_probe

from .conftest import assert_same_state, snapshot, tiny_bn_net, tiny_data


def _loop_direction(model, p, x, y, normalize):
    """Mean of per-example gradients each divided by its norm, one example at a time (or the batch gradient)."""
    bufs = dict(model.named_buffers())
    keys = list(p)

    def grad_of(xb, yb):
        q = {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}
        loss = F.cross_entropy(functional_call(model, {**bufs, **q}, (xb,)), yb)
        g = torch.autograd.grad(loss, [q[k] for k in keys])
        return dict(zip(keys, g))

    if normalize == "batch":
        g = grad_of(x, y)
        return P.scale(g, 1.0 / float(P.norm(g)))
    total = P.zeros_like(p)
    for j in range(x.shape[0]):
        g = grad_of(x[j : j + 1], y[j : j + 1])
        total = P.axpy(1.0 / float(P.norm(g)), g, total)
    return P.scale(total, 1.0 / x.shape[0])


def _loop_probe(model, x, y, gamma, n_descent, n_ascent, normalize):
    model.eval()
    p0 = {n: q.detach().clone() for n, q in model.named_parameters()}
    low = P.clone(p0)
    for _ in range(n_descent):
        low = P.axpy(-gamma, _loop_direction(model, low, x, y, normalize), low)
    high = P.clone(p0)
    for _ in range(n_ascent):
        high = P.axpy(gamma, _loop_direction(model, high, x, y, normalize), high)
    bufs = dict(model.named_buffers())
    with torch.no_grad():
        fh = F.cross_entropy(functional_call(model, {**bufs, **high}, (x,)), y)
        fl = F.cross_entropy(functional_call(model, {**bufs, **low}, (x,)), y)
    return float(fh - fl), float(fh), float(fl), high, low


@pytest.mark.parametrize("normalize", ["per_example", "batch"])
@pytest.mark.parametrize(("n_descent", "n_ascent"), [(3, 2), (0, 4), (2, 0)], ids=["3-2", "0-4", "2-0"])
def test_probe_matches_explicit_loop(normalize, n_descent, n_ascent):
    model = tiny_bn_net(seed=3)
    model.train()  # the probe must use eval mode regardless, and restore this flag
    x, y = tiny_data(n=9, seed=4)
    obj = Objective(model, F.cross_entropy, (x, y))
    before = snapshot(model)
    r = stochastic_probe(obj, 0.05, n_descent, n_ascent, normalize=normalize)
    assert_same_state(before, snapshot(model))
    value, fh, fl, high, low = _loop_probe(tiny_bn_net(seed=3), x, y, 0.05, n_descent, n_ascent, normalize)
    assert r.kind == "stochastic_probe"
    assert r.value == pytest.approx(value, rel=1e-10, abs=1e-13)
    assert r.f_high == pytest.approx(fh, rel=1e-12)
    assert r.f_low == pytest.approx(fl, rel=1e-12)
    for k in high:
        torch.testing.assert_close(r.point_high[k], high[k], rtol=1e-11, atol=1e-13)
        torch.testing.assert_close(r.point_low[k], low[k], rtol=1e-11, atol=1e-13)


def test_per_example_differs_from_batch_normalization():
    model = tiny_bn_net(seed=5)
    x, y = tiny_data(n=12, seed=6)
    obj = Objective(model, F.cross_entropy, (x, y))
    a = stochastic_probe(obj, 0.1, 3, 3).value
    b = stochastic_probe(obj, 0.1, 3, 3, normalize="batch").value
    assert not math.isclose(a, b, rel_tol=1e-6)


def test_probe_counts_gradient_calls_and_cost():
    model = tiny_bn_net()
    x, y = tiny_data(n=10)
    obj = Objective(model, F.cross_entropy, (x, y))
    r = stochastic_probe(obj, 0.01, 2, 3)
    assert obj.cost.per_example_gradients == 10 * 5
    assert r.cost.per_example_gradients == 50 and r.cost.forwards == 3
    stochastic_probe(obj, 0.01, 2, 3, normalize="batch")
    assert obj.cost.gradients == 5


def test_probe_on_explicit_batch_and_params():
    model = tiny_bn_net()
    x, y = tiny_data(n=10)
    obj = Objective(model, F.cross_entropy, (x[:4], y[:4]))
    p = P.axpy(0.1, P.random_direction(obj.point(), seed=1), obj.point())
    r = stochastic_probe(obj, 0.02, 1, 1, batch=(x, y), params=p)
    m2 = tiny_bn_net()
    with torch.no_grad():
        for n, q in m2.named_parameters():
            q.copy_(p[n])
    ref = _loop_probe(m2, x, y, 0.02, 1, 1, "per_example")[0]
    assert r.value == pytest.approx(ref, rel=1e-10)


def test_probe_on_a_function_closed_form():
    f = lambda t: 0.5 * t * torch.sin(3 * t) + 1  # noqa: E731  (SALR Fig. 2)
    obj = Objective.from_function(f, 0.3)
    r = stochastic_probe(obj, 0.1, 1, 1)
    t = torch.tensor(0.3, dtype=torch.float64)
    s = 1.0 if float(0.5 * torch.sin(3 * t) + 1.5 * t * torch.cos(3 * t)) > 0 else -1.0
    expected = float(f(t + 0.1 * s) - f(t - 0.1 * s))
    assert r.value == pytest.approx(expected, rel=1e-12)


def test_model_restored_when_the_loss_raises():
    model = tiny_bn_net()
    model.train()
    x, y = tiny_data()
    calls = {"n": 0}

    def bad_loss(out, target):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("boom")
        return F.cross_entropy(out, target)

    before = snapshot(model)
    params = {n: p for n, p in model.named_parameters()}
    with pytest.raises(RuntimeError, match="boom"):
        probe_kernel(model, bad_loss, params, x, y, gamma=0.1, n_descent=1, n_ascent=1, normalize="batch")
    assert_same_state(before, snapshot(model))


def test_kernel_returns_device_tensors():
    model = tiny_bn_net()
    x, y = tiny_data()
    out = probe_kernel(model, F.cross_entropy, dict(model.named_parameters()), x, y, gamma=0.1, n_descent=1, n_ascent=1)
    assert isinstance(out.value, torch.Tensor) and out.value.dim() == 0
    assert torch.equal(out.value, out.f_high - out.f_low)


def test_zero_gradient_example_contributes_zero():
    model = torch.nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)  # first example: zero gradient
    y = torch.tensor([0, 1])
    obj = Objective(model, F.cross_entropy, (x, y))
    r = stochastic_probe(obj, 0.1, 0, 1)
    g = obj.per_example_grads()["weight"][1]
    expected = 0.1 * (g / g.norm()) / 2
    torch.testing.assert_close(r.point_high["weight"], expected)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(gamma=0.0), ValueError, r"gamma: expected a finite number > 0, got 0.0"),
        (dict(gamma=-1.0), ValueError, r"gamma: expected a finite number > 0, got -1.0"),
        (dict(n_descent=-1), ValueError, r"n_descent: expected an integer >= 0, got -1"),
        (dict(n_descent=0, n_ascent=0), ValueError, r"n_descent \+ n_ascent: expected at least one step, got 0"),
        (dict(normalize="layer"), ValueError, r"normalize: expected one of 'per_example', 'batch', got 'layer'"),
        (dict(batch=5), ValueError, r"batch: expected an index in \[0, 0\]"),
    ],
    ids=["gamma0", "gamma-neg", "n-neg", "no-steps", "normalize", "batch"],
)
def test_probe_rejects_bad_arguments(kwargs, exc, match):
    model = tiny_bn_net()
    obj = Objective(model, F.cross_entropy, tiny_data())
    args = dict(gamma=0.1, n_descent=1, n_ascent=1)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        stochastic_probe(obj, args.pop("gamma"), args.pop("n_descent"), args.pop("n_ascent"), **args)


@pytest.mark.parametrize(
    ("fn", "theta", "n_descent", "n_ascent", "match"),
    [
        # log t: descent steps of 0.4 from t = 1 reach t = -0.2 < 0
        (torch.log, 1.0, 3, 1, r"got nan at θ₋, after 3 normalized descent steps \(the loss or the model produce"),
        # -log t: its ascent direction lowers t, below 0 after 3 steps
        (lambda t: -torch.log(t), 1.0, 1, 3, r"got nan at θ₊, after 3 normalized ascent steps"),
        (torch.log, -1.0, 1, 1, r"got nan at θ_k \("),
        # exp(exp t) overflows float64 between t = 6.4 and t = 6.8
        (lambda t: torch.exp(torch.exp(t)), 6.0, 1, 2, r"got inf at θ₊, after 2 normalized ascent steps"),
    ],
    ids=["descent", "ascent", "start", "inf"],
)
def test_non_finite_probe_losses_raise_naming_the_point(fn, theta, n_descent, n_ascent, match):
    obj = Objective.from_function(fn, theta)
    with pytest.raises(ValueError, match=r"^stochastic_probe: expected a finite minibatch loss, " + match):
        stochastic_probe(obj, gamma=0.4, n_descent=n_descent, n_ascent=n_ascent)


def test_non_finite_model_loss_raises_and_model_is_untouched():
    model = tiny_bn_net()
    with torch.no_grad():
        model[0].weight[1, 2] = float("nan")
    x, y = tiny_data()
    obj = Objective(model, F.cross_entropy, (x, y), check_finite=False)
    before = {n: t.clone().view(torch.int64) for n, t in model.state_dict().items() if t.is_floating_point()}
    with pytest.raises(ValueError, match=r"^stochastic_probe: expected a finite minibatch loss, got nan at θ_k"):
        stochastic_probe(obj, gamma=0.01, n_descent=1, n_ascent=1, normalize="batch")
    # bit patterns (NaN == NaN): unchanged
    assert all(torch.equal(before[n], t.view(torch.int64)) for n, t in model.state_dict().items() if n in before)
    assert all(p.grad is None for p in model.parameters()) and model.training
