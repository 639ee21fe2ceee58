"""Shared plumbing of the sharpness estimators: argument checks, the model guard, progress bars."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from .. import params as P
from .._checks import check_finite_tensor, check_type
from .._state import preserve_modes, preserve_state
from ..objective import Objective

__all__ = [
    "checked_objective",
    "finite_float",
    "guard",
    "model_modes",
    "progress_bar",
    "select_batch",
    "start_point",
    "tiny",
]


def checked_objective(obj: Any) -> Objective:
    check_type("obj", obj, Objective, "a basinscope.Objective")
    return obj


@contextlib.contextmanager
def guard(obj: Objective) -> Iterator[None]:
    """Leave the model bit-identical (parameters, buffers, grads, modes), also when the body raises."""
    if obj.model is None:
        yield
        return
    with preserve_state(obj.model):
        yield


def model_modes(model: torch.nn.Module | None) -> contextlib.AbstractContextManager:
    """Restore the train/eval flags (and BatchNorm momenta) of ``model`` on exit; nothing without a model."""
    return preserve_modes(model) if model is not None else contextlib.nullcontext()


def select_batch(obj: Objective, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The minibatch ``batch`` of ``obj``: an index into ``obj.batches`` or an ``(inputs, targets)`` pair (checked,
    moved to the objective's device; :meth:`Objective.per_example_grads` takes its batch the same way)."""
    return obj._select_batch(batch)


def start_point(obj: Objective, params: Mapping[str, torch.Tensor] | None) -> P.Params:
    """θ as detached copies (the model's point by default), validated against the model's shapes."""
    return P.clone(obj._resolve(params))


def finite_float(name: str, value: torch.Tensor) -> float:
    """One host sync at the end of an estimate: the value as a float, non-finite values rejected."""
    check_finite_tensor(name, value)
    return float(value)


def tiny(dtype: torch.dtype) -> float:
    """Smallest positive normal number of ``dtype``: guards divisions by a zero gradient norm."""
    return torch.finfo(dtype).tiny


def progress_bar(total: int, enabled: bool, desc: str):
    """A bar (:func:`basinscope._progress.progress`) when ``enabled``, else a no-op with ``update``/``close``."""
    from .._progress import progress

    return progress(total=total, desc=desc, enabled=enabled)
