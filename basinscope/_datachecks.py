"""Checks of a model, its data and its loss, run once on the first evaluation (not on per-step paths).

Without them a user error surfaces deep inside torch, or not at all:

* ``loss_fn`` with ``reduction="none"`` returns one value per example; every later gradient fails with
  autograd's "grad can be implicitly created only for scalar outputs", and ``loss()`` returns a vector;
* a loss returning a Python float or an integer tensor cannot be differentiated;
* class-index targets outside ``[0, C)`` (C the model's number of outputs) raise "Target 10 is out of bounds" on
  the CPU and a device-side assertion on CUDA; a negative target equal to cross-entropy's ``ignore_index``
  (-100) is silently skipped, which breaks the exact sample weighting Σ_b (n_b/N)·ℓ_b of
  :class:`~basinscope.objective.Objective`, so every negative target is refused;
* inputs of the wrong feature size or dtype fail in the first layer with a message that names no argument.

Each check raises one line naming the argument (``data``, ``loss_fn``, ``train_data``...), what was expected and
what was received. Shapes and dtypes are metadata (no host synchronization); the range of the targets costs one
synchronization per data set.

Example:
    >>> import torch
    >>> check_loss_value(torch.tensor(0.5)).shape
    torch.Size([])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ._checks import fail

__all__ = ["check_class_targets", "check_loss_value", "checked_forward", "checked_loss"]

_RAISED = (RuntimeError, ValueError, TypeError, IndexError, AssertionError)
_LOSS_EXPECTED = "loss_fn(outputs, targets) to return a 0-d floating-point tensor (the mean over the batch)"


def _shape(t: torch.Tensor) -> str:
    return f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}"


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(e).__name__}: {text}"


def _same_kind(e: BaseException) -> type[Exception]:
    """TypeError stays a TypeError; every other failure on bad input is a ValueError (the house convention)."""
    return TypeError if isinstance(e, TypeError) else ValueError


def check_loss_value(value: object, *, name: str = "loss_fn") -> torch.Tensor:
    """``value`` if it is a 0-d floating-point tensor; else a one-line error naming ``name``."""
    if not isinstance(value, torch.Tensor):
        got = f"a {type(value).__name__} ({value!r})" if isinstance(value, (int, float)) else type(value).__name__
        fail(name, _LOSS_EXPECTED, got, exc=TypeError, raw=True)
    if value.dim() != 0:
        fail(
            name,
            _LOSS_EXPECTED,
            f"a tensor of shape {tuple(value.shape)} (use reduction='mean', or take .mean())",
            raw=True,
        )
    if not value.is_floating_point():
        fail(name, _LOSS_EXPECTED, f"a tensor of dtype {value.dtype}", exc=TypeError, raw=True)
    return value


def checked_forward(
    forward: Callable[[torch.Tensor], object], x: torch.Tensor, *, data: str, float_dtype: torch.dtype
) -> torch.Tensor:
    """``forward(x)``, with the model's failure on these inputs reported as one line naming ``data``."""
    try:
        out = forward(x)
    except _RAISED as e:
        hint = ""
        if not x.is_floating_point() and float_dtype.is_floating_point:
            hint = f"; the inputs are {x.dtype} and the model's parameters {float_dtype} (convert with x.float())"
        raise _same_kind(e)(
            f"{data}: expected inputs the model accepts, got inputs of shape {_shape(x)} ({_reason(e)}){hint}"
        ) from e
    if not isinstance(out, torch.Tensor):
        fail("model", "a forward pass returning one tensor of outputs", type(out).__name__, exc=TypeError, raw=True)
    return out


def checked_loss(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], object], out: torch.Tensor, y: torch.Tensor, *, data: str
) -> torch.Tensor:
    """``loss_fn(out, y)`` checked to be a 0-d floating tensor; its failure reported as one line."""
    try:
        value = loss_fn(out, y)
    except _RAISED as e:
        hint = ""
        if y.is_floating_point() and y.dim() == out.dim() - 1 and out.dim() >= 2:
            hint = (
                f"; {data}'s targets are floating point with one value per example: class-index targets must be "
                "an integer tensor (y.long())"
            )
        raise _same_kind(e)(
            f"loss_fn: expected loss_fn(outputs, targets) to accept outputs {_shape(out)} and targets {_shape(y)}, "
            f"got {_reason(e)}{hint}"
        ) from e
    return check_loss_value(value)


def check_class_targets(out: torch.Tensor, targets: Sequence[torch.Tensor], *, data: str) -> None:
    """Integer class-index targets lie in ``[0, C)``, C = ``out.shape[1]`` (one host synchronization).

    Applies when the outputs are ``(B, C, ...)`` scores with C ≥ 2 and the targets integer with one dimension
    less (the layout of ``cross_entropy``); other layouts (a single output with 0/1 targets for a custom binary
    loss, ...) are left to ``loss_fn``.
    """
    if out.dim() < 2 or out.shape[1] < 2 or not targets:
        return
    ys = [y for y in targets if not y.is_floating_point() and not y.is_complex() and y.dim() == out.dim() - 1]
    if not ys or any(y.dtype == torch.bool for y in ys):
        return
    n_classes = int(out.shape[1])
    ends = [torch.stack((y.min(), y.max())).to(torch.int64) for y in ys if y.numel()]
    if not ends:
        return
    both = torch.stack([e.to(ends[0].device) for e in ends])  # (batches, 2): min and max of each
    lo, hi = torch.stack((both[:, 0].min(), both[:, 1].max())).tolist()  # the one synchronization
    if lo < 0 or hi >= n_classes:
        fail(
            data,
            f"class-index targets in [0, {n_classes - 1}] for a model with {n_classes} outputs",
            f"targets from {lo} to {hi}",
            raw=True,
        )
