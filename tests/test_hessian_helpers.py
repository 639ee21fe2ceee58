"""Tiny float64 problems and their dense Hessians, the independent reference for basinscope.hessian tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from basinscope.objective import Objective


def tiny_mlp(seed: int = 0) -> nn.Module:
    """4 -> 6 -> 3 tanh MLP in float64 (51 parameters)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def tiny_bn_mlp(seed: int = 0) -> nn.Module:
    """4 -> 6 (BatchNorm) -> 3 in float64, with non-trivial running statistics (63 parameters)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3)).double()
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 1.5)
        model[1].weight.uniform_(0.5, 1.5)
    return model.eval()


def data(n: int = 40, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def dense_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str] | None = None):
    """The dense Hessian of the mean cross-entropy over the flattened (selected) parameters, in eval mode."""
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    names = names or list(params)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    flat = torch.cat([params[n].reshape(-1) for n in names])
    training = model.training
    model.eval()

    def f(v):
        parts = dict(zip(names, (t.reshape(s) for t, s in zip(torch.split(v, sizes), shapes))))
        return F.cross_entropy(functional_call(model, {**buffers, **params, **parts}, (x,)), y)

    H = torch.func.hessian(f)(flat)
    model.train(training)
    return H


def objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_batches: int = 1, **kw) -> Objective:
    if n_batches == 1:
        return Objective(model, F.cross_entropy, (x, y), **kw)
    chunks = list(zip(torch.tensor_split(x, n_batches), torch.tensor_split(y, n_batches)))
    return Objective(model, F.cross_entropy, chunks, **kw)


def test_dense_reference_matches_objective_hvp():
    """The reference itself: columns of the dense Hessian equal Objective.hvp (the foundation's own HVP)."""
    model = tiny_bn_mlp()
    x, y = data()
    H = dense_hessian(model, x, y)
    obj = objective(model, x, y)
    point = obj.point()
    e = torch.zeros(obj.dim, dtype=torch.float64)
    e[7] = 1.0
    sizes = [t.numel() for t in point.values()]
    v = dict(zip(point, (t.reshape(p.shape) for t, p in zip(torch.split(e, sizes), point.values()))))
    hv = torch.cat([t.reshape(-1) for t in obj.hvp(v).values()])
    torch.testing.assert_close(hv, H[:, 7], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(H, H.T, rtol=1e-10, atol=1e-12)
