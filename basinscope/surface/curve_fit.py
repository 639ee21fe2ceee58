"""Mode-connecting curves between two solutions (Garipov, Izmailov, Podoprikhin, Vetrov, Wilson, "Loss Surfaces,
Mode Connectivity, and Fast Ensembling of DNNs", NeurIPS 2018, §3).

A curve φ_θ: [0, 1] → weight space with fixed end points w₁ = φ(0), w₂ = φ(1) and one trainable bend θ:

    Bézier (quadratic):  φ_θ(t) = (1 − t)²·w₁ + 2t(1 − t)·θ + t²·w₂
    polygonal chain:     φ_θ(t) = 2(t·θ + (0.5 − t)·w₁)           for 0 ≤ t ≤ 0.5
                         φ_θ(t) = 2((t − 0.5)·w₂ + (1 − t)·θ)     for 0.5 ≤ t ≤ 1

Both are affine in (w₁, θ, w₂) with coefficients (c₁(t), c_θ(t), c₂(t)) summing to 1 (:func:`curve_coefficients`).
The bend minimizes the loss averaged over the curve, ℓ(θ) = E_{t ~ U(0,1)} L(φ_θ(t)) (Garipov et al. eq. 4), by
stochastic gradient steps that draw one t and one minibatch per step. Since ∂φ_θ(t)/∂θ = c_θ(t)·I,

    ∇_θ L(φ_θ(t)) = c_θ(t)·∇_w L(w) at w = φ_θ(t),

so a step is one forward/backward pass at the point φ_θ(t) and a scaling (foreach ops, no host syncs).

Settings follow the authors' code: the bend starts at the midpoint (w₁ + w₂)/2; SGD with momentum 0.9; the
learning rate is constant for the first half of the steps, decreases linearly to 1 % of it until 90 %, and stays
there (the same schedule as the SWA reference code; the authors step it per epoch, here per step); weight decay is
their L2 penalty on the point, ½·wd·‖φ_θ(t)‖², whose gradient with respect to θ is c_θ(t)·wd·φ_θ(t). Forward
passes run in train mode (BatchNorm batch statistics, dropout) on private copies of the buffers: the model is
never written. The BatchNorm statistics at each evaluated t are recomputed afterwards
(:func:`~basinscope.surface.curve.curve`).

Resumable: with ``checkpoint=FILE`` the bend, the optimizer state, the global RNG state (dropout) and the loss
history are written every ``checkpoint_every`` steps (atomically); the t's and the minibatch order are functions of
``seed`` alone: t_k is the k-th entry of ``torch.rand(steps, generator=torch.Generator().manual_seed(seed),
dtype=torch.float64)``, and epoch e visits the data in the order ``torch.randperm(n, generator=...manual_seed(seed ·
1000003 + e))`` (drawn on the CPU, so the same on every device). Called again with the same arguments the fit
continues from the file and ends with the bit-identical bend of an uninterrupted run; a file written with other
arguments is refused.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from .. import params as P
from .._checks import check_choice, check_int, check_positive, check_type, fail
from .._digest import fingerprint
from .._state import preserve_state
from ..objective import Cost, Objective
from ..optim.schedules import pre_swa_lr
from ..results import Result, atomic_write_bytes
from .points import prepare_points

__all__ = ["CURVE_KINDS", "CurveFit", "curve_coefficients", "curve_point", "fit_curve"]

CURVE_KINDS = ("bezier", "polychain")
_FORMAT = "basinscope.curve.fit/1"


def curve_coefficients(kind: str, t: float) -> tuple[float, float, float]:
    """(c₁, c_θ, c₂) with φ_θ(t) = c₁·w₁ + c_θ·θ + c₂·w₂ for ``kind`` ``"bezier"`` or ``"polychain"``.

    Example:
        >>> curve_coefficients("bezier", 0.5)
        (0.25, 0.5, 0.25)
        >>> curve_coefficients("polychain", 0.75)
        (0.0, 0.5, 0.5)
    """
    check_choice("kind", kind, CURVE_KINDS)
    t = float(t)
    if not 0.0 <= t <= 1.0:
        fail("t", "a number in [0, 1]", t)
    if kind == "bezier":
        return ((1.0 - t) ** 2, 2.0 * t * (1.0 - t), t * t)
    if t <= 0.5:
        return (1.0 - 2.0 * t, 2.0 * t, 0.0)
    return (0.0, 2.0 - 2.0 * t, 2.0 * t - 1.0)


def curve_point(
    kind: str,
    t: float,
    start: Mapping[str, torch.Tensor],
    bend: Mapping[str, torch.Tensor],
    end: Mapping[str, torch.Tensor],
) -> P.Params:
    """φ_θ(t) as a weight dict (``start`` = w₁, ``bend`` = θ, ``end`` = w₂)."""
    c1, cb, c2 = curve_coefficients(kind, t)
    return {k: c1 * start[k] + cb * bend[k] + c2 * end[k] for k in start}


@dataclasses.dataclass(frozen=True)
class CurveFit(Result):
    """A fitted curve: its bend and how it was trained.

    Attributes:
        kind: ``"bezier"`` or ``"polychain"``.
        bend: the trained bend θ (weights keyed like the objective's parameters).
        losses: the minibatch loss L(φ_θ(t_k)) at each step k (before the step).
        ts: the t_k drawn at each step.
        lrs: the learning rate of each step.
        settings: the arguments (JSON-ready).
        cost: gradients (one per step) and samples spent; seconds of this call (a resumed fit counts only its
            own part).
    """

    kind: str
    bend: P.Params
    losses: np.ndarray
    ts: np.ndarray
    lrs: np.ndarray
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)


def _training_data(obj: Objective) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*obj.batches)
    return torch.cat(xs), torch.cat(ys)


def _epoch_order(seed: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The minibatch order of one epoch: a function of (seed, epoch) alone, so a resumed fit needs no RNG state."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g)
    if device.type == "cuda":  # a pageable host-to-device copy would wait for the device: pin it, copy async
        return order.pin_memory().to(device, non_blocking=True)
    return order.to(device)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    out = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def _set_rng_state(state: Mapping[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def fit_curve(
    obj: Objective,
    start: Mapping[str, torch.Tensor],
    end: Mapping[str, torch.Tensor],
    *,
    kind: str = "bezier",
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    init_bend: Mapping[str, torch.Tensor] | None = None,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 200,
    progress: bool = True,
) -> CurveFit:
    """Train the bend θ of a curve from ``start`` (w₁) to ``end`` (w₂) on ``obj``'s data (module docstring).

    Args:
        obj: the training objective; its model, loss and data (all its batches, concatenated and redrawn in
            minibatches of ``batch_size``) define L.
        start, end: the end points (weight dicts keyed like ``obj.names``; fixed).
        kind: ``"bezier"`` (quadratic Bézier curve) or ``"polychain"`` (two segments through θ).
        steps: SGD steps, each at one t ~ U(0, 1) and one minibatch.
        batch_size: minibatch size.
        lr: initial learning rate (decays to 1 % of it, see the module docstring).
        momentum: SGD momentum.
        weight_decay: L2 penalty ½·wd·‖φ_θ(t)‖² on the point (Garipov et al.'s regularizer).
        init_bend: the starting bend (default: the midpoint (w₁ + w₂)/2).
        seed: seeds the t's, the minibatch order and dropout.
        checkpoint: a file for the fit's state (resumable, see the module docstring).
        checkpoint_every: steps between writes of ``checkpoint``.
        progress: show a progress bar.

    Returns:
        :class:`CurveFit`.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope import Objective
        >>> _ = torch.manual_seed(0)
        >>> obj = Objective(torch.nn.Linear(3, 2), F.cross_entropy, (torch.randn(32, 3), torch.randint(0, 2, (32,))))
        >>> a = obj.point(); b = {k: v + 1.0 for k, v in a.items()}
        >>> fit = fit_curve(obj, a, b, steps=5, batch_size=8, progress=False)
        >>> fit.losses.shape, sorted(fit.bend) == sorted(a)
        ((5,), True)
    """
    check_type("obj", obj, Objective, "an Objective")
    if obj.is_function:
        fail("obj", "an Objective built from a model and data", "a function objective", raw=True)
    kind = check_choice("kind", kind, CURVE_KINDS)
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_positive("lr", lr)
    momentum = check_positive("momentum", momentum, allow_zero=True)
    if momentum >= 1.0:
        fail("momentum", "a number in [0, 1)", momentum)
    weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
    seed = check_int("seed", seed, minimum=0)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    w1, w2 = prepare_points(obj, [("start", start), ("end", end)])
    if init_bend is None:
        bend0 = {k: 0.5 * (w1[k] + w2[k]) for k in w1}
    else:
        (bend0,) = prepare_points(obj, [("init_bend", init_bend)])
    x, y = _training_data(obj)
    n = int(x.shape[0])
    batch_size = min(batch_size, n)
    per_epoch = -(-n // batch_size)
    settings = {
        "kind": kind,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "lr_final": 0.01 * lr,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "seed": seed,
        "init": "midpoint" if init_bend is None else "given",
        "schedule": "constant to 50 %, linear to 1 % at 90 %, constant (per step)",
    }
    # the t of every step: a function of the seed alone (drawn on the CPU in float64)
    t_all = torch.rand(steps, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()
    lr_all = np.array([pre_swa_lr(k, steps, high=lr, low=0.01 * lr) for k in range(steps)])

    keys = obj.names
    bend = [bend0[k].clone() for k in keys]
    opt = torch.optim.SGD(bend, lr=lr, momentum=momentum, foreach=True)
    first = 0
    losses: list[torch.Tensor] = []
    fp = None
    if checkpoint is not None:
        fp = fingerprint(
            format=_FORMAT,
            start=w1,
            end=w2,
            init=bend0,
            settings=settings,
            x=x,
            y=y,
            loss_fn=getattr(obj.loss_fn, "__qualname__", type(obj.loss_fn).__qualname__),
            buffers=dict(obj.model.named_buffers()),
        )
    state = _load(checkpoint, fp) if checkpoint is not None else None
    with preserve_state(obj.model), torch.random.fork_rng(devices=[obj.device] if obj.device.type == "cuda" else []):
        torch.manual_seed(seed)
        if state is not None:
            with torch.no_grad():
                torch._foreach_copy_(bend, [state["bend"][k].to(obj.device) for k in keys])
            opt.load_state_dict(state["optimizer"])
            _set_rng_state(state["rng"], obj.device)
            first = int(state["step"])
            losses = list(state["losses"].to(obj.device).unbind()) if first else []
        w1v, w2v = [w1[k] for k in keys], [w2[k] for k in keys]
        point = [b.detach().clone().requires_grad_(True) for b in bend]
        scratch = {k: v.detach().clone() for k, v in obj.model.named_buffers()}
        bar = None
        if progress and first < steps:
            from .._progress import progress as progress_bar

            bar = progress_bar(total=steps, initial=first, desc=f"curve: fit {kind}", unit="step")
        start_cost = obj.cost.copy()
        t0 = time.perf_counter()
        obj.model.train()
        order = _epoch_order(seed, first // per_epoch, n, obj.device) if first < steps else None
        try:
            for k in range(first, steps):
                epoch, pos = divmod(k, per_epoch)
                if pos == 0 and k != first:
                    order = _epoch_order(seed, epoch, n, obj.device)
                idx = order[pos * batch_size : (pos + 1) * batch_size]
                c1, cb, c2 = curve_coefficients(kind, float(t_all[k]))
                with torch.no_grad():
                    torch._foreach_zero_(point)
                    for coef, vals in ((c1, w1v), (cb, bend), (c2, w2v)):
                        if coef != 0.0:
                            torch._foreach_add_(point, vals, alpha=coef)
                out = functional_call(obj.model, {**scratch, **dict(zip(keys, point))}, (x[idx],))
                loss = obj.loss_fn(out, y[idx])
                grads = list(torch.autograd.grad(loss, point, allow_unused=True))
                grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, point)]
                with torch.no_grad():
                    if weight_decay:
                        torch._foreach_add_(grads, point, alpha=weight_decay)
                    torch._foreach_mul_(grads, cb)
                    for b, g in zip(bend, grads):
                        b.grad = g
                    opt.param_groups[0]["lr"] = float(lr_all[k])
                    opt.step()
                losses.append(loss.detach())
                obj.cost.gradients += 1
                obj.cost.forwards += 1
                obj.cost.samples += int(idx.shape[0])
                if bar is not None:
                    bar.update(1)
                if checkpoint is not None and ((k + 1) % checkpoint_every == 0 or k + 1 == steps):
                    _save(checkpoint, fp, k + 1, keys, bend, opt, obj.device, losses)
        finally:
            if bar is not None:
                bar.close()
            for b in bend:
                b.grad = None
    cost = obj.cost - start_cost
    cost.seconds = time.perf_counter() - t0
    loss_arr = torch.stack(losses).to(torch.float64).cpu().numpy() if losses else np.zeros(0)
    return CurveFit(
        kind=kind,
        bend={k: b.detach().clone() for k, b in zip(keys, bend)},
        losses=loss_arr,
        ts=t_all,
        lrs=lr_all,
        settings=settings,
        cost=cost,
    )


def _save(path: Any, fp: str, step: int, keys: list[str], bend: list[torch.Tensor], opt: Any, device, losses) -> None:
    buf = io.BytesIO()
    torch.save(
        {
            "format": _FORMAT,
            "fingerprint": fp,
            "step": step,
            "bend": {k: b.detach().cpu() for k, b in zip(keys, bend)},
            "optimizer": opt.state_dict(),
            "rng": _rng_state(device),
            "losses": torch.stack(losses).detach().cpu(),
        },
        buf,
    )
    atomic_write_bytes(path, buf.getvalue())


def _load(path: Any, fp: str) -> dict[str, Any] | None:
    from ..checkpoint import load_weights_only

    if not isinstance(path, (str, os.PathLike)):
        fail("checkpoint", "a file path (str or os.PathLike) or None", path, exc=TypeError)
    if not os.path.exists(path):
        return None
    state = load_weights_only(path, what="checkpoint")
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        fail("checkpoint", f"a curve-fit checkpoint ({_FORMAT})", f"another file at {path}", raw=True)
    if state.get("fingerprint") != fp:
        fail(
            "checkpoint",
            "a curve-fit checkpoint made with the same end points, data and settings",
            f"one made with different arguments at {path}; use a new file",
            raw=True,
        )
    return state
