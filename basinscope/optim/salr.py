"""SALR: sharpness-aware learning rates (Yue, Nouiehed, Al Kontar, SALR paper, Algorithms 1–4).

Every ``c`` iterations (k mod c = 0) the stochastic sharpness Ŝ_k of the current minibatch is measured with
Algorithm 2 (:func:`basinscope.sharpness.stochastic.probe_kernel`: ``n_descent`` and ``n_ascent`` normalized
steps of size γ from θ_k), and the learning rate of every parameter group becomes

    η_k = η₀ · Ŝ_k / median(Ŝ_1, …, Ŝ_k)                                   (Algorithm 1, line 6)

where η₀ is the group's rate when the optimizer was wrapped. Between measurements the rate is held (Algorithm
3: the set of Ŝ does not change). The median rule and its guards are :class:`~basinscope.optim.salr_rule.SALRRule`
(a non-finite Ŝ is skipped and resets the rate to η₀; median ≤ 0 gives η₀; the ratio is clamped to
``[min_ratio, max_ratio]``, default [0, ∞), so the step is never reversed; a finite ``max_ratio`` bounds
η_k ≤ max_ratio·η₀, which early in a run — when the median rests on a few values — keeps one large Ŝ_k from
producing a diverging step).

* :class:`SALR` wraps any optimizer with ``step(closure)`` and ``param_groups``. Optimizers that declare
  ``supports_tensor_lr = True`` (this package's SGD, Adam, Entropy-SGD) receive η_k as a 0-d device tensor: no
  host synchronization. Others receive a Python float (one sync every ``c`` steps).
* :class:`SGDSALR` (Algorithm 3), :class:`AdamSALR` (Algorithm 4 with the standard bias correction
  m̂_{k+1} = m_{k+1}/(1 − β₁^{k+1}); the printed m_k is a slip) and :class:`EntropySGDSALR` (Table I) are
  ready made.

Two update rules (``variant=``; details in :mod:`.salr_variants` and docs/optimizers.md, "SALR as released"):

* ``"paper"`` (default) — the above: Algorithm 2 as printed, measured before the step, the model not moved.
* ``"released"`` — the rule of the authors' released training script (``CIFAR10/main.py`` of their public
  code): the step first at the current rate; then on the same minibatch, at the new weights, 5 ascent and 5
  descent steps (the descent from the ascent's end) that each move every coordinate by clamp(1e-3·G, ±5e-4),
  G the plain minibatch gradient summed over the walk's steps so far; Ŝ = (f(θ⁺) − f(θ)) + (f(θ⁺) − f(θ⁺⁻));
  the next step's rate η₀·Ŝ/P50(Ŝ) when Ŝ lies outside the 49th–51st percentile band, else η₀, capped at
  5·η₀ with no lower bound; training continues from θ⁺⁻. Confirmed by running the script's own functions
  on a small BatchNorm + dropout network (float64): one probe's steps equal clamp(1e-3·running sum, ±5e-4) to
  1.1e-16; the descent's sum restarts (the script zeroes the gradients between the walks; a continued sum
  ends 1.4e-3 away from the script's end point, a restarted one at 0.0); the stale gradients of the SGD step
  and of the loss evaluation at θ are zeroed before the first walk step; the model is left in eval mode; and
  three epochs of this class with ``probe_eval_mode=True`` end 2.8e-17 from the script's weights (rates and
  Ŝ equal to 8 digits). The script counts the probe schedule by the batch index within each epoch; here
  ``iteration % c`` over the run (the same when an epoch has an even number of batches).

``restore_walk`` (``None``: the variant's own — ``"paper"`` restores, ``"released"`` does not) decides whether
training continues from the walk's end point (θ₋ of Algorithm 2 for ``"paper"``, θ⁺⁻ for ``"released"``).
``probe_eval_mode=True`` reproduces the script's side effect: the probe puts the model in eval mode and leaves
it there (BatchNorm running statistics, dropout off) until the caller's next ``model.train()`` — the runner
calls it at every epoch start, as the script does; default ``False``: the mode is restored after each probe.

Cost: a measuring step spends ``n_descent + n_ascent`` extra gradient calls (each a per-example gradient pass
over the minibatch), counted in ``probe_gradient_calls``; with c = 2 and n₁ = n₂ = 5 that is (n₁+n₂)/c = 5
extra gradient calls per iteration, as in the paper's equal-budget comparison (§VI).

Example:
    >>> import torch.nn.functional as F
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    >>> opt = SGDSALR(model, F.cross_entropy, lr=0.1, c=2, gamma=0.01)
    >>> for _ in range(3):
    ...     def closure():
    ...         opt.zero_grad()
    ...         loss = F.cross_entropy(model(x), y)
    ...         loss.backward()
    ...         return loss
    ...     _ = opt.step(closure, batch=(x, y))
    >>> opt.iteration, opt.probe_gradient_calls
    (3, 20)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_type, fail
from ..sharpness.clamped_walk import clamped_walk_kernel
from ..sharpness.stochastic import probe_kernel
from .ddp import is_ddp, mean_over_ranks, unwrap
from .entropy_sgd import EntropySGD
from .salr_rule import SALRRule
from .salr_variants import resolve_salr_options
from .tensor_lr import SGD, Adam

__all__ = ["SALR", "SGDSALR", "AdamSALR", "EntropySGDSALR"]


class SALR:
    """Sharpness-aware learning rate around any optimizer (SALR paper, Algorithm 1).

    Args:
        optimizer: the base optimizer (its groups' current ``lr`` are the base rates η₀).
        model: the network whose sharpness is probed (its trainable parameters, in eval mode for the probe).
            May be ``None`` when every measuring ``step`` receives ``sharpness=``.
        loss_fn: ``loss_fn(outputs, targets)``, mean over the batch.
        c: measure every ``c`` iterations (frequency c of Algorithm 3; the released script: 2).
        variant: ``"paper"`` (Algorithms 1–2 as printed) or ``"released"`` (the authors' script; module
            docstring). Options of the other variant must stay ``None``; ``None`` means the variant's default.
        gamma: ``"paper"``: γ, step of the normalized probe steps (default 0.005, within Table VII's range).
        n_descent: n₁, descent steps (``"released"``: from the ascent's end point).
        n_ascent: n₂, ascent steps.
        normalize: ``"paper"``: ``"per_example"`` (Algorithm 2, default) or ``"batch"`` (batch gradient normalized).
        chunk_size: ``"paper"``: ``torch.func.vmap`` chunk size for the per-example gradients.
        walk_lr: ``"released"``: α of the walk steps clamp(α·G, ±walk_clamp) (default 1e-3).
        walk_clamp: ``"released"``: per-coordinate bound of one walk step (default 5e-4; ``inf``: no clamp).
        band: ``"released"``: percentiles (low, high) inside which the rate stays η₀ (default (49, 51)).
        min_ratio, max_ratio: clamp of the ratio η_k/η₀ (``"paper"``: [0, inf); ``"released"``: [-inf, 5], the
            script has no lower bound, so a negative Ŝ gives a negative rate; pass ``min_ratio=0`` to forbid it).
        restore_walk: continue training from the walk's start (True) or its end (False); ``None``: the
            variant's own (``"paper"`` True, ``"released"`` False).
        probe_eval_mode: leave the model in eval mode after each probe (the released script's side effect;
            the runner puts it back in train mode at every epoch start). Default False: the mode is restored.
        distributed: replace each Ŝ_k (measured or given) by its sample-weighted mean over the ranks of the default
            process group (:meth:`reduce_sharpness`), so every rank uses the same rate. ``None`` (default):
            when ``model`` is wrapped in ``DistributedDataParallel`` (:mod:`basinscope.optim.ddp`). Needs
            ``restore_walk=True`` (each rank walks on its own part of the minibatch, so the walks end apart).

    The per-step path has no host synchronization with a tensor-rate optimizer (this package's SGD/Adam), in
    both variants: the walk, Ŝ, the percentiles (``torch.nanquantile`` on the device) and the rate stay
    device tensors.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        model: nn.Module | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        *,
        c: int = 2,
        variant: str = "paper",
        gamma: float | None = None,
        n_descent: int = 5,
        n_ascent: int = 5,
        normalize: str | None = None,
        chunk_size: int | None = None,
        walk_lr: float | None = None,
        walk_clamp: float | None = None,
        band: tuple[float, float] | None = None,
        min_ratio: float | None = None,
        max_ratio: float | None = None,
        restore_walk: bool | None = None,
        probe_eval_mode: bool = False,
        distributed: bool | None = None,
    ) -> None:
        if not (hasattr(optimizer, "step") and hasattr(optimizer, "param_groups")):
            fail("optimizer", "a torch optimizer with step(closure) and param_groups", optimizer, exc=TypeError)
        if model is not None:
            check_type("model", model, nn.Module, "a torch.nn.Module")
            if loss_fn is None or not callable(loss_fn):
                fail("loss_fn", "a callable loss_fn(outputs, targets) when a model is given", loss_fn, exc=TypeError)
        self.c = check_int("c", c, minimum=1)
        o = resolve_salr_options(
            variant,
            n_descent=n_descent,
            n_ascent=n_ascent,
            probe_eval_mode=probe_eval_mode,
            gamma=gamma,
            normalize=normalize,
            chunk_size=chunk_size,
            walk_lr=walk_lr,
            walk_clamp=walk_clamp,
            band=band,
            min_ratio=min_ratio,
            max_ratio=max_ratio,
            restore_walk=restore_walk,
        )
        if probe_eval_mode and model is None:
            fail("probe_eval_mode", "False when no model is given (nothing to put in eval mode)", True)
        self.variant: str = o["variant"]
        self.gamma, self.normalize, self.chunk_size = o["gamma"], o["normalize"], o["chunk_size"]
        self.walk_lr, self.walk_clamp, self.band = o["walk_lr"], o["walk_clamp"], o["band"]
        self.n_descent, self.n_ascent = o["n_descent"], o["n_ascent"]
        self.restore_walk: bool = o["restore_walk"]
        self.probe_eval_mode: bool = probe_eval_mode
        self.optimizer = optimizer
        self.distributed = is_ddp(model) if distributed is None else bool(distributed)
        if self.distributed and not self.restore_walk:
            fail(
                "restore_walk",
                "True with distributed=True (each rank walks on its own data, so a walk left in the weights would"
                " set the ranks apart)",
                self.restore_walk,
            )
        self.model = unwrap(model) if model is not None else None  # probes never run DDP's forward
        self.loss_fn = loss_fn
        self.base_lrs: list[float] = []
        for i, g in enumerate(optimizer.param_groups):
            lr = g["lr"]
            if isinstance(lr, torch.Tensor):
                lr = float(lr)
            if not (math.isfinite(lr) and lr >= 0):
                fail(f"optimizer.param_groups[{i}]['lr']", "a finite number >= 0", lr)
            self.base_lrs.append(float(lr))
        device = next((p.device for g in optimizer.param_groups for p in g["params"]), torch.device("cpu"))
        self.rule = SALRRule(min_ratio=o["min_ratio"], max_ratio=o["max_ratio"], band=o["band"], device=device)
        self.iteration = 0
        self.probe_gradient_calls = 0
        self.last_sharpness = torch.full((), float("nan"), dtype=torch.float64, device=device)
        self._step_ratio = self.rule.ratio
        self._tensor_lr = bool(getattr(optimizer, "supports_tensor_lr", False))

    # -- torch.optim.Optimizer look-alike
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @property
    def lr(self) -> torch.Tensor:
        """Current rate of the first group, η₀·ratio, as a 0-d tensor (with ``"released"``: the next step's)."""
        return self.rule.ratio * self.base_lrs[0]

    @property
    def step_lr(self) -> torch.Tensor:
        """The rate of the first group that the last ``step`` used, as a 0-d tensor (before any step: η₀)."""
        return self._step_ratio * self.base_lrs[0]

    @property
    def gradient_calls_per_step(self) -> int:
        return int(getattr(self.optimizer, "gradient_calls_per_step", 1))

    def measures_next(self) -> bool:
        """Whether the next ``step`` measures Ŝ (k mod c = 0)."""
        return self.iteration % self.c == 0

    def _probe(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Ŝ of the variant's probe at the model's weights on ``batch`` and the point the walk ends at
        (θ₋ of Algorithm 2 for ``"paper"``, θ⁺⁻ for ``"released"``); nothing is written."""
        if self.model is None:
            fail("model", "a model to probe (or pass sharpness= to step)", None)
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            fail("batch", "an (inputs, targets) pair for the sharpness probe", batch, exc=TypeError)
        x, y = batch
        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        args = (self.model, self.loss_fn, params, x, y)
        if self.variant == "paper":
            out = probe_kernel(
                *args,
                gamma=self.gamma,
                n_descent=self.n_descent,
                n_ascent=self.n_ascent,
                normalize=self.normalize,
                chunk_size=self.chunk_size,
            )
        else:
            out = clamped_walk_kernel(
                *args,
                walk_lr=self.walk_lr,
                walk_clamp=self.walk_clamp,
                n_ascent=self.n_ascent,
                n_descent=self.n_descent,
            )
        self.probe_gradient_calls += self.n_descent + self.n_ascent
        return out.value, out.point_low

    def measure(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Ŝ of the variant's probe at the model's current weights on ``batch`` (a 0-d device tensor; no sync).
        The model is not changed (weights, mode), whatever ``restore_walk`` and ``probe_eval_mode`` say."""
        return self._probe(batch)[0]

    def _measure_and_set_rate(
        self, batch: tuple[torch.Tensor, torch.Tensor], sharpness: float | torch.Tensor | None
    ) -> None:
        """Record Ŝ (``sharpness`` if given, else the probe on ``batch``, moving the model to the walk's end
        unless ``restore_walk``, then eval mode if ``probe_eval_mode``) and set every group's rate."""
        if sharpness is None:
            s, end = self._probe(batch)
            if not self.restore_walk:
                live = [p for n, p in self.model.named_parameters() if p.requires_grad]
                with torch.no_grad():
                    torch._foreach_copy_(live, list(end.values()))
            if self.probe_eval_mode:
                self.model.eval()
        else:
            s = (
                sharpness
                if isinstance(sharpness, torch.Tensor)
                else torch.tensor(float(sharpness), dtype=torch.float64)
            )
        s = self.reduce_sharpness(s, batch)
        self.last_sharpness = s.detach().to(self.last_sharpness.device, torch.float64).reshape(())
        ratio = self.rule.update(self.last_sharpness)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = ratio * base if self._tensor_lr else float(ratio) * base

    def reduce_sharpness(
        self, sharpness: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        """The Ŝ_k that sets the rate: with ``distributed``, the mean over the ranks weighted by their batch
        sizes (one all-reduce, :func:`basinscope.optim.ddp.mean_over_ranks`); else ``sharpness`` itself."""
        if not self.distributed:
            return sharpness
        weight = int(batch[0].shape[0]) if batch is not None else 1
        return mean_over_ranks(sharpness, weight)

    def step(
        self,
        closure: Callable[[], torch.Tensor] | None = None,
        *,
        batch: tuple[torch.Tensor, torch.Tensor] | None = None,
        sharpness: float | torch.Tensor | None = None,
    ):
        """One iteration. ``"paper"`` (Algorithm 1): on measuring iterations (k mod c = 0) record Ŝ_k
        (``sharpness`` if given, else Algorithm 2 on ``batch``) and set η_k; then ``optimizer.step(closure)``.
        ``"released"``: ``optimizer.step(closure)`` at the current rate first; then, on measuring iterations,
        the clamped walk on ``batch`` at the new weights sets the rate of the *next* step. ``sharpness`` and
        ``batch`` are ignored on the other iterations."""
        measuring = self.measures_next()
        if measuring and sharpness is None and batch is None:  # before anything moves, in both variants
            fail("batch", "the minibatch (inputs, targets) on a measuring iteration (k mod c = 0)", None)
        if self.variant == "paper" and measuring:
            self._measure_and_set_rate(batch, sharpness)
        self._step_ratio = self.rule.ratio
        loss = self.optimizer.step(closure) if closure is not None else self.optimizer.step()
        if self.variant == "released" and measuring:
            self._measure_and_set_rate(batch, sharpness)
        self.iteration += 1
        return loss

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and containers only (loads with ``torch.load(weights_only=True)``)."""
        return {
            "variant": self.variant,
            "optimizer": self.optimizer.state_dict(),
            "rule": self.rule.state_dict(),
            "iteration": self.iteration,
            "probe_gradient_calls": self.probe_gradient_calls,
            "base_lrs": list(self.base_lrs),
            "last_sharpness": self.last_sharpness.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("variant", "paper")  # states written before the variants existed are "paper"
        if saved != self.variant:
            fail("state", f"the state of a variant={self.variant!r} SALR", f"a variant={saved!r} state", raw=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.rule.load_state_dict(state["rule"])
        self.iteration = int(state["iteration"])
        self.probe_gradient_calls = int(state["probe_gradient_calls"])
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        self.last_sharpness = state["last_sharpness"].clone().to(self.last_sharpness.device)
        self._step_ratio = self.rule.ratio


def _trainable(model: nn.Module) -> list[torch.Tensor]:
    check_type("model", model, nn.Module, "a torch.nn.Module")
    return [p for p in model.parameters() if p.requires_grad]


class SGDSALR(SALR):
    """SGD-SALR (SALR paper, Algorithm 3): θ_{k+1} = θ_k − η_k·g_k with η_k = η₀·Ŝ_k/median(Ŝ).

    Args:
        model, loss_fn: the network and its mean loss (probed every ``c`` iterations).
        lr: η₀. momentum, weight_decay: as ``torch.optim.SGD`` (Algorithm 3 uses neither).
        **salr: :class:`SALR` options (``c``, ``variant``, ``gamma``, ``n_descent``, ``n_ascent``, ``restore_walk``,
            ``probe_eval_mode``, …).

    Example (the released script's rule and side effect):
        >>> import torch.nn.functional as F
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
        >>> opt = SGDSALR(model, F.cross_entropy, lr=0.01, variant="released", probe_eval_mode=True)
        >>> x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = F.cross_entropy(model(x), y)
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure, batch=(x, y))
        >>> model.training, opt.probe_gradient_calls, float(opt.step_lr)
        (False, 10, 0.01)
    """

    def __init__(
        self, model: nn.Module, loss_fn: Callable, lr: float = 0.05, *, momentum=0.0, weight_decay=0.0, **salr
    ):
        opt = SGD(_trainable(model), lr=lr, momentum=momentum, weight_decay=weight_decay)
        super().__init__(opt, model, loss_fn, **salr)


class AdamSALR(SALR):
    """Adam-SALR (SALR paper, Algorithm 4, standard bias correction): Adam's step with η_k = η₀·Ŝ_k/median(Ŝ).

    Args:
        model, loss_fn: the network and its mean loss.
        lr: η₀. betas, eps, weight_decay: as ``torch.optim.Adam``.
        **salr: :class:`SALR` options (``variant="released"``: Adam's step under the released script's rate
            rule and walk; the script itself trains with SGD only).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable,
        lr: float = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        **salr,
    ):
        opt = Adam(_trainable(model), lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(opt, model, loss_fn, **salr)


class EntropySGDSALR(SALR):
    """Entropy-SGD-SALR (SALR paper, Table I): Entropy-SGD whose outer rate η follows Algorithm 1.

    Args:
        model, loss_fn: the network and its mean loss.
        lr: η₀ of the outer step.
        entropy: :class:`~basinscope.optim.entropy_sgd.EntropySGD` options (``langevin_steps``, ``gamma``, …).
            Note the two γ: ``entropy={"gamma": ...}`` is Entropy-SGD's coupling, ``gamma=`` the probe step.
        **salr: :class:`SALR` options.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, lr: float = 1.0, *, entropy: dict | None = None, **salr):
        opt = EntropySGD(_trainable(model), lr=lr, **(entropy or {}))
        super().__init__(opt, model, loss_fn, **salr)
