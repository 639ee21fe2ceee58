"""State guard: measurements leave the model bit-identical.

``preserve_state(model)`` snapshots every parameter and buffer (values), every ``.grad`` (value or ``None``),
every module's ``training`` flag, every parameter's ``requires_grad`` and every BatchNorm ``momentum``, and
restores them on exit, also when the body raises. Restoration writes into the existing tensors
(``copy_``), so optimizers and hooks that hold references to them stay valid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["preserve_modes", "preserve_state"]


@contextlib.contextmanager
def preserve_modes(model: nn.Module) -> Iterator[None]:
    """Restore only the train/eval flags and BatchNorm momenta (cheap; for code that writes no tensors)."""
    modes = [(m, m.training) for m in model.modules()]
    momenta = [(m, m.momentum) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    try:
        yield
    finally:
        for m, flag in modes:
            m.training = flag
        for m, mom in momenta:
            m.momentum = mom


def _slots(model: nn.Module, kind: str) -> list[tuple[nn.Module, str, torch.Tensor]]:
    """(owner module, local name, tensor object) for every registered parameter or buffer."""
    out = []
    for m in model.modules():
        for name, t in getattr(m, kind).items():
            if t is not None:
                out.append((m, name, t))
    return out


@contextlib.contextmanager
def preserve_state(model: nn.Module) -> Iterator[None]:
    """Restore parameters, buffers, gradients, modes and ``requires_grad`` exactly on exit.

    Also undoes re-assignment: a parameter or buffer replaced by another tensor object inside the block is
    put back, so references held by optimizers stay the registered ones.
    """
    params = _slots(model, "_parameters")
    buffers = _slots(model, "_buffers")
    with torch.no_grad():
        p_vals = [t.detach().clone() for _, _, t in params]
        b_vals = [t.detach().clone() for _, _, t in buffers]
    grads = [None if t.grad is None else (t.grad, t.grad.detach().clone()) for _, _, t in params]
    req = [t.requires_grad for _, _, t in params]
    try:
        with preserve_modes(model):
            yield
    finally:
        with torch.no_grad():
            for (m, name, t), v, r, g in zip(params, p_vals, req, grads):
                m._parameters[name] = t
                if t.shape != v.shape or t.dtype != v.dtype or t.device != v.device:
                    t.data = v
                else:
                    t.copy_(v)
                if t.requires_grad != r:
                    t.requires_grad_(r)
                if g is None:
                    t.grad = None
                else:
                    g_obj, g_val = g
                    if g_obj.shape == g_val.shape and g_obj.dtype == g_val.dtype:
                        g_obj.copy_(g_val)
                        t.grad = g_obj
                    else:
                        t.grad = g_val
            for (m, name, t), v in zip(buffers, b_vals):
                m._buffers[name] = t
                if t.shape != v.shape or t.dtype != v.dtype or t.device != v.device:
                    t.data = v
                else:
                    t.copy_(v)
