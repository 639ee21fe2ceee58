"""Sharpness-Aware Minimization (Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for
Efficiently Improving Generalization", ICLR 2021, Algorithm 1; adaptive variant: Kwon et al., "ASAM", ICML
2021), a baseline of the SALR paper (Table I).

One step takes two gradient passes through the closure:

    g  = ∇f(w)                                   (first pass)
    ε̂  = ρ · T_w² g / ‖T_w g‖                     T_w = I (SAM) or diag(|w|) (adaptive)
    g′ = ∇f(w + ε̂)                               (second pass)
    w ← base_optimizer_step(w, g′)

The norm stays a device tensor (no host sync). The closure zeroes nothing: :class:`SAM` zeroes the gradients
before each pass, so the closure only computes the loss and calls ``backward()``.

Example:
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
    >>> opt = SAM(model.parameters(), lr=0.1, rho=0.05)
    >>> def closure():
    ...     loss = torch.nn.functional.mse_loss(model(x), y)
    ...     loss.backward()
    ...     return loss
    >>> loss = opt.step(closure)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer

from .._checks import check_positive, check_type, fail
from .tensor_lr import SGD

__all__ = ["SAM"]


class SAM(Optimizer):
    """SAM around a base optimizer (default: this package's :class:`~basinscope.optim.tensor_lr.SGD`).

    Args:
        params: parameters or parameter groups.
        base_optimizer: optimizer class built on the same parameter groups, given ``**kwargs``.
        rho: ρ, radius of the ascent step (> 0).
        adaptive: ASAM's scale-invariant ascent step, T_w = diag(|w|).
        eps: added to ‖T_w g‖ (guards a zero gradient).
        **kwargs: the base optimizer's hyperparameters (``lr``, ``momentum``, …).
    """

    def __init__(
        self,
        params: Iterable,
        base_optimizer: type[Optimizer] = SGD,
        *,
        rho: float = 0.05,
        adaptive: bool = False,
        eps: float = 1e-12,
        **kwargs,
    ) -> None:
        check_positive("rho", rho)
        check_type("adaptive", adaptive, bool)
        check_positive("eps", eps, allow_zero=True)
        if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, Optimizer)):
            fail("base_optimizer", "a torch.optim.Optimizer subclass", base_optimizer, exc=TypeError)
        super().__init__(params, dict(rho=float(rho), adaptive=adaptive, eps=float(eps), **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @property
    def supports_tensor_lr(self) -> bool:
        return bool(getattr(self.base_optimizer, "supports_tensor_lr", False))

    gradient_calls_per_step = 2

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):  # type: ignore[override]
        """Both passes; returns the loss of the first pass (at w)."""
        if closure is None:
            fail("closure", "a callable computing the loss and calling backward() (SAM needs two passes)", None)
        self.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = closure()
        # the norm ‖T_w g‖ is taken over all groups together
        parts = []
        for group in self.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            gs = [p.grad for p in ps]
            if ps and group["adaptive"]:
                absw = torch._foreach_abs(ps)
                tg = torch._foreach_mul(gs, absw)
                parts.append((group, ps, tg, torch._foreach_mul(tg, absw)))  # T_w g and T_w² g
            else:
                parts.append((group, ps, gs, gs))
        norms = [n for _, ps, tg, _ in parts if ps for n in torch._foreach_norm(tg)]
        if not norms:
            fail("closure", "a backward() that produces gradients", "no gradients", raw=True)
        norm = torch.linalg.vector_norm(torch.stack(norms))
        perturbations = []
        for group, ps, _, scale_vec in parts:
            if not ps:
                continue
            e = torch._foreach_mul(scale_vec, group["rho"] / (norm + group["eps"]))
            perturbations.append((ps, [p.detach().clone() for p in ps]))  # restored exactly, not w + ε̂ − ε̂
            torch._foreach_add_(ps, e)
        self.zero_grad(set_to_none=True)
        with torch.enable_grad():
            closure()
        for ps, saved in perturbations:
            torch._foreach_copy_(ps, saved)
        self.base_optimizer.step()
        return loss

    def state_dict(self):
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict):
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
