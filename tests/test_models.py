"""Model zoo: every model builds, maps its input to (N, num_classes), trains one step; reference sizes; errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from basinscope.models import (
    CNN1D,
    MLP,
    VGG,
    PreResNet,
    PreResNetBasicBlock,
    PreResNetBottleneck,
    ToyCNN,
    WideResNet,
    available_models,
    build_model,
)

# name, constructor kwargs (tiny), input shape of one example, number of classes
TINY = [
    pytest.param("toy_cnn", {"widths": (4, 8), "hidden": 16}, (3, 32, 32), 10, id="toy_cnn"),
    pytest.param(
        "toy_cnn",
        {"in_channels": 1, "input_size": 28, "widths": (3, 5), "hidden": 8, "num_classes": 4, "kernel_size": 3},
        (1, 28, 28),
        4,
        id="toy_cnn-mnist-shape",
    ),
    pytest.param("vgg16", {"depth": 11, "width": 1 / 16}, (3, 32, 32), 10, id="vgg11-tiny"),
    pytest.param("vgg16", {"width": 1 / 32, "num_classes": 100}, (3, 32, 32), 100, id="vgg16-tiny-c100"),
    pytest.param("vgg16_bn", {"depth": 13, "width": 1 / 16}, (3, 32, 32), 10, id="vgg13bn-tiny"),
    pytest.param("preresnet", {"depth": 8, "width": 0.25}, (3, 32, 32), 10, id="preresnet8-basic"),
    pytest.param("preresnet", {"depth": 11, "bottleneck": True, "width": 0.25}, (3, 16, 16), 10, id="preresnet11-bn"),
    pytest.param("preresnet164", {"depth": 47, "width": 0.125}, (3, 16, 16), 5, id="preresnet47-rule"),
    pytest.param("wide_resnet", {"depth": 10, "widen_factor": 1, "dropout_rate": 0.2}, (3, 32, 32), 10, id="wrn10-1"),
    pytest.param("wrn28_10", {"depth": 10, "widen_factor": 1, "in_channels": 1}, (1, 16, 16), 3, id="wrn-alias"),
    pytest.param("mlp", {}, (40,), 10, id="mlp-default"),
    pytest.param("mlp", {"hidden": (16, 8), "batch_norm": True, "dropout": 0.1}, (40,), 10, id="mlp-bn-dropout"),
    pytest.param("cnn1d", {}, (40,), 10, id="cnn1d"),
    pytest.param("cnn1d", {}, (1, 40), 10, id="cnn1d-with-channel"),
    pytest.param("cnn1d", {"batch_norm": True, "dropout": 0.2}, (40,), 10, id="cnn1d-bn-dropout-kwargs"),
    pytest.param("cnn1d_bn_dropout", {}, (40,), 10, id="cnn1d_bn_dropout"),
    pytest.param("cnn1d_bn_dropout", {"num_classes": 4, "channels": 6}, (1, 40), 4, id="cnn1d_bn_dropout-small"),
]


@pytest.mark.parametrize(("name", "kwargs", "shape", "classes"), TINY)
def test_forward_shape_and_one_sgd_step(name, kwargs, shape, classes):
    torch.manual_seed(0)
    kwargs = dict(kwargs)
    if classes != 10:
        kwargs.setdefault("num_classes", classes)
    model = build_model(name, **kwargs).double()
    x = torch.randn(6, *shape, dtype=torch.float64)
    y = torch.randint(0, classes, (6,))

    def loss_fn() -> torch.Tensor:
        torch.manual_seed(1)  # same dropout masks before and after the step
        return F.cross_entropy(model(x), y)

    model.train()
    loss0 = loss_fn()
    loss0.backward()
    params = dict(model.named_parameters())
    for n, p in params.items():
        assert p.grad is not None, f"{n} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{n} has non-finite gradient"
    before = {n: p.detach().clone() for n, p in params.items()}
    lr = 1e-2
    torch.optim.SGD(model.parameters(), lr=lr).step()
    for n, p in params.items():
        torch.testing.assert_close(p.detach(), before[n] - lr * p.grad, msg=f"{n} did not take the SGD step")
    # biases right before a BatchNorm get (numerically) zero gradient; everything else must move
    moved = [n for n, p in params.items() if not torch.equal(p, before[n])]
    assert len(moved) >= 0.75 * len(params), f"only {len(moved)}/{len(params)} parameters moved"
    with torch.no_grad():
        loss1 = loss_fn()
    assert torch.isfinite(loss0) and loss1 < loss0

    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (6, classes) and out.dtype == torch.float64 and torch.isfinite(out).all()


def _vgg16_count(num_classes: int, batch_norm: bool) -> int:
    channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    total, cin = 0, 3
    for c in channels:
        total += 9 * cin * c + c + (2 * c if batch_norm else 0)
        cin = c
    return total + 2 * (512 * 512 + 512) + 512 * num_classes + num_classes


def _preresnet164_count(num_classes: int) -> int:
    n, total, inplanes = 18, 9 * 3 * 16, 16
    for planes in (16, 32, 64):
        for block in range(n):
            total += 2 * inplanes + inplanes * planes + 2 * planes + 9 * planes * planes + 2 * planes
            total += planes * 4 * planes
            if block == 0:
                total += inplanes * 4 * planes  # 1x1 projection of the shortcut
            inplanes = 4 * planes
    return total + 2 * 256 + 256 * num_classes + num_classes


def _wrn_count(depth: int, k: int, num_classes: int) -> int:
    n, total, inplanes = (depth - 4) // 6, 9 * 3 * 16 + 16, 16
    for stage, planes in enumerate((16 * k, 32 * k, 64 * k)):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            total += 2 * inplanes + 9 * inplanes * planes + planes + 2 * planes + 9 * planes * planes + planes
            if stride != 1 or inplanes != planes:
                total += inplanes * planes + planes  # 1x1 projection of the shortcut (with bias)
            inplanes = planes
    return total + 2 * 64 * k + 64 * k * num_classes + num_classes


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("vgg16", {}, _vgg16_count(10, False)),
        ("vgg16", {"num_classes": 100}, _vgg16_count(100, False)),
        ("vgg16_bn", {}, _vgg16_count(10, True)),
        ("preresnet164", {}, _preresnet164_count(10)),
        ("wrn28_10", {}, _wrn_count(28, 10, 10)),
        ("toy_cnn", {}, (3 * 25 * 32 + 32) + (32 * 25 * 64 + 64) + (64 * 8 * 8 * 256 + 256) + (256 * 10 + 10)),
        ("mlp", {}, (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10)),
        ("cnn1d", {}, (1 * 25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (25 * 5 * 10 + 10)),
        ("cnn1d_bn_dropout", {}, (1 * 25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (25 * 5 * 10 + 10) + 3 * 2 * 25),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_reference_parameter_counts(name, kwargs, expected):
    assert _count(build_model(name, **kwargs)) == expected


def test_reference_sizes_match_the_papers():
    assert _vgg16_count(10, False) == 15_245_130  # ~15.2M in the SWA paper's VGG16
    assert _preresnet164_count(10) == 1_703_258  # ~1.7M (He et al. 2016)
    assert _wrn_count(28, 10, 10) == 36_489_290  # ~36.5M (Zagoruyko & Komodakis 2016)


def test_reference_initialization_and_structure():
    torch.manual_seed(0)
    vgg = VGG()
    convs = [m for m in vgg.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and sum(isinstance(m, nn.MaxPool2d) for m in vgg.features) == 5
    for conv in convs:
        assert torch.equal(conv.bias, torch.zeros_like(conv.bias))
    last = convs[-1].weight.detach()
    assert float(last.std()) == pytest.approx(math.sqrt(2 / (9 * 512)), rel=0.02)
    assert [type(m) for m in vgg.classifier] == [
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.Linear,
    ]

    assert isinstance(PreResNet(depth=8).layer1[0], PreResNetBasicBlock)
    assert isinstance(PreResNet(depth=47).layer1[0], PreResNetBottleneck)
    assert isinstance(PreResNet(depth=38).layer1[0], PreResNetBasicBlock)  # 38 < 44: basic, as in the reference
    assert PreResNet(depth=11, bottleneck=True).fc.in_features == 256

    wrn = WideResNet(depth=10, widen_factor=2)
    assert wrn.bn1.momentum == 0.9 and [len(wrn.layer1), len(wrn.layer2), len(wrn.layer3)] == [1, 1, 1]
    assert wrn.linear.in_features == 128


def test_adaptive_pool_equals_reference_pool_on_cifar_inputs():
    torch.manual_seed(0)
    model = PreResNet(depth=8, width=0.5).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        h = model.relu(model.bn(model.layer3(model.layer2(model.layer1(model.conv1(x))))))
        reference = model.fc(nn.AvgPool2d(8)(h).flatten(1))
        torch.testing.assert_close(model(x), reference)


def test_direct_constructors_match_registry():
    assert isinstance(build_model("toy_cnn"), ToyCNN)
    assert isinstance(build_model("mlp"), MLP) and isinstance(build_model("cnn1d"), CNN1D)
    vgg_bn = build_model("vgg16_bn", width=0.1)
    assert isinstance(vgg_bn, VGG) and any(isinstance(m, nn.BatchNorm2d) for m in vgg_bn.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in build_model("vgg16", width=0.1).modules())


def test_available_models():
    assert available_models() == [
        "toy_cnn",
        "vgg16",
        "vgg16_bn",
        "preresnet",
        "preresnet164",
        "wide_resnet",
        "wrn28_10",
        "mlp",
        "cnn1d",
        "cnn1d_bn_dropout",
    ]


@pytest.mark.parametrize(
    ("name", "kwargs", "exc", "match"),
    [
        (
            "resnet18",
            {},
            ValueError,
            r"^name: expected one of 'toy_cnn', .*'cnn1d_bn_dropout', got 'resnet18'$",
        ),
        (3, {}, TypeError, r"^name: expected str, got int$"),
        ("vgg16", {"batch_norm": True}, TypeError, r"^batch_norm: expected an argument of model 'vgg16' \(one of"),
        ("mlp", {"widths": (3,)}, TypeError, r"^widths: expected an argument of model 'mlp' .*got unexpected keyword"),
        ("vgg16", {"depth": 15}, ValueError, r"^depth: expected one of 11, 13, 16, 19, got 15$"),
        ("vgg16", {"width": 0}, ValueError, r"^width: expected a finite number > 0, got 0$"),
        ("vgg16", {"dropout": 1.0}, ValueError, r"^dropout: expected a probability in \[0, 1\), got 1.0$"),
        ("preresnet", {"depth": 50}, ValueError, r"^depth: expected 9n \+ 2 for bottleneck blocks .*got 50$"),
        ("preresnet", {"depth": 15}, ValueError, r"^depth: expected 6n \+ 2 for basic blocks .*got 15$"),
        ("preresnet", {"bottleneck": 1}, TypeError, r"^bottleneck: expected a bool or None, got int$"),
        ("wide_resnet", {"depth": 12}, ValueError, r"^depth: expected 6n \+ 4 \(e.g. 10, 16, 22, 28\), got 12$"),
        ("wide_resnet", {"widen_factor": 2.5}, TypeError, r"^widen_factor: expected an integer, got 2.5$"),
        ("wide_resnet", {"num_classes": 0}, ValueError, r"^num_classes: expected an integer >= 1, got 0$"),
        ("toy_cnn", {"widths": (4,)}, TypeError, r"^widths: expected a pair of channel counts, got tuple of length 1$"),
        ("toy_cnn", {"kernel_size": 4}, ValueError, r"^kernel_size: expected an odd integer, got 4$"),
        ("toy_cnn", {"input_size": 2}, ValueError, r"^input_size: expected an integer >= 4, got 2$"),
        ("mlp", {"hidden": "64"}, TypeError, r"^hidden: expected a sequence of positive integers, got '64'$"),
        ("mlp", {"hidden": (8, 0)}, ValueError, r"^hidden\[1\]: expected an integer >= 1, got 0$"),
        ("cnn1d", {"kernel_sizes": ()}, ValueError, r"^kernel_sizes: expected a non-empty sequence"),
        ("cnn1d", {"input_length": 2}, ValueError, r"^input_length: expected a length that survives kernels"),
        ("cnn1d", {"in_channels": 2}, TypeError, r"^in_channels: expected an argument of model 'cnn1d'"),
        ("cnn1d", {"dropout": 1.0}, ValueError, r"^dropout: expected a probability in \[0, 1\), got 1.0$"),
        ("cnn1d", {"batch_norm": 1}, TypeError, r"^batch_norm: expected bool, got int$"),
        (
            "cnn1d_bn_dropout",
            {"dropout": 0.1},
            TypeError,
            r"^dropout: expected an argument of model 'cnn1d_bn_dr",
        ),
    ],
    ids=lambda v: None,
)
def test_errors(name, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        build_model(name, **kwargs)


# ---------------------------------------------------------------------------------------------- --model module:factory
class _ResNetLike(nn.Module):
    """Stands for torchvision's ResNet: takes num_classes, not in_channels (always 3 input channels)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def resnet18_like(*, weights=None, progress=True, **kwargs) -> nn.Module:
    """torchvision.models.resnet18's signature: everything but weights/progress goes to the constructor."""
    assert weights is None and progress
    return _ResNetLike(**kwargs)


