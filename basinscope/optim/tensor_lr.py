"""SGD and Adam whose learning rate may be a 0-d device tensor, with no host synchronization.

SALR (SALR paper, Algorithm 1) changes the rate to η₀·Ŝ_k/median(Ŝ) where Ŝ_k is a device tensor. PyTorch's
own SGD and Adam accept a tensor ``lr`` but read it back to the host on their non-compiled CPU/CUDA paths (one
sync per step). These two optimizers apply the same updates as ``torch.optim.SGD`` (momentum, dampening,
Nesterov, weight decay) and ``torch.optim.Adam`` (Kingma & Ba, Algorithm 1, standard bias correction
m̂_{k+1} = m_{k+1}/(1 − β₁^{k+1}), v̂_{k+1} = v_{k+1}/(1 − β₂^{k+1}),
θ_{k+1} = θ_k − η_k·m̂_{k+1}/(√v̂_{k+1} + ε)) with ``torch._foreach_*`` kernels and a tensor or float rate.
With a float rate they reproduce PyTorch bit for bit; with a tensor rate SGD computes p + (−η·g), which
may differ from PyTorch's fused p − η·g in the last bit (tested in float64).

Example:
    >>> w = torch.zeros(3, requires_grad=True)
    >>> opt = SGD([w], lr=torch.tensor(0.1))
    >>> w.grad = torch.ones(3); _ = opt.step()
    >>> w.tolist()
    [-0.10000000149011612, -0.10000000149011612, -0.10000000149011612]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer

from .._checks import check_positive, check_type, fail

__all__ = ["SGD", "Adam", "check_lr"]


def check_lr(lr: float | torch.Tensor, name: str = "lr") -> float | torch.Tensor:
    """A learning rate: a finite number >= 0 or a 0-d floating tensor (not inspected: it may live on a GPU)."""
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1 or not lr.is_floating_point():
            fail(name, "a number >= 0 or a one-element floating-point tensor", lr)
        return lr
    check_positive(name, lr, allow_zero=True)
    return float(lr)


def _grads(group) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    ps = [p for p in group["params"] if p.grad is not None]
    return ps, [p.grad for p in ps]


def _scaled(values: list[torch.Tensor], factor: float | torch.Tensor) -> list[torch.Tensor]:
    if isinstance(factor, torch.Tensor):
        return torch._foreach_mul(values, factor.to(device=values[0].device, dtype=values[0].dtype))
    return torch._foreach_mul(values, factor)


class SGD(Optimizer):
    """Stochastic gradient descent (PyTorch's update rule) with a float or 0-d tensor learning rate.

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate (number or 0-d tensor).
        momentum, dampening, nesterov, weight_decay: as ``torch.optim.SGD``.
    """

    supports_tensor_lr = True

    def __init__(
        self,
        params: Iterable,
        lr: float | torch.Tensor = 0.01,
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        lr = check_lr(lr)
        check_positive("momentum", momentum, allow_zero=True)
        check_positive("dampening", dampening, allow_zero=True)
        check_positive("weight_decay", weight_decay, allow_zero=True)
        check_type("nesterov", nesterov, bool)
        if nesterov and (momentum <= 0 or dampening != 0):
            fail("nesterov", "momentum > 0 and dampening = 0 for Nesterov momentum", f"momentum={momentum}", raw=True)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            ps, gs = _grads(group)
            if not ps:
                continue
            if group["weight_decay"] != 0:
                gs = torch._foreach_add(gs, ps, alpha=group["weight_decay"])
            m = group["momentum"]
            if m != 0:
                bufs = []
                for p, g in zip(ps, gs):
                    st = self.state[p]
                    if "momentum_buffer" not in st:
                        st["momentum_buffer"] = g.detach().clone()
                    else:
                        st["momentum_buffer"].mul_(m).add_(g, alpha=1 - group["dampening"])
                    bufs.append(st["momentum_buffer"])
                gs = torch._foreach_add(gs, bufs, alpha=m) if group["nesterov"] else bufs
            lr = group["lr"]
            if isinstance(lr, torch.Tensor):
                torch._foreach_add_(ps, _scaled(gs, -lr))
            else:  # PyTorch's fused p + α·g (differs from p + (α·g) by rounding)
                torch._foreach_add_(ps, gs, alpha=-lr)
        return loss


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015; PyTorch's update rule, standard bias correction) with a float or 0-d tensor
    learning rate.

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate η (number or 0-d tensor).
        betas: (β₁, β₂) in [0, 1).
        eps: ε added to √v̂.
        weight_decay: L2 penalty added to the gradient (as ``torch.optim.Adam``).
    """

    supports_tensor_lr = True

    def __init__(
        self,
        params: Iterable,
        lr: float | torch.Tensor = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        lr = check_lr(lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0 <= float(b) < 1 for b in betas)):
            fail("betas", "two numbers in [0, 1)", betas)
        check_positive("eps", eps, allow_zero=True)
        check_positive("weight_decay", weight_decay, allow_zero=True)
        super().__init__(params, dict(lr=lr, betas=tuple(float(b) for b in betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            ps, gs = _grads(group)
            if not ps:
                continue
            beta1, beta2 = group["betas"]
            if group["weight_decay"] != 0:
                gs = torch._foreach_add(gs, ps, alpha=group["weight_decay"])
            ms, vs, steps = [], [], []
            for p in ps:
                st = self.state[p]
                if "step" not in st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] += 1
                ms.append(st["exp_avg"])
                vs.append(st["exp_avg_sq"])
                steps.append(st["step"])
            torch._foreach_lerp_(ms, gs, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, gs, gs, 1 - beta2)
            lr = group["lr"]
            # PyTorch's order of operations: p + (−lr/bc1)·m / (√v/√bc2 + ε)
            step_sizes = [-lr / (1 - beta1**t) for t in steps]
            denom = torch._foreach_sqrt(vs)
            torch._foreach_div_(denom, [(1 - beta2**t) ** 0.5 for t in steps])
            torch._foreach_add_(denom, group["eps"])
            if isinstance(lr, torch.Tensor):
                upd = [m * s.to(device=m.device, dtype=m.dtype) for m, s in zip(ms, step_sizes)]
            else:
                upd = torch._foreach_mul(ms, step_sizes)
            torch._foreach_div_(upd, denom)
            torch._foreach_add_(ps, upd)
        return loss
