"""The cheaper double-backward forms (eval BatchNorm as an affine map, kernel-level convolution double backward)
against PyTorch's own derivatives and the dense float64 Hessian."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from basinscope.hessian import top_eigenvalues
from basinscope.hessian._second_order import second_order_mode
from basinscope.hessian.hvp import HessianOperator
from basinscope.objective import Objective


class Net(nn.Module):
    """Eval BatchNorm (1d, 2d) folded into the convolution before it, on a non-convolution input, and after an
    in-place change of a convolution's output; conv1d/2d/3d with groups, stride, dilation, with and without bias,
    'same' padding (left to PyTorch), reflect padding, and a train-mode BatchNorm (batch statistics, left to
    PyTorch)."""

    def __init__(self, batch_stats: bool = True) -> None:
        super().__init__()
        self.batch_stats = batch_stats
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.bn_free = nn.BatchNorm2d(4)
        self.c_ip = nn.Conv2d(4, 4, 1)
        self.bn_ip = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, dilation=2, padding=2, groups=2, bias=False)
        self.c_same = nn.Conv2d(6, 6, 2, padding="same", padding_mode="reflect")
        self.c3 = nn.Conv3d(1, 2, (1, 2, 2))
        self.c1d = nn.Conv1d(2, 3, 2, stride=2, padding=1)
        self.bn1d = nn.BatchNorm1d(3)
        self.bn_batch = nn.BatchNorm1d(3, track_running_stats=False)
        self.fc = nn.Linear(9, 3)

    def forward(self, x):
        h = torch.tanh(self.bn(self.c1(x)))
        h = self.bn_free(h)
        u = self.c_ip(h)
        u.mul_(0.7)  # changed in place: the BatchNorm after it must not be folded into c_ip
        h = h + torch.tanh(self.bn_ip(u))
        h = torch.tanh(self.c2(h))  # (B, 6, 3, 3)
        h = torch.tanh(self.c_same(h))
        h = torch.tanh(self.c3(h[:, :1].unsqueeze(1)))  # (B, 2, 1, 2, 2)
        h = torch.tanh(self.bn1d(self.c1d(h.flatten(2))))  # (B, 3, 3)
        if self.batch_stats:
            h = self.bn_batch(h)
        return self.fc(h.flatten(1))


def _problem(batch_stats: bool = True):
    torch.manual_seed(0)
    model = Net(batch_stats).double().eval()
    with torch.no_grad():
        for bn in (model.bn, model.bn_free, model.bn_ip, model.bn1d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (5,), generator=g)
    return model, x, y


def _derivatives(model, x, y, fast: bool, third: bool) -> torch.Tensor:
    names = [n for n, _ in model.named_parameters()]
    leaves = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    gen = torch.Generator().manual_seed(2)
    v = [torch.randn(leaf.shape, generator=gen, dtype=torch.float64) for leaf in leaves]
    with second_order_mode(fast):
        out = torch.func.functional_call(model, dict(zip(names, leaves)), (x,))
        loss = F.cross_entropy(out, y)
        g = torch.autograd.grad(loss, leaves, create_graph=True)
    hv = torch.autograd.grad(g, leaves, v, create_graph=third)
    parts = [out, *g, *hv]
    if third:
        s = sum((h * w).sum() for h, w in zip(hv, v))
        parts += list(torch.autograd.grad(s, leaves))
    return torch.cat([p.detach().reshape(-1) for p in parts])


@pytest.mark.parametrize("third", [False, True])
def test_same_values_and_derivatives_as_pytorch(third):
    model, x, y = _problem()
    ref = _derivatives(model, x, y, fast=False, third=third)
    got = _derivatives(model, x, y, fast=True, third=third)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-11)


def test_the_mode_substitutes_and_leaves_nothing_behind():
    model, x, _y = _problem()
    seen = []
    with second_order_mode():
        out = model.c1(x)
        seen.append(type(out.grad_fn).__name__)
        out = model.bn(out)
        seen.append(type(out.grad_fn).__name__)
        out = model.bn(model.c1(x) + 0)
        seen.append(type(out.grad_fn).__name__)
        c = model.c1(x)
        c.mul_(2)
        out = model.bn(c)
        seen.append(type(out.grad_fn).__name__)
    torch.testing.assert_close(out, model.bn(2 * model.c1(x)), rtol=1e-12, atol=1e-13)
    assert seen[0] == "_ConvBackward"  # the custom convolution
    assert seen[1] == "_ConvBackward"  # eval BatchNorm of its output folded into it
    assert seen[2].startswith("Addcmul")  # eval BatchNorm of anything else: an affine map
    assert seen[3].startswith("Addcmul")  # the convolution's output was changed in place: not folded
    assert torch._C._len_torch_function_stack() == 0
    out = model.bn(model.c1(x))
    assert type(out.grad_fn).__name__.startswith("NativeBatchNorm")


def test_train_mode_batchnorm_is_left_alone():
    model, x, _ = _problem()
    model.train()
    with second_order_mode():
        out = model.bn(model.c1(x))
    assert type(out.grad_fn).__name__.startswith("NativeBatchNorm")


def test_operator_matches_dense_hessian_both_ways():
    # torch.func.hessian is wrong for BatchNorm with batch statistics (torch 2.13: an asymmetric "Hessian"),
    # so the dense reference uses the model without that layer
    model, x, y = _problem(batch_stats=False)
    obj = Objective(model, F.cross_entropy, (x, y))
    names = [n for n, _ in model.named_parameters()]
    point = {n: p.detach() for n, p in model.named_parameters()}
    bufs = dict(model.named_buffers())

    def f(flat):
        parts = torch.split(flat, [point[n].numel() for n in names])
        p = {n: t.reshape(point[n].shape) for n, t in zip(names, parts)}
        return F.cross_entropy(torch.func.functional_call(model, {**bufs, **p}, (x,)), y)

    flat = torch.cat([point[n].reshape(-1) for n in names])
    dense = torch.func.hessian(f)(flat)
    eye = torch.eye(flat.numel(), dtype=torch.float64)
    for fast in (True, False):
        op = HessianOperator(obj, graph="cached", fast_second_order=fast)
        torch.testing.assert_close(op.matmat(eye), dense, rtol=1e-10, atol=1e-12)
        op.release()
    res = top_eigenvalues(obj, k=2)
    top = torch.linalg.eigvalsh(dense)[-2:].flip(0)
    for a, b in zip(res.eigenvalues, top.tolist()):
        assert abs(a - b) <= 1e-6 * abs(b)
