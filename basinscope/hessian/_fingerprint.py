"""What a spectrum checkpoint is tied to: content digests of the computation's inputs, part by part.

A checkpoint may only be resumed by the computation that wrote it. :func:`checkpoint_parts` digests every
input that determines the products, separately so that a refusal can say which one differs:

* ``settings``: the estimator's settings, the selected coordinates and the model's dtype;
* ``point``: the parameters θ (all of them, selected or not) and ``buffers``: the model's buffers;
* ``data``: SHA-256 over the bytes, dtypes and shapes of every batch, in the order the objective iterates them
  (one pass over the data when they are not cached). Measured on the ResNet-20 benchmark's batch of
  128 CIFAR-shaped images (1.6 MB, CPU): 0.9–2.8 ms, 0.1% of one Hessian-vector product or less
  (docs/benchmarks/hessian.md, "Memory"). A shuffling data loader yields other batches on every pass, so its
  checkpoints are refused — its products are not reproducible either;
* ``loss``: the loss function (or, for a function objective, the function): its qualified name, its code and
  defaults for Python functions, the arguments of a ``functools.partial``, the public settings and state of a
  loss module (``nn.CrossEntropyLoss(label_smoothing=0.1)`` differs from ``nn.CrossEntropyLoss()``), the
  ``repr`` of anything else — memory addresses removed, as they change between processes;
* ``mode``: the objective's measurement mode (``"eval"``: running statistics, no dropout; ``"train"``).
"""

from __future__ import annotations

import functools
import hashlib
import re
import types
from typing import Any

import torch
from torch import nn

from .._digest import feed, fingerprint
from ..objective import Objective

__all__ = ["PART_NAMES", "callable_identity", "checkpoint_parts", "data_digest"]

# how a refusal names each part that can differ
PART_NAMES = {
    "settings": "by another computation (other settings or coordinates)",
    "point": "at another point θ",
    "buffers": "with other model buffers (e.g. BatchNorm statistics)",
    "data": "with other data",
    "loss": "with another loss function",
    "mode": "in another mode",
}

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_PLAIN = (bool, int, float, complex, str, bytes, type(None))


def _plain(value: Any) -> Any:
    """``value`` as something :func:`fingerprint` digests by content (no memory addresses)."""
    if isinstance(value, (*_PLAIN, torch.Tensor)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if callable(value):
        return callable_identity(value)
    return _ADDRESS.sub("", repr(value))


def callable_identity(fn: Any) -> Any:
    """A description of a callable that is equal for the same function in another process (module docstring)."""
    if isinstance(fn, functools.partial):
        return {"partial": callable_identity(fn.func), "args": _plain(fn.args), "keywords": _plain(fn.keywords)}
    if isinstance(fn, nn.Module):
        settings = {k: _plain(v) for k, v in vars(fn).items() if not k.startswith("_") and k != "training"}
        state = {k: v.detach() for k, v in fn.state_dict().items()}
        return {"module": f"{type(fn).__module__}.{type(fn).__qualname__}", "settings": settings, "state": state}
    if isinstance(fn, types.MethodType):
        return {"method": callable_identity(fn.__func__), "of": f"{type(fn.__self__).__qualname__}"}
    if isinstance(fn, types.FunctionType):
        code = fn.__code__
        return {
            "function": f"{fn.__module__}.{fn.__qualname__}",
            "code": code.co_code,
            "constants": _ADDRESS.sub("", repr(code.co_consts)),
            "names": list(code.co_names),
            "defaults": _plain(fn.__defaults__),
            "kwdefaults": _plain(fn.__kwdefaults__),
        }
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return {"callable": f"{getattr(fn, '__module__', type(fn).__module__)}.{name}", "repr": _ADDRESS.sub("", repr(fn))}


def data_digest(obj: Objective) -> str:
    """SHA-256 (hex) of the objective's batches in iteration order: bytes, dtypes and shapes of inputs and targets."""
    h = hashlib.sha256()
    n = 0
    for x, y in obj._iter_batches():
        feed(h, [x, y])
        n += 1
    h.update(f"batches={n}".encode())
    return h.hexdigest()


def checkpoint_parts(obj: Objective, fields: dict[str, Any]) -> dict[str, str]:
    """The digest of every part (``settings`` from ``fields``; the rest from the objective and ``fields``)."""
    model = obj.model
    buffers = {n: t.detach() for n, t in model.named_buffers()} if model is not None else {}
    return {
        "settings": fingerprint(**fields["settings"]),
        "point": fingerprint(point=fields["point"]),
        "buffers": fingerprint(buffers=buffers),
        "data": "function" if obj.is_function else data_digest(obj),
        "loss": fingerprint(loss=callable_identity(obj._fn if obj.is_function else obj.loss_fn)),
        "mode": obj.mode,
    }
