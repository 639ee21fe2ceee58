"""The sharpness probe of the SALR authors' released training script: a clamped walk on a summed gradient.

The SALR paper's Algorithm 2 (:mod:`.stochastic`) takes normalized steps of size γ. The authors' released
CIFAR-10 script (``CIFAR10/main.py``, functions ``get_sharpness_ascent``/``get_sharpness_descent``) measures
instead, on the minibatch B, in eval mode (BatchNorm running statistics, dropout off):

    G_j = Σ_{i≤j} ∇f_B(θ⁺_i),   θ⁺_{j+1} = θ⁺_j + clamp(α·G_j, −c, c)        j = 0 … n_ascent − 1,  θ⁺_0 = θ
    D_j = Σ_{i≤j} ∇f_B(θ⁺⁻_i),  θ⁺⁻_{j+1} = θ⁺⁻_j − clamp(α·D_j, −c, c)      j = 0 … n_descent − 1, θ⁺⁻_0 = θ⁺

    Ŝ = (f_B(θ⁺) − f_B(θ)) + (f_B(θ⁺) − f_B(θ⁺⁻))

with α = ``walk_lr`` (1e-3 there), c = ``walk_clamp`` (5e-4 there) applied per coordinate, no normalization. The
walk's gradient is a running sum because the script zeroes the network's ``.grad`` only before the first step
of each walk; the descent walk starts its sum afresh (the script zeroes the gradients between the walks). The
descent walk starts from the ascent's end point, not from θ. Both facts were confirmed by running the
script's functions on a small BatchNorm + dropout network (see docs/optimizers.md, "SALR as released").

Two entry points share one implementation:

* :func:`clamped_walk_kernel` — the hot path of ``SALR(variant="released")``: device tensors only, no host
  synchronization, the model's tensors never written (``torch.func.functional_call`` on detached copies; the
  optimizer writes the end point into the model itself when the walk is not undone).
* :func:`clamped_walk_probe` — the estimator on an :class:`~basinscope.objective.Objective` (a minibatch of
  it, or a plain function), returning a :class:`~basinscope.sharpness.result.SharpnessResult`.

Example:
    >>> import torch, torch.nn.functional as F
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    >>> params = dict(model.named_parameters())
    >>> out = clamped_walk_kernel(model, F.cross_entropy, params, x, y, walk_lr=1e-3, walk_clamp=5e-4,
    ...                           n_ascent=5, n_descent=5)
    >>> bool(out.f_high >= out.f0)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from .. import params as P
from .._checks import check_int, check_positive, check_type, fail
from .._state import preserve_modes
from ..objective import Cost, Objective, _check_batch
from .result import SharpnessResult

__all__ = ["WalkOutput", "check_walk_settings", "clamped_walk_kernel", "clamped_walk_probe"]


@dataclass
class WalkOutput:
    """Device tensors of one clamped walk (no host sync).

    ``value`` = Ŝ, ``f0`` = f_B(θ), ``f_high`` = f_B(θ⁺) (end of the ascent), ``f_low`` = f_B(θ⁺⁻) (end of the
    descent that starts at θ⁺); ``point_high`` = θ⁺, ``point_low`` = θ⁺⁻.
    """

    value: torch.Tensor
    f0: torch.Tensor
    f_high: torch.Tensor
    f_low: torch.Tensor
    point_high: P.Params
    point_low: P.Params


def check_walk_settings(walk_lr: float, walk_clamp: float) -> tuple[float, float]:
    """Validate α (``walk_lr``, finite > 0) and c (``walk_clamp``, > 0; ``inf`` for no clamp)."""
    walk_lr = check_positive("walk_lr", walk_lr)
    if isinstance(walk_clamp, bool) or not isinstance(walk_clamp, (int, float)):
        fail("walk_clamp", "a number > 0 (inf for no clamp)", walk_clamp, exc=TypeError)
    if math.isnan(walk_clamp) or walk_clamp <= 0:
        fail("walk_clamp", "a number > 0 (inf for no clamp)", walk_clamp)
    return walk_lr, float(walk_clamp)


def clamped_walk_kernel(
    model: nn.Module | None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    params: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    walk_lr: float,
    walk_clamp: float,
    n_ascent: int,
    n_descent: int,
    buffers: Mapping[str, torch.Tensor] | None = None,
    function: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> WalkOutput:
    """The released script's probe on one minibatch ``(x, y)`` (module docstring); no host sync.

    Arguments are not validated (hot path; the SALR optimizers validate them). ``params`` are θ (detached
    copies are used, nothing is written); ``buffers`` default to the model's buffers; the model runs in eval
    mode and its mode flags are restored. With ``function`` (a plain f(θ) of one tensor, ``params`` a one-entry
    dict) the model is not used. Cost: ``n_ascent + n_descent`` batch gradients (each also gives the loss at
    its point, so f_B(θ) and f_B(θ⁺) need no extra forward) and one forward at θ⁺⁻.
    """
    keys = list(params)
    p0 = {k: params[k].detach() for k in keys}
    if function is not None:

        def loss_batch(p: P.Params) -> torch.Tensor:
            return function(p[keys[0]]).reshape(())

    else:
        bufs = dict(model.named_buffers()) if buffers is None else dict(buffers)

        def loss_batch(p: P.Params) -> torch.Tensor:
            return loss_fn(functional_call(model, {**bufs, **p}, (x,)), y)

    grad_and_value = torch.func.grad_and_value(loss_batch)

    def walk(start: P.Params, sign: float, n: int) -> tuple[P.Params, torch.Tensor | None]:
        """``n`` clamped steps of the running gradient sum; also the loss at ``start`` (None when n = 0)."""
        point, total, f_start = start, None, None
        for j in range(n):
            g, f = grad_and_value(point)
            if j == 0:
                f_start = f.detach()
            grads = [g[k] for k in keys]
            total = grads if total is None else torch._foreach_add(total, grads)
            move = torch._foreach_mul(total, walk_lr)
            torch._foreach_clamp_min_(move, -walk_clamp)
            torch._foreach_clamp_max_(move, walk_clamp)
            point = dict(zip(keys, torch._foreach_add([point[k] for k in keys], move, alpha=sign)))
        return point, f_start

    with preserve_modes(model) if model is not None else _no_model():
        if model is not None:
            model.eval()
        high, f0 = walk(p0, 1.0, n_ascent)
        low, f_high = walk(high, -1.0, n_descent)
        with torch.no_grad():
            if f0 is None:
                f0 = loss_batch(p0).detach()
            if f_high is None:
                f_high = loss_batch(high).detach()
            f_low = loss_batch(low).detach() if n_descent > 0 else f_high
    return WalkOutput((f_high - f0) + (f_high - f_low), f0, f_high, f_low, high, low)


class _no_model:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def clamped_walk_probe(
    obj: Objective,
    *,
    walk_lr: float = 1e-3,
    walk_clamp: float = 5e-4,
    n_ascent: int = 5,
    n_descent: int = 5,
    batch: int | tuple[torch.Tensor, torch.Tensor] = 0,
    params: Mapping[str, torch.Tensor] | None = None,
    keep_points: bool = True,
) -> SharpnessResult:
    """Ŝ of the SALR authors' released script (module docstring) on one minibatch of ``obj``.

    Args:
        obj: the objective (model, loss, data) or a function objective.
        walk_lr: α of every step clamp(α·G, ±walk_clamp) (the script: 1e-3).
        walk_clamp: per-coordinate bound of one step (the script: 5e-4; ``inf``: no clamp).
        n_ascent: ascent steps from θ (the script: 5).
        n_descent: descent steps from the ascent's end θ⁺ (the script: 5).
        batch: index into ``obj.batches`` or an ``(inputs, targets)`` pair.
        params: the point θ (default: the model's current parameters).
        keep_points: store θ⁺ and θ⁺⁻ in the result.

    Raises:
        ValueError: on bad settings, or when f(θ), f(θ⁺) or f(θ⁺⁻) is NaN/inf (the message names the point).

    Returns:
        ``SharpnessResult(kind="clamped_walk_probe", value=Ŝ, f0=f_B(θ), f_high=f_B(θ⁺), f_low=f_B(θ⁺⁻), ...)``;
        ``point_low`` is θ⁺⁻, the end of the descent that starts at θ⁺. The model is not touched. Cost:
        ``gradients += n_ascent + n_descent``, one forward.

    Example:
        >>> from basinscope.objective import Objective
        >>> obj = Objective.from_function(lambda t: 0.5 * t * torch.sin(3 * t) + 1, 1.0)
        >>> r = clamped_walk_probe(obj, walk_lr=0.1, walk_clamp=0.05, n_ascent=2, n_descent=2)
        >>> r.kind, round(r.point_high["theta"].item() - 1.0, 4), r.value > 0  # f'(1) < 0: two clamped steps left
        ('clamped_walk_probe', -0.1, True)
    """
    check_type("obj", obj, Objective, "a basinscope.Objective")
    walk_lr, walk_clamp = check_walk_settings(walk_lr, walk_clamp)
    n_ascent = check_int("n_ascent", n_ascent, minimum=0)
    n_descent = check_int("n_descent", n_descent, minimum=0)
    if n_ascent + n_descent == 0:
        fail("n_descent + n_ascent", "at least one step", 0)
    p = obj._resolve(params)
    walk = dict(walk_lr=walk_lr, walk_clamp=walk_clamp, n_ascent=n_ascent, n_descent=n_descent)
    with obj.track() as t:
        if obj.is_function:
            x = y = torch.zeros(1)
            out = clamped_walk_kernel(None, None, p, x, y, function=obj._fn, **walk)
            b = 1
        else:
            if isinstance(batch, int) and not isinstance(batch, bool):
                bl = obj.batches
                if not 0 <= batch < len(bl):
                    fail("batch", f"an index in [0, {len(bl) - 1}] or an (inputs, targets) pair", batch)
                x, y = bl[batch]
            else:
                x, y = obj._to_device(_check_batch(0, batch))
            bufs = {k: v.detach() for k, v in obj.model.named_buffers()}
            out = clamped_walk_kernel(obj.model, obj.loss_fn, p, x, y, buffers=bufs, **walk)
            b = int(x.shape[0])
        steps = n_ascent + n_descent
        obj.cost.gradients += steps
        obj.cost.forwards += 1
        obj.cost.samples += b * (steps + 1)
    f0, f_high, f_low = float(out.f0), float(out.f_high), float(out.f_low)
    for value, point in ((f0, "at θ"), (f_high, f"at θ⁺, after {n_ascent} ascent steps"), (f_low, "at θ⁺⁻")):
        if not math.isfinite(value):
            fail("clamped_walk_probe", "a finite minibatch loss", f"{value} {point}", raw=True)
    cost: Cost = t.cost
    return SharpnessResult(
        kind="clamped_walk_probe",
        value=float(out.value),
        f0=f0,
        f_high=f_high,
        f_low=f_low,
        point_high=P.clone(out.point_high) if keep_points else None,
        point_low=P.clone(out.point_low) if keep_points else None,
        settings={**walk, "batch_size": b},
        cost=cost,
    )
