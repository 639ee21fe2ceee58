"""Content digests: SHA-256 over nested tensors, arrays, dicts, lists and plain values.

One definition serves every resumable computation: surface stores, spectrum checkpoints and training
checkpoints tie their files to the inputs through it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["feed", "fingerprint"]


def feed(h: Any, value: Any) -> None:
    """Add ``value`` (nested tensors, arrays, dicts, lists, plain values) to the hash ``h``."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"A{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(value, Mapping):
        h.update(b"{")
        for k in sorted(value, key=str):
            h.update(repr(k).encode())
            feed(h, value[k])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            feed(h, v)
        h.update(b"]")
    else:
        h.update(repr(value).encode())


def fingerprint(**parts: Any) -> str:
    """SHA-256 (hex) of nested tensors, arrays, dicts, lists and plain values (order of dict keys ignored)."""
    h = hashlib.sha256()
    feed(h, parts)
    return h.hexdigest()
