"""SAM and Entropy-SGD against hand-written steps in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from basinscope.optim import SAM, EntropySGD

from .conftest import tiny_data


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).double()


def _grad(model, params, x, y):
    q = [p.detach().clone().requires_grad_(True) for p in params]
    out = torch.func.functional_call(model, dict(zip([n for n, _ in model.named_parameters()], q)), (x,))
    return list(torch.autograd.grad(F.cross_entropy(out, y), q))


@pytest.mark.parametrize("adaptive", [False, True], ids=["sam", "asam"])
def test_sam_equals_hand_two_step(adaptive):
    x, y = tiny_data(n=10)
    model, ref = _mlp(), _mlp()
    rho, lr = 0.07, 0.3
    opt = SAM(model.parameters(), rho=rho, adaptive=adaptive, lr=lr)

    def closure():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for _ in range(2):
        loss = opt.step(closure)
        w = [p.detach().clone() for p in ref.parameters()]
        g = _grad(ref, w, x, y)
        t = [wi.abs() if adaptive else torch.ones_like(wi) for wi in w]
        norm = torch.sqrt(sum(((ti * gi) ** 2).sum() for ti, gi in zip(t, g)))
        e = [rho * ti * ti * gi / (norm + 1e-12) for ti, gi in zip(t, g)]
        g2 = _grad(ref, [wi + ei for wi, ei in zip(w, e)], x, y)
        with torch.no_grad():
            for p, wi, gi in zip(ref.parameters(), w, g2):
                p.copy_(wi - lr * gi)
        assert float(loss.detach()) == pytest.approx(
            float(
                F.cross_entropy(
                    torch.func.functional_call(ref, dict(zip([n for n, _ in ref.named_parameters()], w)), (x,)), y
                )
            ),
            rel=1e-12,
        )
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_sam_restores_weights_exactly_before_the_base_step():
    x, y = tiny_data(n=10)
    model = _mlp()
    opt = SAM(model.parameters(), rho=0.05, lr=0.0)  # zero rate: the weights must come back bit-identical
    before = [p.detach().clone() for p in model.parameters()]
    opt.step(lambda: F.cross_entropy(model(x), y).backward())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_sam_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"rho: expected a finite number > 0, got 0.0"):
        SAM(_mlp().parameters(), rho=0.0, lr=0.1)
    with pytest.raises(ValueError, match=r"lr: expected a finite number >= 0, got -0.1"):
        SAM(_mlp().parameters(), lr=-0.1)
    with pytest.raises(ValueError, match=r"closure: expected a callable"):
        SAM(_mlp().parameters(), lr=0.1).step()


def _hand_entropy_step(model, x, y, *, lr, L, eta, gamma, alpha):
    xw = [p.detach().clone() for p in model.parameters()]
    xp = [p.clone() for p in xw]
    mu = [p.clone() for p in xw]
    for _ in range(L):
        g = _grad(model, xp, x, y)
        xp = [a - eta * (gi - gamma * (w - a)) for a, gi, w in zip(xp, g, xw)]
        mu = [(1 - alpha) * m + alpha * a for m, a in zip(mu, xp)]
    with torch.no_grad():
        for p, w, m in zip(model.parameters(), xw, mu):
            p.copy_(w - lr * (w - m))


def test_entropy_sgd_equals_hand_algorithm_without_noise():
    x, y = tiny_data(n=10)
    model, ref = _mlp(2), _mlp(2)
    opt = EntropySGD(model.parameters(), lr=0.7, langevin_steps=3, langevin_lr=0.2, noise=0.0, gamma=0.5, scoping=0.1)
    calls = {"n": 0}

    def closure():
        calls["n"] += 1
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    gamma = 0.5
    for _ in range(3):
        opt.step(closure)
        _hand_entropy_step(ref, x, y, lr=0.7, L=3, eta=0.2, gamma=gamma, alpha=0.75)
        gamma *= 1.1
    assert calls["n"] == 9
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_entropy_sgd_scoping_changes_gamma():
    x, y = tiny_data(n=10)
    model, fixed = _mlp(), _mlp()
    opt = EntropySGD(model.parameters(), langevin_steps=2, noise=0.0, gamma=0.03, scoping=1e-3)
    ref = EntropySGD(fixed.parameters(), langevin_steps=2, noise=0.0, gamma=0.03, scoping=0.0)
    for t in range(1, 4):
        for o, m in ((opt, model), (ref, fixed)):
            o.step(lambda o=o, m=m: (o.zero_grad(), F.cross_entropy(m(x), y).backward()))
        assert opt.param_groups[0]["gamma"] == pytest.approx(0.03 * 1.001**t, rel=1e-14)
    assert ref.param_groups[0]["gamma"] == 0.03
    # the advancing γ changes the trajectory
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), fixed.parameters()))
    assert opt.state_dict()["param_groups"][0]["gamma"] == opt.param_groups[0]["gamma"]


def test_entropy_sgd_noise_is_seeded():
    x, y = tiny_data(n=10)
    out = []
    for _ in range(2):
        torch.manual_seed(5)
        model = _mlp()
        opt = EntropySGD(model.parameters(), langevin_steps=2, noise=1e-2)
        opt.step(lambda opt=opt, model=model: (opt.zero_grad(), F.cross_entropy(model(x), y).backward()))
        out.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*out))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(langevin_steps=0), r"langevin_steps: expected an integer >= 1, got 0"),
        (dict(gamma=0.0), r"gamma: expected a finite number > 0, got 0.0"),
        (dict(lr=-1.0), r"lr: expected a finite number >= 0, got -1.0"),
        (dict(alpha=1.5), r"alpha: expected a number in \(0, 1\], got 1.5"),
    ],
    ids=["L0", "gamma0", "lr-neg", "alpha"],
)
def test_entropy_sgd_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EntropySGD(_mlp().parameters(), **kwargs)
