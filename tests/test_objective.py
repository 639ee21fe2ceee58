"""Objective vs torch.autograd / torch.func references in float64."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from basinscope import params as P
from basinscope.objective import Cost, Objective

from .conftest import assert_same_state, snapshot, tiny_bn_net, tiny_data

SPLITS = {
    "one-batch": [10],
    "equal": [5, 5],
    "unequal-last": [4, 4, 2],
    "singletons": [1] * 10,
}


def _batches(x, y, sizes):
    out, i = [], 0
    for s in sizes:
        out.append((x[i : i + s], y[i : i + s]))
        i += s
    return out


def _reference_loss_and_grad(model, x, y, params=None):
    """Plain autograd on a deep copy in eval mode, over all data at once."""
    m = copy.deepcopy(model).eval()
    if params is not None:
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.copy_(params[n])
    loss = F.cross_entropy(m(x), y)
    names = [n for n, _ in m.named_parameters()]
    grads = torch.autograd.grad(loss, list(m.parameters()))
    return loss.detach(), dict(zip(names, grads))


@pytest.mark.parametrize("sizes", SPLITS.values(), ids=SPLITS.keys())
def test_loss_and_grad_match_autograd(sizes, device):
    model = tiny_bn_net(dropout=0.3, device=device).train()
    x, y = tiny_data(device=device)
    obj = Objective(model, F.cross_entropy, _batches(x, y, sizes))
    ref_loss, ref_grad = _reference_loss_and_grad(model, x, y)
    loss, grad = obj.loss_and_grad()
    torch.testing.assert_close(loss, ref_loss, rtol=1e-13, atol=0)
    torch.testing.assert_close(obj.loss(), ref_loss, rtol=1e-13, atol=0)
    for k in ref_grad:
        torch.testing.assert_close(grad[k], ref_grad[k], rtol=1e-12, atol=1e-15)


def test_unequal_last_batch_is_weighted_by_size(device):
    """The exact mean differs from the naive mean of batch means; we give the exact one."""
    model = tiny_bn_net(device=device)
    x, y = tiny_data(device=device)
    batches = _batches(x, y, [4, 4, 2])
    obj = Objective(model, F.cross_entropy, batches)
    with torch.no_grad():
        naive = torch.stack([F.cross_entropy(model.eval()(bx), by) for bx, by in batches]).mean()
        exact = F.cross_entropy(model.eval()(x), y)
    assert abs(float(naive - exact)) > 1e-6
    torch.testing.assert_close(obj.loss(), exact, rtol=1e-13, atol=0)


def test_at_other_point_matches_loaded_copy(device):
    model = tiny_bn_net(device=device)
    x, y = tiny_data(device=device)
    obj = Objective(model, F.cross_entropy, (x, y))
    theta = P.axpy(0.3, P.random_direction(obj.point(), seed=1), obj.point())
    ref_loss, ref_grad = _reference_loss_and_grad(model, x, y, params=theta)
    torch.testing.assert_close(obj.loss(theta), ref_loss, rtol=1e-13, atol=0)
    g = obj.grad(theta)
    for k in g:
        torch.testing.assert_close(g[k], ref_grad[k], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("sizes", [[10], [4, 4, 2]], ids=["one-batch", "three-batches"])
def test_hvp_matches_dense_hessian(sizes, device):
    model = tiny_bn_net(device=device)
    x, y = tiny_data(device=device)
    obj = Objective(model, F.cross_entropy, _batches(x, y, sizes))
    theta = obj.point()
    names = list(theta)
    eval_model = copy.deepcopy(model).eval()
    buffers = dict(eval_model.named_buffers())

    def f(flat):
        p = P.unflatten(flat, theta)
        return F.cross_entropy(torch.func.functional_call(eval_model, {**buffers, **p}, (x,)), y)

    H = torch.func.hessian(f)(P.flatten(theta))
    vs = [P.random_direction(theta, seed=s) for s in range(3)]
    out = obj.hvp(vs)  # several vectors in one data pass
    for v, hv in zip(vs, out):
        torch.testing.assert_close(P.flatten(hv), H @ P.flatten(v), rtol=1e-10, atol=1e-12)
    single = obj.hvp(vs[0])
    assert list(single) == names
    torch.testing.assert_close(P.flatten(single), H @ P.flatten(vs[0]), rtol=1e-10, atol=1e-12)
    assert obj.cost.hvps == 4


def test_per_example_grads_match_loop(device):
    model = tiny_bn_net(dropout=0.5, device=device)
    x, y = tiny_data(device=device)
    obj = Objective(model, F.cross_entropy, _batches(x, y, [6, 4]))
    pe = obj.per_example_grads(batch=1)
    pe_pair = obj.per_example_grads(batch=(x[6:], y[6:]), chunk_size=3)
    m = copy.deepcopy(model).eval()
    for j in range(4):
        loss = F.cross_entropy(m(x[6 + j : 7 + j]), y[6 + j : 7 + j])
        grads = torch.autograd.grad(loss, list(m.parameters()))
        for (n, _), g in zip(m.named_parameters(), grads):
            torch.testing.assert_close(pe[n][j], g, rtol=1e-12, atol=1e-15)
            torch.testing.assert_close(pe_pair[n][j], g, rtol=1e-12, atol=1e-15)
    assert obj.cost.per_example_gradients == 8


def test_dataloader_cached_and_streamed_agree():
    model = tiny_bn_net()
    x, y = tiny_data(n=23)
    loader = DataLoader(TensorDataset(x, y), batch_size=5)
    cached = Objective(model, F.cross_entropy, loader)
    streamed = Objective(model, F.cross_entropy, loader, cache=False)
    assert cached.num_samples == streamed.num_samples == 23
    torch.testing.assert_close(cached.loss(), streamed.loss(), rtol=1e-13, atol=0)
    ref, _ = _reference_loss_and_grad(model, x, y)
    torch.testing.assert_close(streamed.loss(), ref, rtol=1e-13, atol=0)


def test_from_function_matches_analytic_derivatives():
    obj = Objective.from_function(lambda t: 0.5 * t * torch.sin(3 * t) + 1, 0.7)
    for t in (-2.0, 0.0, 0.7, 1.9):
        th = {"theta": torch.tensor(t, dtype=torch.float64)}
        tt = torch.tensor(t, dtype=torch.float64)
        assert float(obj.loss(th)) == pytest.approx(float(0.5 * tt * torch.sin(3 * tt) + 1), rel=1e-14)
        d1 = 0.5 * torch.sin(3 * tt) + 1.5 * tt * torch.cos(3 * tt)
        d2 = 3 * torch.cos(3 * tt) - 4.5 * tt * torch.sin(3 * tt)
        assert float(obj.grad(th)["theta"]) == pytest.approx(float(d1), rel=1e-12, abs=1e-14)
        hv = obj.hvp({"theta": torch.tensor(2.0, dtype=torch.float64)}, th)["theta"]
        assert float(hv) == pytest.approx(2 * float(d2), rel=1e-12, abs=1e-14)
    assert float(obj.point()["theta"]) == 0.7
    assert obj.dim == 1 and obj.is_function


def test_from_function_multivariate_quadratic():
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    obj = Objective.from_function(lambda t: 0.5 * t @ A @ t + 4.0, torch.tensor([1.0, -1.0], dtype=torch.float64))
    torch.testing.assert_close(obj.grad()["theta"], A @ torch.tensor([1.0, -1.0], dtype=torch.float64))
    v = torch.tensor([0.5, 2.0], dtype=torch.float64)
    torch.testing.assert_close(obj.hvp({"theta": v})["theta"], A @ v)


def test_cost_counts_and_track(device):
    model = tiny_bn_net(device=device)
    x, y = tiny_data(device=device)
    obj = Objective(model, F.cross_entropy, _batches(x, y, [4, 4, 2]))
    with obj.track() as t:
        obj.loss()
        obj.grad()
        obj.hvp([obj.point(), obj.point()])
        obj.per_example_grads(batch=0)
    assert (t.cost.forwards, t.cost.gradients, t.cost.hvps, t.cost.per_example_gradients) == (2, 1, 2, 4)
    assert t.cost.samples == 10 + 10 + 10 + 4
    assert t.cost.seconds > 0
    assert isinstance(obj.cost + Cost(), Cost)


def test_evaluate_accuracy(device):
    model = tiny_bn_net(device=device)
    x, y = tiny_data(n=17, device=device)
    obj = Objective(model, F.cross_entropy, _batches(x, y, [8, 9]))
    with torch.no_grad():
        out = copy.deepcopy(model).eval()(x)
    acc = float((out.argmax(1) == y).double().mean())
    res = obj.evaluate()
    assert res["accuracy"] == pytest.approx(acc, abs=1e-15)
    assert res["error"] == pytest.approx(1 - acc, abs=1e-15)
    assert res["loss"] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-13)
    assert res["samples"] == 17


def test_recompute_bn_matches_update_bn():
    model = tiny_bn_net()
    x, y = tiny_data(n=23)
    loader = DataLoader(TensorDataset(x, y), batch_size=5)
    obj = Objective(model, F.cross_entropy, (x[:4], y[:4]))
    theta = P.axpy(0.2, P.random_direction(obj.point(), seed=0), obj.point())
    before = snapshot(model)
    bufs = obj.recompute_bn(theta, data=loader)
    assert_same_state(before, snapshot(model))
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in ref.named_parameters():
            p.copy_(theta[n])
    torch.optim.swa_utils.update_bn(loader, ref)
    for n, b in ref.named_buffers():
        torch.testing.assert_close(bufs[n], b, rtol=1e-13, atol=1e-15)
    # and the objective evaluated with these buffers equals the updated copy in eval mode
    with torch.no_grad():
        expected = F.cross_entropy(ref.eval()(x[:4]), y[:4])
    torch.testing.assert_close(obj.loss(theta, buffers=bufs), expected, rtol=1e-13, atol=0)


def test_train_mode_uses_batch_statistics_without_touching_model():
    model = tiny_bn_net().eval()
    x, y = tiny_data()
    obj = Objective(model, F.cross_entropy, (x, y), mode="train")
    before = snapshot(model)
    loss = obj.loss()
    assert_same_state(before, snapshot(model))
    ref = copy.deepcopy(model).train()
    with torch.no_grad():
        torch.testing.assert_close(loss, F.cross_entropy(ref(x), y), rtol=1e-13, atol=0)


def test_measurements_leave_model_untouched_also_on_error():
    model = tiny_bn_net(dropout=0.2).train()
    x, y = tiny_data()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    before = snapshot(model)
    calls = {"n": 0}

    def flaky(out, target):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("loss exploded")
        return F.cross_entropy(out, target)

    obj = Objective(model, flaky, _batches(x, y, [5, 5]))
    obj.loss()
    obj.per_example_grads()
    with pytest.raises(RuntimeError, match="loss exploded"):
        obj.grad()
    assert_same_state(before, snapshot(model))
    obj2 = Objective(model, F.cross_entropy, (x, y))
    obj2.loss(), obj2.grad(), obj2.hvp(obj2.point()), obj2.evaluate(), obj2.recompute_bn()
    assert_same_state(before, snapshot(model))


# ---------------------------------------------------------------- bad input
def _obj():
    x, y = tiny_data()
    return Objective(tiny_bn_net(), F.cross_entropy, (x, y))


BAD_CONSTRUCT = [
    (
        "empty-list",
        lambda m: Objective(m, F.cross_entropy, []),
        ValueError,
        r"data: expected at least one \(inputs, targets\) batch, got an empty iterable",
    ),
    (
        "tensor",
        lambda m: Objective(m, F.cross_entropy, torch.zeros(3)),
        TypeError,
        r"data: expected a DataLoader, an iterable",
    ),
    (
        "bad-batch",
        lambda m: Objective(m, F.cross_entropy, [(torch.zeros(2, 3), torch.zeros(2)), torch.zeros(3)]),
        TypeError,
        r"data\[1\]: expected an \(inputs, targets\) pair of tensors, got Tensor",
    ),
    (
        "shape",
        lambda m: Objective(m, F.cross_entropy, (torch.zeros(4, 3), torch.zeros(5))),
        ValueError,
        r"data\[0\]: expected inputs and targets with the same leading batch dimension, "
        r"got inputs \(4, 3\) and targets \(5,\)",
    ),
    (
        "zero-batch",
        lambda m: Objective(m, F.cross_entropy, (torch.zeros(0, 3), torch.zeros(0))),
        ValueError,
        r"data\[0\]: expected a non-empty batch",
    ),
    (
        "model",
        lambda m: Objective("net", F.cross_entropy, (torch.zeros(2, 3), torch.zeros(2))),
        TypeError,
        r"model: expected a torch.nn.Module, got str",
    ),
    (
        "loss_fn",
        lambda m: Objective(m, 3, (torch.zeros(2, 3), torch.zeros(2))),
        TypeError,
        r"loss_fn: expected a callable",
    ),
    (
        "mode",
        lambda m: Objective(m, F.cross_entropy, (torch.zeros(2, 3), torch.zeros(2)), mode="test"),
        ValueError,
        r"mode: expected one of 'eval', 'train', got 'test'",
    ),
    (
        "frozen",
        lambda m: Objective(m.requires_grad_(False), F.cross_entropy, (torch.zeros(2, 3), torch.zeros(2))),
        ValueError,
        r"model: expected at least one parameter with requires_grad=True, got none",
    ),
    ("fn", lambda m: Objective.from_function(5, 1.0), TypeError, r"fn: expected a callable"),
    (
        "fn-vector",
        lambda m: Objective.from_function(lambda t: t * 2, torch.ones(3)),
        TypeError,
        r"fn: expected a function returning a scalar tensor",
    ),
]


@pytest.mark.parametrize("make, exc, msg", [c[1:] for c in BAD_CONSTRUCT], ids=[c[0] for c in BAD_CONSTRUCT])
def test_bad_construction(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make(tiny_bn_net())


def test_bad_params():
    obj = _obj()
    p = obj.point()
    missing = dict(p)
    missing.pop("3.bias")
    with pytest.raises(
        ValueError, match=r"params: expected the model's trainable parameter names, got missing keys '3.bias'"
    ):
        obj.loss(missing)
    with pytest.raises(
        ValueError, match=r"params: expected the model's trainable parameter names, got extra keys 'foo'"
    ):
        obj.grad({**p, "foo": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"params\['0.weight'\]: expected shape \(5, 3\), got shape \(3, 5\)"):
        obj.loss({**p, "0.weight": torch.zeros(3, 5)})
    with pytest.raises(TypeError, match=r"params: expected a dict\[str, Tensor\]"):
        obj.loss([1, 2])
    with pytest.raises(ValueError, match=r"vector\[1\]: expected the model's trainable parameter names"):
        obj.hvp([p, missing])
    with pytest.raises(ValueError, match=r"batch: expected an index in \[0, 0\]"):
        obj.per_example_grads(batch=3)


def test_non_finite_loss():
    obj = _obj()
    p = obj.point()
    p["0.weight"] = p["0.weight"] * float("nan")
    with pytest.raises(ValueError, match=r"loss: expected a finite value, got nan"):
        obj.loss(p)
    with pytest.raises(ValueError, match=r"loss: expected a finite value, got nan"):
        obj.grad(p)


def test_function_objective_rejects_data_only_methods():
    obj = Objective.from_function(lambda t: t**2, 1.0)
    with pytest.raises(ValueError, match=r"per_example_grads: expected an objective built from a model and data"):
        obj.per_example_grads()
