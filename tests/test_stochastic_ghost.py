"""Ghost-norm fast path of the SALR probe (Algorithm 2) against vmap and an explicit per-example loop, float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from basinscope import params as P
from basinscope.models import build_model
from basinscope.objective import Objective
from basinscope.sharpness._ghost import ghost_direction, ghost_plan
from basinscope.sharpness.stochastic import _normalized_direction_per_example, probe_kernel, stochastic_probe

from .conftest import assert_same_state, snapshot, tiny_bn_net


class Seq(nn.Module):
    """Linear layers on (B, T, d) inputs: one layer in the Gram regime, one in the materialized regime."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)  # T=2: 2·16 < 64 -> Gram
        self.ln = nn.LayerNorm(8)
        self.b = nn.Linear(8, 3)  # 2·11 >= 24 -> materialized
        self.c = nn.Linear(6, 4)

    def forward(self, x):
        h = self.b(torch.tanh(self.ln(self.a(x))))
        return self.c(h.flatten(1))


class Convs(nn.Module):
    """Conv2d/Conv1d variants: groups, stride, dilation, 'same' and reflect padding, BN/GroupNorm, in-place ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding="same", padding_mode="reflect")
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, dilation=1, padding=1, groups=2, bias=False)
        self.gn = nn.GroupNorm(3, 6)
        self.c3 = nn.Conv2d(6, 8, 2, dilation=2)  # 2x2 output: 4·(24+8) < 24·8 -> Gram regime
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        h = F.relu(self.bn(self.c1(x)), inplace=True)
        h = torch.tanh(self.gn(self.c2(h)))
        return self.fc(torch.tanh(self.c3(h)).flatten(1))


class Convs1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(2, 3, 3, padding="same")
        self.bn = nn.BatchNorm1d(3)
        self.c2 = nn.Conv1d(3, 3, 3, stride=2, dilation=2, padding=1, groups=3, padding_mode="circular")
        self.fc = nn.Linear(9, 2)

    def forward(self, x):
        h = torch.tanh(self.c2(torch.tanh(self.bn(self.c1(x)))))
        return self.fc(h.flatten(1))


class WithEmbedding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.tensor([1.5, 0.5]))  # a custom parameter use: not supported

    def forward(self, x):
        return self.fc(x) * self.scale


class Twice(nn.Module):
    """The same Linear called twice in one forward: only detectable at run time."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.out = nn.Linear(3, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.fc(torch.tanh(self.fc(x)))))


def _randomize_bn(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g, dtype=torch.float64) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g, dtype=torch.float64) + 0.5)
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g, dtype=torch.float64) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g, dtype=torch.float64) - 0.5)
    return model.eval()


def _case(name: str):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if name == "mlp":
        model, x, c = build_model("mlp"), torch.randn(6, 40, generator=g), 10
    elif name == "cnn1d":
        model, x, c = build_model("cnn1d"), torch.randn(6, 40, generator=g), 10
    elif name == "toy_cnn":
        model = build_model("toy_cnn", widths=(3, 4), hidden=8, input_size=8, num_classes=5)
        x, c = torch.randn(6, 3, 8, 8, generator=g), 5
    elif name == "bn_mlp":
        model, x, c = tiny_bn_net(seed=2), torch.randn(6, 3, generator=g), 2
    elif name == "convs":
        model, x, c = Convs(), torch.randn(6, 2, 8, 8, generator=g), 3
    elif name == "convs1d":
        model, x, c = Convs1d(), torch.randn(6, 2, 7, generator=g), 2
    elif name == "seq":
        model, x, c = Seq(), torch.randn(6, 2, 8, generator=g), 4
    elif name == "embedding":
        model, x, c = nn.Sequential(nn.Embedding(7, 4), nn.Flatten(), nn.Linear(8, 3)), torch.randint(0, 7, (6, 2)), 3
    elif name == "custom_param":
        model, x, c = WithEmbedding(), torch.randn(6, 3, generator=g), 2
    elif name == "twice":
        model, x, c = Twice(), torch.randn(6, 3, generator=g), 2
    else:
        raise AssertionError(name)
    model = _randomize_bn(model.double())
    if x.is_floating_point():
        x = x.double()
    y = torch.randint(0, c, (x.shape[0],), generator=g)
    return model, x, y


SUPPORTED_CASES = ["mlp", "cnn1d", "toy_cnn", "bn_mlp", "convs", "convs1d", "seq"]


def _loop_direction(model, p, x, y):
    bufs = dict(model.named_buffers())
    keys = list(p)
    total = P.zeros_like(p)
    for j in range(x.shape[0]):
        q = {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}
        loss = F.cross_entropy(functional_call(model, {**bufs, **q}, (x[j : j + 1],)), y[j : j + 1])
        g = dict(zip(keys, torch.autograd.grad(loss, [q[k] for k in keys])))
        total = P.axpy(1.0 / float(P.norm(g)), g, total)
    return P.scale(total, 1.0 / x.shape[0])


