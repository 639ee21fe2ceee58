"""Entropy-SGD (Chaudhari et al., "Entropy-SGD: Biasing gradient descent into wide valleys", ICLR 2017 /
J. Stat. Mech. 2019, Algorithm 1), a baseline of the SALR paper (Table I).

Each outer step runs L steps of stochastic gradient Langevin dynamics (SGLD) on the local-entropy objective
around the current weights x, each on a fresh minibatch (one ``closure()`` call each):

    x′ ← x,  μ ← x
    for l = 1 … L:
        dx′ ← ∇f(x′) − γ·(x − x′)
        x′  ← x′ − η′·dx′ + √η′·ε·N(0, I)
        μ   ← (1 − α)·μ + α·x′
    x ← x − η·(x − μ)

and then scopes the coupling, γ ← γ·(1 + γ₁) ("increased by a factor of 1.001 after each parameter update",
SALR paper §VI-A). The current γ lives in ``param_groups[i]["gamma"]`` and is saved by ``state_dict()``.
One outer step costs L gradient calls. The noise is drawn from PyTorch's global generator of the parameters'
device (``torch.manual_seed`` makes runs repeatable). The outer learning rate η may be a 0-d tensor (SALR).

Defaults follow the SALR paper's setting (§VI-A): L = 5, η = 1, η′ = 0.1, ε = 1e-4, γ₀ = 0.03, γ₁ = 1e-3, and
α = 0.75 from Chaudhari et al.

Example:
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
    >>> opt = EntropySGD(model.parameters(), lr=1.0, langevin_steps=2)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = torch.nn.functional.mse_loss(model(x), y)
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> round(opt.param_groups[0]["gamma"], 5)
    0.03003
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer

from .._checks import check_int, check_positive, fail
from .tensor_lr import check_lr

__all__ = ["EntropySGD"]


class EntropySGD(Optimizer):
    """Entropy-SGD with γ scoping (Chaudhari et al. 2017, Algorithm 1).

    Args:
        params: parameters or parameter groups.
        lr: outer learning rate η (number or 0-d tensor).
        langevin_steps: L, SGLD steps (= gradient calls) per outer step.
        langevin_lr: η′, SGLD step size.
        noise: ε, scale of the SGLD noise.
        gamma: γ₀, initial coupling ("scope").
        scoping: γ₁; after every outer step γ ← γ·(1 + γ₁).
        alpha: α, weight of the exponential average μ of the SGLD iterates.
        weight_decay: L2 penalty added to the SGLD gradients.
    """

    supports_tensor_lr = True

    def __init__(
        self,
        params: Iterable,
        lr: float | torch.Tensor = 1.0,
        *,
        langevin_steps: int = 5,
        langevin_lr: float = 0.1,
        noise: float = 1e-4,
        gamma: float = 0.03,
        scoping: float = 1e-3,
        alpha: float = 0.75,
        weight_decay: float = 0.0,
    ) -> None:
        lr = check_lr(lr)
        check_int("langevin_steps", langevin_steps, minimum=1)
        check_positive("langevin_lr", langevin_lr)
        check_positive("noise", noise, allow_zero=True)
        check_positive("gamma", gamma)
        check_positive("scoping", scoping, allow_zero=True)
        check_positive("alpha", alpha)
        if alpha > 1:
            fail("alpha", "a number in (0, 1]", alpha)
        check_positive("weight_decay", weight_decay, allow_zero=True)
        defaults = dict(
            lr=lr,
            langevin_steps=langevin_steps,
            langevin_lr=float(langevin_lr),
            noise=float(noise),
            gamma=float(gamma),
            scoping=float(scoping),
            alpha=float(alpha),
            weight_decay=float(weight_decay),
        )
        super().__init__(params, defaults)

    @property
    def gradient_calls_per_step(self) -> int:
        return max(g["langevin_steps"] for g in self.param_groups)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):  # type: ignore[override]
        """One outer step; ``closure`` (required) zeroes the gradients, computes the loss on a fresh
        minibatch and calls ``backward()``. Returns the loss of the first SGLD step (at x)."""
        if closure is None:
            fail("closure", "a callable computing the loss and its gradients (Entropy-SGD needs L of them)", None)
        groups = [g for g in self.param_groups if g["params"]]
        xs = [[p.detach().clone() for p in g["params"]] for g in groups]
        mus = [[x.clone() for x in gx] for gx in xs]
        first_loss = None
        for l in range(self.gradient_calls_per_step):
            with torch.enable_grad():
                loss = closure()
            if first_loss is None:
                first_loss = loss
            for g, gx, gmu in zip(groups, xs, mus):
                if l >= g["langevin_steps"]:
                    continue
                ps = g["params"]
                gs = [torch.zeros_like(p) if p.grad is None else p.grad for p in ps]
                if g["weight_decay"] != 0:
                    gs = torch._foreach_add(gs, ps, alpha=g["weight_decay"])
                # dx' = ∇f(x') + γ (x' − x)
                dx = torch._foreach_sub(ps, gx)
                torch._foreach_mul_(dx, g["gamma"])
                torch._foreach_add_(dx, gs)
                torch._foreach_add_(ps, dx, alpha=-g["langevin_lr"])
                if g["noise"] > 0:
                    eta = [torch.randn_like(p) for p in ps]
                    torch._foreach_add_(ps, eta, alpha=g["langevin_lr"] ** 0.5 * g["noise"])
                torch._foreach_lerp_(gmu, [p.detach() for p in ps], g["alpha"])
        for g, gx, gmu in zip(groups, xs, mus):
            ps = g["params"]
            # x ← x − η (x − μ)
            diff = torch._foreach_sub(gx, gmu)
            lr = g["lr"]
            if isinstance(lr, torch.Tensor):
                torch._foreach_mul_(diff, lr.to(device=diff[0].device, dtype=diff[0].dtype))
                torch._foreach_sub_(gx, diff)
            else:
                torch._foreach_add_(gx, diff, alpha=-lr)
            torch._foreach_copy_(ps, gx)
            g["gamma"] = g["gamma"] * (1.0 + g["scoping"])
        return first_loss
