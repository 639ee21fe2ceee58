"""Stochastic sharpness on a minibatch (SALR paper, Algorithm 2).

From θ_k two independent walks of normalized gradient steps of size γ are taken on the minibatch B_k, both
starting at θ_k (θ⁽⁰⁾₊ = θ⁽⁰⁾₋ = θ_k):

    θ⁽ⁱ⁺¹⁾₋ = θ⁽ⁱ⁾₋ − γ · (1/|B|) Σ_j ∇f_j(θ⁽ⁱ⁾₋) / ‖∇f_j(θ⁽ⁱ⁾₋)‖      i = 0 … n_descent − 1   (paper: n₁)
    θ⁽ⁱ⁺¹⁾₊ = θ⁽ⁱ⁾₊ + γ · (1/|B|) Σ_j ∇f_j(θ⁽ⁱ⁾₊) / ‖∇f_j(θ⁽ⁱ⁾₊)‖      i = 0 … n_ascent − 1    (paper: n₂)

    Ŝ_k = (1/|B|) Σ_j f_j(θ₊) − (1/|B|) Σ_j f_j(θ₋)

Each step direction is the mean of the *per-example* gradients, each divided by its own norm (BatchNorm and
dropout in eval mode: per-example gradients are not defined for batch statistics). By default
(``method="auto"``) it is computed without materializing per-example gradients: d = ∇(Σ_j w_j ℓ_j) with
w_j = 1/(|B|‖∇ℓ_j‖), the norms from per-layer "ghost norms" (:mod:`basinscope.sharpness._ghost`); models with
layers it does not cover use ``torch.func.vmap`` over ``torch.func.grad`` (``method="vmap"``).
An example whose gradient is exactly zero contributes zero (its norm is clamped to the smallest normal
number). ``normalize="batch"`` is the cheaper documented variant: one batch
gradient per step, divided by its norm (Definition 1 applied to the minibatch loss).

Two entry points share one implementation:

* :func:`probe_kernel` — the optimizer hot path: plain tensors in, 0-d tensors out, no host synchronization,
  the model's tensors never written (``torch.func.functional_call`` on detached copies).
* :func:`stochastic_probe` — the public estimator on an :class:`~basinscope.objective.Objective`, returning a
  :class:`~basinscope.sharpness.result.SharpnessResult` and counting its gradient calls in ``obj.cost``.

Example:
    >>> import torch, torch.nn.functional as F
    >>> from basinscope.objective import Objective
    >>> model = torch.nn.Linear(3, 2)
    >>> obj = Objective(model, F.cross_entropy, (torch.randn(16, 3), torch.randint(0, 2, (16,))))
    >>> r = stochastic_probe(obj, gamma=0.01, n_descent=5, n_ascent=5)
    >>> r.kind, obj.cost.per_example_gradients
    ('stochastic_probe', 160)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from .. import params as P
from .._checks import check_choice, check_int, check_positive, check_type, fail
from .._state import preserve_modes
from ..objective import Cost, Objective
from ._common import model_modes, select_batch
from ._ghost import ghost_direction, ghost_plan
from .result import SharpnessResult

__all__ = ["ProbeOutput", "probe_kernel", "stochastic_probe"]

NORMALIZE = ("per_example", "batch")
METHODS = ("auto", "ghost", "vmap")


@dataclass
class ProbeOutput:
    """Device tensors of one probe (no host sync): Ŝ, f(θ₊), f(θ₋) and the two end points."""

    value: torch.Tensor
    f_high: torch.Tensor
    f_low: torch.Tensor
    point_high: P.Params
    point_low: P.Params


def _normalized_direction_per_example(
    loss_one: Callable, p: P.Params, x: torch.Tensor, y: torch.Tensor, chunk_size: int | None
) -> P.Params:
    """(1/B) Σ_j g_j/‖g_j‖ with g_j = ∇ℓ_j from one vmapped per-example gradient call."""
    g = torch.func.vmap(torch.func.grad(loss_one), in_dims=(None, 0, 0), chunk_size=chunk_size)(p, x, y)
    keys = list(p)
    b = x.shape[0]
    sq = torch.stack([g[k].reshape(b, -1).pow(2).sum(dim=1) for k in keys]).sum(dim=0)
    inv = sq.sqrt().clamp_min(torch.finfo(sq.dtype).tiny).reciprocal().mul_(1.0 / b)
    return {k: torch.tensordot(inv, g[k], dims=1) for k in keys}


def _normalized_direction_batch(loss_batch: Callable, p: P.Params, x: torch.Tensor, y: torch.Tensor) -> P.Params:
    """g/‖g‖ for the minibatch gradient g = ∇((1/B) Σ_j ℓ_j)."""
    g = torch.func.grad(loss_batch)(p, x, y)
    n = P.norm(g)
    return P.scale(g, n.clamp_min(torch.finfo(n.dtype).tiny).reciprocal())


def probe_kernel(
    model: nn.Module | None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    params: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    gamma: float,
    n_descent: int,
    n_ascent: int,
    buffers: Mapping[str, torch.Tensor] | None = None,
    normalize: str = "per_example",
    chunk_size: int | None = None,
    function: Callable[[torch.Tensor], torch.Tensor] | None = None,
    method: str = "auto",
) -> ProbeOutput:
    """Algorithm 2 of the SALR paper on one minibatch ``(x, y)``; device tensors only, no host sync.

    Arguments are not validated (hot path); :func:`stochastic_probe` and the SALR optimizers validate them.
    ``params`` are the trainable parameters θ_k (detached copies are used, nothing is written);
    ``buffers`` default to the model's buffers; the model runs in eval mode and its mode flags are restored.
    With ``function`` (a plain f(θ) of one tensor, ``params`` a one-entry dict) the model is not used.

    ``method`` (per-example normalization only): ``"ghost"`` computes each direction from one forward and one
    activation backward with per-layer ghost norms, d assembled per layer (:mod:`._ghost`); ``"vmap"``
    materializes the per-example gradients with ``torch.func.vmap`` (``chunk_size`` applies); ``"auto"`` uses
    ghost when every layer owning a probed parameter is supported, else vmap. Ghost steps that meet an
    unsupported use at run time (a layer called twice, ...) fall back to vmap for that step.
    """
    keys = list(params)
    p0 = {k: params[k].detach() for k in keys}
    if function is not None:
        name = keys[0]

        def loss_batch(p, xb, yb):
            return function(p[name]).reshape(())

        loss_one = loss_batch
        per_example = False
    else:
        bufs = dict(model.named_buffers()) if buffers is None else dict(buffers)

        def loss_batch(p, xb, yb):
            return loss_fn(functional_call(model, {**bufs, **p}, (xb,)), yb)

        def loss_one(p, xi, yi):
            return loss_fn(functional_call(model, {**bufs, **p}, (xi.unsqueeze(0),)), yi.unsqueeze(0))

        per_example = normalize == "per_example"

    plan = None
    if function is None and per_example and method != "vmap":
        plan = ghost_plan(model, p0)
        if plan is None and method == "ghost":
            fail("method", "'auto' or 'vmap' (the model has layers the ghost norms do not support)", method)

    workspace: dict = {}

    def direction(p):
        if per_example:
            if plan is not None:
                d = ghost_direction(model, loss_fn, bufs, p, x, y, plan, workspace)
                if d is not None:
                    return d
            return _normalized_direction_per_example(loss_one, p, x, y, chunk_size)
        return _normalized_direction_batch(loss_batch, p, x, y)

    with model_modes(model):
        if model is not None:
            model.eval()
        low = p0
        for _ in range(n_descent):
            low = P.axpy(-gamma, direction(low), low)
        high = p0
        for _ in range(n_ascent):
            high = P.axpy(gamma, direction(high), high)
        with torch.no_grad():
            f_high = loss_batch(high, x, y).detach()
            f_low = loss_batch(low, x, y).detach()
    return ProbeOutput(f_high - f_low, f_high, f_low, high, low)


def check_probe_steps(n_descent: int, n_ascent: int) -> tuple[int, int]:
    """Validate the probe's step counts (ints >= 0, at least one step); shared with the released SALR rule."""
    n_descent = check_int("n_descent", n_descent, minimum=0)
    n_ascent = check_int("n_ascent", n_ascent, minimum=0)
    if n_descent + n_ascent == 0:
        fail("n_descent + n_ascent", "at least one step", 0)
    return n_descent, n_ascent