RECEIVED: list[dict] = []


def named_channels(in_channels: int, num_classes: int = 7, **kwargs) -> nn.Module:
    """A factory naming in_channels and num_classes (and taking **kwargs besides)."""
    RECEIVED.append({"in_channels": in_channels, "num_classes": num_classes, **kwargs})
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))


def image_data():
    """8 train / 4 test images of shape (3, 4, 4), 10 classes."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(12) % 10
    return torch.randn(8, 3, 4, 4, generator=g), y[:8], torch.randn(4, 3, 4, 4, generator=g), y[8:]


def _image_defaults():
    from basinscope.specs import resolve_data

    return resolve_data("tests.test_models:image_data").model_defaults()


def test_kwargs_factory_gets_no_data_derived_arguments():
    from basinscope.specs import resolve_model

    defaults = _image_defaults()
    assert defaults == {"num_classes": 10, "in_channels": 3}
    with pytest.raises(TypeError, match="in_channels"):
        resnet18_like(**defaults)  # what passing the defaults through **kwargs did
    model = resolve_model("tests.test_models:resnet18_like", defaults=defaults)
    assert model.fc.out_features == 1000  # the factory's own default: nothing was injected
    model = resolve_model("tests.test_models:resnet18_like:num_classes=10", defaults=defaults)
    assert model.fc.out_features == 10 and model(torch.randn(2, 3, 4, 4)).shape == (2, 10)


def test_factory_naming_the_parameters_receives_them():
    from basinscope.specs import resolve_model

    RECEIVED.clear()
    model = resolve_model("tests.test_models:named_channels", defaults=_image_defaults())
    assert RECEIVED == [{"in_channels": 3, "num_classes": 10}]  # named ones only; nothing extra via **kwargs
    assert model[-1].out_features == 10
    resolve_model("tests.test_models:named_channels:num_classes=4,extra=1", defaults=_image_defaults())
    assert RECEIVED[-1] == {"in_channels": 3, "num_classes": 4, "extra": 1}  # the spec wins and may use **kwargs


def test_kwargs_factory_through_the_command_line(capsys, tmp_path):
    from basinscope.cli import main

    ckpt = tmp_path / "r.pt"
    torch.save(resnet18_like(num_classes=10).state_dict(), ckpt)
    argv = ["diagnose", str(ckpt), "--model", "tests.test_models:resnet18_like:num_classes=10"]
    argv += ["--data", "tests.test_models:image_data", "--quick", "--no-surface", "--no-density", "--no-progress"]
    code = main([*argv, "--out", str(tmp_path / "o"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["parameters"] == (3 * 4 * 9 + 4) + (4 * 10 + 10)


def test_cnn1d_bn_dropout_layers_and_train_eval_behaviour():
    torch.manual_seed(0)
    model = build_model("cnn1d_bn_dropout")
    kinds = [type(m) for m in model.features]
    assert kinds == [nn.Conv1d, nn.BatchNorm1d, nn.ReLU, nn.Dropout] * 3
    assert all(m.p == 0.5 for m in model.features if isinstance(m, nn.Dropout))
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.Dropout)) for m in build_model("cnn1d").modules())
    x = torch.randn(16, 40)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a, b)  # dropout draws a new mask per call in train mode
    bn = model.features[1]
    assert int(bn.num_batches_tracked) == 2 and not torch.equal(bn.running_mean, torch.zeros(25))
    model.eval()
    running = {n: t.clone() for n, t in model.named_buffers()}
    c, d = model(x), model(x)
    assert torch.equal(c, d)
    assert all(torch.equal(t, running[n]) for n, t in model.named_buffers())  # eval leaves statistics alone
    # eval mode by hand: conv -> BN with the running statistics -> ReLU (first layer), no dropout
    h = model.features[0](x.unsqueeze(1))
    z = (h - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps)
    ref = torch.relu(z * bn.weight[:, None] + bn.bias[:, None])
    torch.testing.assert_close(model.features[2](model.features[1](h)), ref)


def test_cnn1d_bn_dropout_state_restored_by_measurements():
    from basinscope.objective import Objective
    from basinscope.sharpness import probe, stochastic_probe

    from .conftest import assert_same_state, snapshot

    torch.manual_seed(0)
    model = build_model("cnn1d_bn_dropout")
    x, y = torch.randn(32, 40), torch.randint(0, 10, (32,))
    model.train()
    model(x)  # non-trivial running statistics
    model.zero_grad()
    before = snapshot(model)
    obj = Objective(model, F.cross_entropy, [(x, y)])
    obj.evaluate()
    probe(obj, 0.005, 2, 2)
    stochastic_probe(obj, 0.005, 2, 2)
    assert_same_state(before, snapshot(model))
    model.eval()
    before = snapshot(model)
    stochastic_probe(obj, 0.005, 1, 1, normalize="batch")
    assert_same_state(before, snapshot(model))
