"""Hessian-vector products through attention (``F.scaled_dot_product_attention``): the fused kernels have no
double backward, so second-order code must run attention on its math backend."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from basinscope.hessian import HessianOperator, top_eigenvalues
from basinscope.hessian._second_order import math_attention, second_order_mode
from basinscope.objective import Objective

from .conftest import assert_same_state, snapshot


class TinyTransformer(nn.Module):
    """Linear embedding -> one TransformerEncoderLayer (2 heads) -> mean over tokens -> Linear (3 classes);
    167 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 4)
        self.encoder = nn.TransformerEncoderLayer(4, 2, dim_feedforward=4, dropout=0.0, batch_first=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


@pytest.fixture(scope="module")
def problem():
    torch.manual_seed(0)
    model = TinyTransformer().double().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 4, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (6,), generator=g)
    return model, x, y


def dense_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Hessian of the mean cross-entropy by torch.func, column by column: jvp(grad(f)) at each unit vector
    (forward over reverse mode), attention on the math backend.

    Not ``torch.func.hessian``: on torch 2.13 its vmap over the columns gets Linear -> LayerNorm (affine) wrong.
    Measured on Linear(8, 8) -> LayerNorm(8), float64: entries off by up to 16.6 from double backpropagation,
    which agreed with the same jvp(grad) columns to 2e-14 and with central differences of the gradient to 1e-11.
    """
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    names, shapes = list(params), [p.shape for p in params.values()]
    sizes = [p.numel() for p in params.values()]
    flat = torch.cat([p.reshape(-1) for p in params.values()])

    def f(v):
        parts = dict(zip(names, (t.reshape(s) for t, s in zip(torch.split(v, sizes), shapes))))
        return F.cross_entropy(functional_call(model, parts, (x,)), y)

    eye = torch.eye(flat.numel(), dtype=torch.float64)
    with math_attention():
        return torch.stack([torch.func.jvp(torch.func.grad(f), (flat,), (e,))[1] for e in eye], dim=1)


@pytest.fixture(scope="module")
def hessian(problem):
    return dense_hessian(*problem)


def test_plain_double_backward_through_attention_fails_on_cpu(problem):
    """What the fix is for: without the math backend, PyTorch picks a kernel with no double backward on CPU."""
    model, x, y = problem
    params = [p for p in model.parameters()]
    loss = F.cross_entropy(model(x), y)
    g = torch.autograd.grad(loss, params, create_graph=True)
    with pytest.raises(RuntimeError, match=r"derivative for .*scaled_dot_product.*backward is not implemented"):
        torch.autograd.grad(g, params, grad_outputs=[torch.ones_like(t) for t in g], allow_unused=True)


@pytest.mark.parametrize(("graph", "fast"), [("cached", True), ("stream", True), ("cached", False)])
def test_hvp_through_attention_matches_dense_hessian(problem, hessian, graph, fast):
    model, x, y = problem
    H = hessian
    torch.testing.assert_close(H, H.T, rtol=1e-10, atol=1e-12)
    before = snapshot(model)
    op = HessianOperator(Objective(model, F.cross_entropy, (x, y)), graph=graph, fast_second_order=fast)
    columns = torch.randn(op.dim, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(op.matmat(columns), H @ columns, rtol=1e-9, atol=1e-11)
    assert_same_state(before, snapshot(model))


def test_objective_hvp_through_attention(problem, hessian):
    model, x, y = problem
    H = hessian
    obj = Objective(model, F.cross_entropy, (x, y))
    point = obj.point()
    v = {n: torch.ones_like(t) for n, t in point.items()}
    hv = torch.cat([t.reshape(-1) for t in obj.hvp(v).values()])
    torch.testing.assert_close(hv, H @ torch.ones(H.shape[0], dtype=torch.float64), rtol=1e-9, atol=1e-11)


def test_top_eigenvalue_of_attention_model_matches_dense(problem, hessian):
    model, x, y = problem
    evs = torch.linalg.eigvalsh(hessian)
    res = top_eigenvalues(Objective(model, F.cross_entropy, (x, y)), k=2)
    torch.testing.assert_close(torch.tensor(res.eigenvalues, dtype=torch.float64), evs.flip(0)[:2], rtol=1e-8, atol=0)


def test_second_order_code_forces_the_math_backend(problem, monkeypatch):
    """Record, at every attention call inside the HVP code, which fused backends PyTorch may use."""
    model, x, y = problem
    seen: list[tuple[bool, bool, bool]] = []
    real = F.scaled_dot_product_attention

    def recording(*args, **kwargs):
        seen.append(
            (
                torch.backends.cuda.flash_sdp_enabled(),
                torch.backends.cuda.mem_efficient_sdp_enabled(),
                torch.backends.cuda.math_sdp_enabled(),
            )
        )
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    assert torch.backends.cuda.flash_sdp_enabled()  # the default outside: fused kernels allowed
    for fast in (True, False):
        op = HessianOperator(Objective(model, F.cross_entropy, (x, y)), graph="stream", fast_second_order=fast)
        op.matvec(torch.ones(op.dim, dtype=torch.float64))
    with second_order_mode(False):
        model(x)
    assert len(seen) == 3
    assert all(s == (False, False, True) for s in seen)
    assert torch.backends.cuda.flash_sdp_enabled()  # restored after the block