def check_probe_settings(gamma: float, n_descent: int, n_ascent: int, normalize: str) -> tuple[float, int, int, str]:
    """Validate the probe's hyperparameters (shared with the SALR optimizers)."""
    gamma = check_positive("gamma", gamma)
    n_descent, n_ascent = check_probe_steps(n_descent, n_ascent)
    normalize = check_choice("normalize", normalize, NORMALIZE)
    return gamma, n_descent, n_ascent, normalize


def _check_finite_probe(f0: float, f_low: float, f_high: float, n_descent: int, n_ascent: int) -> None:
    """Raise, naming the point, when a loss of the probe is NaN/inf (the values are on the host already)."""
    where = [
        (f0, "at θ_k"),
        (f_low, f"at θ₋, after {n_descent} normalized descent steps"),
        (f_high, f"at θ₊, after {n_ascent} normalized ascent steps"),
    ]
    for value, point in where:
        if not math.isfinite(value):
            fail(
                "stochastic_probe",
                "a finite minibatch loss",
                f"{value} {point} (the loss or the model produce NaN/inf there; a smaller gamma keeps the walk "
                "closer to θ_k)",
                raw=True,
            )


def stochastic_probe(
    obj: Objective,
    gamma: float,
    n_descent: int,
    n_ascent: int,
    *,
    batch: int | tuple[torch.Tensor, torch.Tensor] = 0,
    params: Mapping[str, torch.Tensor] | None = None,
    normalize: str = "per_example",
    chunk_size: int | None = None,
    keep_points: bool = True,
    method: str = "auto",
) -> SharpnessResult:
    """Stochastic sharpness Ŝ of the SALR paper (Algorithm 2) on one minibatch of ``obj``.

    Args:
        obj: the objective (model, loss, data) or a function objective.
        gamma: step size γ of every normalized step (> 0).
        n_descent: number of normalized descent steps (n₁ in Algorithm 2).
        n_ascent: number of normalized ascent steps (n₂ in Algorithm 2).
        batch: index into ``obj.batches`` or an ``(inputs, targets)`` pair (the minibatch B_k).
        params: the point θ_k (default: the model's current parameters).
        normalize: ``"per_example"`` (Algorithm 2: mean of per-example gradients each divided by its own
            norm) or ``"batch"`` (cheaper: the batch gradient divided by its norm).
        chunk_size: passed to ``torch.func.vmap`` (bounds memory of the per-example gradients).
        keep_points: store θ₊ and θ₋ in the result.
        method: how per-example normalized directions are computed: ``"ghost"`` (per-layer ghost norms, d assembled
            per layer; ≈ 2.2 batch gradients per step on the toy CNN on CPU; Linear, Conv1d/2d, eval BatchNorm,
            LayerNorm, GroupNorm), ``"vmap"`` (materialized per-example gradients, any model) or ``"auto"``
            (ghost when every parameterized layer is supported, else vmap). Same result to rounding.

    Raises:
        ValueError: when f_B(θ_k), f_B(θ₋) or f_B(θ₊) is NaN/inf; the message names the point (checked on the
            values returned anyway: no extra synchronization).

    Returns:
        ``SharpnessResult(kind="stochastic_probe", value=Ŝ, f0=f_B(θ_k), f_high=f_B(θ₊), f_low=f_B(θ₋), ...)``.
        The model is not touched. Cost: ``per_example_gradients += |B|·(n_descent + n_ascent)``
        (``gradients += n_descent + n_ascent`` with ``normalize="batch"``), 3 forward passes.

    Example:
        >>> from basinscope.objective import Objective
        >>> obj = Objective.from_function(lambda t: 0.5 * t * torch.sin(3 * t) + 1, 1.0)
        >>> round(stochastic_probe(obj, 0.1, 1, 1).value, 4) > 0
        True
    """
    check_type("obj", obj, Objective, "a basinscope.Objective")
    gamma, n_descent, n_ascent, normalize = check_probe_settings(gamma, n_descent, n_ascent, normalize)
    if chunk_size is not None:
        check_int("chunk_size", chunk_size, minimum=1)
    method = check_choice("method", method, METHODS)
    p = obj._resolve(params)
    with obj.track() as t:
        if obj.is_function:
            x = y = torch.zeros(1)
            out = probe_kernel(
                None, None, p, x, y, gamma=gamma, n_descent=n_descent, n_ascent=n_ascent, function=obj._fn
            )
            f0 = obj._fn(p[obj.names[0]].detach()).reshape(())
            obj.cost.gradients += n_descent + n_ascent
            obj.cost.forwards += 3
            obj.cost.samples += 3 + n_descent + n_ascent
        else:
            x, y = select_batch(obj, batch)
            bufs = {k: v.detach() for k, v in obj.model.named_buffers()}
            out = probe_kernel(
                obj.model,
                obj.loss_fn,
                p,
                x,
                y,
                gamma=gamma,
                n_descent=n_descent,
                n_ascent=n_ascent,
                buffers=bufs,
                normalize=normalize,
                chunk_size=chunk_size,
                method=method,
            )
            with preserve_modes(obj.model), torch.no_grad():
                obj.model.eval()
                f0 = obj.loss_fn(functional_call(obj.model, {**bufs, **p}, (x,)), y).detach()
            b = int(x.shape[0])
            steps = n_descent + n_ascent
            if normalize == "per_example":
                obj.cost.per_example_gradients += b * steps
            else:
                obj.cost.gradients += steps
            obj.cost.forwards += 3
            obj.cost.samples += b * (steps + 3)
    value, f0_value, f_high, f_low = float(out.value), float(f0), float(out.f_high), float(out.f_low)
    _check_finite_probe(f0_value, f_low, f_high, n_descent, n_ascent)
    cost: Cost = t.cost
    return SharpnessResult(
        kind="stochastic_probe",
        value=value,
        f0=f0_value,
        f_high=f_high,
        f_low=f_low,
        point_high=P.clone(out.point_high) if keep_points else None,
        point_low=P.clone(out.point_low) if keep_points else None,
        settings={
            "gamma": gamma,
            "n_descent": n_descent,
            "n_ascent": n_ascent,
            "normalize": normalize,
            "method": method,
            "batch_size": 1 if obj.is_function else int(x.shape[0]),
        },
        cost=cost,
    )