def _vmap_direction(model, p, x, y):
    bufs = dict(model.named_buffers())

    def loss_one(q, xi, yi):
        return F.cross_entropy(functional_call(model, {**bufs, **q}, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    return _normalized_direction_per_example(loss_one, p, x, y, None)


def _no_hooks(model):
    for m in model.modules():
        assert not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks


@pytest.mark.parametrize("name", SUPPORTED_CASES)
def test_ghost_direction_matches_vmap_and_loop(name):
    model, x, y = _case(name)
    p = {k: v.detach().clone() for k, v in model.named_parameters()}
    plan = ghost_plan(model, p)
    assert plan is not None
    before = snapshot(model)
    d = ghost_direction(model, F.cross_entropy, dict(model.named_buffers()), p, x, y, plan)
    assert_same_state(before, snapshot(model))
    _no_hooks(model)
    ref_loop = _loop_direction(model, p, x, y)
    ref_vmap = _vmap_direction(model, p, x, y)
    assert d.keys() == p.keys()
    for k in p:
        torch.testing.assert_close(d[k], ref_loop[k], rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(d[k], ref_vmap[k], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["toy_cnn", "convs", "seq", "bn_mlp"])
def test_probe_kernel_ghost_equals_vmap(name):
    model, x, y = _case(name)
    params = dict(model.named_parameters())
    model.train()  # the probe runs in eval mode and restores the flag
    before = snapshot(model)
    kw = dict(gamma=0.05, n_descent=3, n_ascent=2)
    g = probe_kernel(model, F.cross_entropy, params, x, y, method="ghost", **kw)
    v = probe_kernel(model, F.cross_entropy, params, x, y, method="vmap", **kw)
    a = probe_kernel(model, F.cross_entropy, params, x, y, **kw)
    assert_same_state(before, snapshot(model))
    _no_hooks(model)
    assert float(g.value) == pytest.approx(float(v.value), rel=1e-10, abs=1e-12)
    assert torch.equal(a.value, g.value)  # auto = ghost on supported models
    for k in params:
        torch.testing.assert_close(g.point_high[k], v.point_high[k], rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(g.point_low[k], v.point_low[k], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["embedding", "custom_param", "twice"])
def test_unsupported_models_fall_back_to_vmap(name):
    model, x, y = _case(name)
    params = dict(model.named_parameters())
    plan = ghost_plan(model, params)
    if name == "twice":  # statically fine, declined at run time
        assert plan is not None
        assert ghost_direction(model, F.cross_entropy, {}, params, x, y, plan) is None
    else:
        assert plan is None
    before = snapshot(model)
    kw = dict(gamma=0.05, n_descent=2, n_ascent=2)
    a = probe_kernel(model, F.cross_entropy, params, x, y, **kw)
    v = probe_kernel(model, F.cross_entropy, params, x, y, method="vmap", **kw)
    assert_same_state(before, snapshot(model))
    _no_hooks(model)
    assert torch.equal(a.value, v.value)
    for k in params:
        assert torch.equal(a.point_high[k], v.point_high[k])
    ref = _loop_direction(model, {k: q.detach() for k, q in params.items()}, x, y)
    d = _vmap_direction(model, {k: q.detach() for k, q in params.items()}, x, y)
    for k in params:
        torch.testing.assert_close(d[k], ref[k], rtol=1e-10, atol=1e-13)


def test_explicit_ghost_on_unsupported_model_is_an_error():
    model, x, y = _case("custom_param")
    with pytest.raises(ValueError, match=r"method: expected 'auto' or 'vmap' \(the model has layers"):
        probe_kernel(
            model,
            F.cross_entropy,
            dict(model.named_parameters()),
            x,
            y,
            gamma=0.1,
            n_descent=1,
            n_ascent=0,
            method="ghost",
        )


def test_frozen_parameters_are_left_out_of_the_norms():
    model, x, y = _case("convs")
    model.c1.weight.requires_grad_(False)
    p = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    plan = ghost_plan(model, p)
    assert plan[model.c1] == (None, "c1.bias")
    d = ghost_direction(model, F.cross_entropy, dict(model.named_buffers()), p, x, y, plan)
    ref = _vmap_direction(model, p, x, y)
    for k in p:
        torch.testing.assert_close(d[k], ref[k], rtol=1e-10, atol=1e-13)


def test_zero_gradient_example_contributes_zero():
    model = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    p = {"weight": model.weight.detach()}
    d = ghost_direction(model, F.cross_entropy, {}, p, x, y, ghost_plan(model, p))
    ref = _vmap_direction(model, p, x, y)
    assert torch.isfinite(d["weight"]).all()
    torch.testing.assert_close(d["weight"], ref["weight"], rtol=1e-12, atol=0.0)


def test_hooks_removed_when_the_loss_raises():
    model, x, y = _case("toy_cnn")
    before = snapshot(model)

    def bad_loss(out, target):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        probe_kernel(model, bad_loss, dict(model.named_parameters()), x, y, gamma=0.1, n_descent=1, n_ascent=0)
    _no_hooks(model)
    assert_same_state(before, snapshot(model))


def test_stochastic_probe_method_option():
    model, x, y = _case("bn_mlp")
    obj = Objective(model, F.cross_entropy, (x, y))
    g = stochastic_probe(obj, 0.05, 2, 2, method="ghost")
    v = stochastic_probe(obj, 0.05, 2, 2, method="vmap")
    assert g.settings["method"] == "ghost" and v.settings["method"] == "vmap"
    assert g.value == pytest.approx(v.value, rel=1e-10, abs=1e-13)
    with pytest.raises(ValueError, match=r"method: expected one of 'auto', 'ghost', 'vmap', got 'loop'"):
        stochastic_probe(obj, 0.05, 1, 1, method="loop")


def _conv_loop(m, a, d):
    """Per-example weight gradients of conv ``m`` by autograd, one example at a time."""
    out = []
    for j in range(a.shape[0]):
        w = m.weight.detach().clone().requires_grad_(True)
        z = functional_call(m, {"weight": w, "bias": m.bias}, (a[j : j + 1],))
        out.append(torch.autograd.grad((z * d[j : j + 1]).sum(), w)[0])
    return torch.stack(out)


CONV_LAYERS = {
    "plain": lambda: nn.Conv2d(3, 4, 3, padding=1),
    "strided_dilated": lambda: nn.Conv2d(3, 5, 3, stride=2, dilation=2, padding=2),
    "same_reflect": lambda: nn.Conv2d(2, 3, 4, padding="same", padding_mode="reflect"),
    "uneven_stride": lambda: nn.Conv2d(2, 3, (3, 2), stride=(3, 2)),
    "groups": lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2),
    "conv1d_circular": lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1, padding_mode="circular"),
    "conv1d_groups": lambda: nn.Conv1d(4, 4, 5, dilation=2, groups=4),
}


@pytest.mark.parametrize("layer", sorted(CONV_LAYERS))
@pytest.mark.parametrize("method", ["grouped", "transposed", "unfold", None])
def test_conv_per_example_methods_match_a_loop(layer, method):
    from basinscope.sharpness import _ghost

    torch.manual_seed(0)
    m = CONV_LAYERS[layer]().double()
    b = _ghost._CHUNK + 5  # crosses a chunk boundary of the grouped method
    a = torch.randn(b, m.in_channels, *((9,) if isinstance(m, nn.Conv1d) else (9, 8)), dtype=torch.float64)
    d = torch.randn_like(m(a))
    if method == "transposed" and m.groups > 1:
        with pytest.raises(ValueError, match="method: 'transposed' needs groups=1, got groups="):
            _ghost.conv_per_example(m, a, d, method)
        return
    got = _ghost.conv_per_example(m, a, d, method)
    torch.testing.assert_close(got, _conv_loop(m, a, d), rtol=1e-12, atol=1e-12)


def test_conv_method_rule_is_a_function_of_shapes():
    from basinscope.sharpness._ghost import conv_method

    first = nn.Conv2d(3, 32, 5, padding=2)
    inner = nn.Conv2d(32, 64, 5, padding=2)
    assert conv_method(first, torch.zeros(2, 3, 8, 8)) == "transposed"
    assert conv_method(inner, torch.zeros(2, 32, 8, 8)) == "grouped"
    assert conv_method(nn.Conv2d(4, 4, 3, groups=2), torch.zeros(2, 4, 8, 8)) == "grouped"


def test_inplace_ops_after_a_layer_are_handled_by_a_second_forward(monkeypatch):
    from basinscope.sharpness import _ghost

    calls = []
    real = _ghost._forward

    def counting(*args, **kw):
        calls.append(kw["copy"])
        return real(*args, **kw)

    monkeypatch.setattr(_ghost, "_forward", counting)
    for name, expected in (("toy_cnn", [False]), ("convs", [False, True])):  # convs: ReLU(inplace) after BN
        calls.clear()
        model, x, y = _case(name)
        p = {k: v.detach().clone() for k, v in model.named_parameters()}
        d = ghost_direction(model, F.cross_entropy, dict(model.named_buffers()), p, x, y, ghost_plan(model, p))
        assert calls == expected
        ref = _loop_direction(model, p, x, y)
        for k in p:
            torch.testing.assert_close(d[k], ref[k], rtol=1e-10, atol=1e-13)
