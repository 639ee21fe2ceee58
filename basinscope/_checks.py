"""Validators for the public boundary.

Every check raises ``ValueError`` or ``TypeError`` with a one-line message of the form
``"<argument>: expected <what>, got <received>"`` so the user sees which argument is wrong, what was
expected and what was received. Internal code never uses ``assert`` on user input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

__all__ = [
    "check_choice",
    "check_device",
    "check_finite_tensor",
    "check_int",
    "check_params_like",
    "check_positive",
    "check_type",
    "describe",
    "fail",
]


def describe(value: Any) -> str:
    """Short human description of a received value for error messages."""
    if isinstance(value, torch.Tensor):
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    if isinstance(value, str):
        return repr(value) if len(value) < 60 else repr(value[:57] + "...")
    if isinstance(value, (int, float, bool)) or value is None:
        return repr(value)
    if isinstance(value, Mapping):
        keys = list(value.keys())
        shown = ", ".join(map(repr, keys[:4])) + (", ..." if len(keys) > 4 else "")
        return f"{type(value).__name__} with keys [{shown}]"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of length {len(value)}"
    return type(value).__name__


def fail(name: str, expected: str, received: Any, *, exc: type[Exception] = ValueError, raw: bool = False):
    """Raise ``exc`` with the house message format. ``raw`` uses ``received`` as already-formatted text."""
    got = received if raw else describe(received)
    raise exc(f"{name}: expected {expected}, got {got}")


def check_type(name: str, value: Any, types: type | tuple[type, ...], expected: str | None = None) -> None:
    if not isinstance(value, types):
        if expected is None:
            tnames = types if isinstance(types, tuple) else (types,)
            expected = " or ".join(t.__name__ for t in tnames)
        fail(name, expected, type(value).__name__, exc=TypeError, raw=True)


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Check an integer (bools rejected) within optional inclusive bounds; returns it."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(name, "an integer", value, exc=TypeError)
    if minimum is not None and value < minimum:
        fail(name, f"an integer >= {minimum}", value)
    if maximum is not None and value > maximum:
        fail(name, f"an integer <= {maximum}", value)
    return int(value)


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Check a finite real number > 0 (or >= 0); returns it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = float(value)
        else:
            fail(name, "a real number", value, exc=TypeError)
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        fail(name, "a finite number >= 0" if allow_zero else "a finite number > 0", value)
    return v


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if value not in choices:
        fail(name, "one of " + ", ".join(map(repr, choices)), value)
    return value


def check_finite_tensor(name: str, value: torch.Tensor) -> None:
    """Raise if ``value`` has NaN/inf entries (synchronizes with the device: not for hot paths)."""
    if not bool(torch.isfinite(value).all()):
        shown = f"{float(value):.6g}" if value.numel() == 1 else "non-finite entries"
        fail(name, "a finite value", shown, raw=True)


def check_params_like(
    name: str,
    value: Any,
    reference: Mapping[str, torch.Tensor],
    *,
    keys: str = "the model's trainable parameter names",
) -> None:
    """Check ``value`` is a dict with exactly ``reference``'s keys and shapes (``keys`` describes them)."""
    if not isinstance(value, Mapping):
        fail(name, f"a dict[str, Tensor] with {keys}", value, exc=TypeError)
    missing = [k for k in reference if k not in value]
    extra = [k for k in value if k not in reference]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing keys " + ", ".join(map(repr, missing[:5])) + (" ..." if len(missing) > 5 else ""))
        if extra:
            parts.append("extra keys " + ", ".join(map(repr, extra[:5])) + (" ..." if len(extra) > 5 else ""))
        fail(name, keys, "; ".join(parts), raw=True)
    for k, ref in reference.items():
        t = value[k]
        if not isinstance(t, torch.Tensor):
            fail(f"{name}[{k!r}]", "a Tensor", t, exc=TypeError)
        if t.shape != ref.shape:
            fail(f"{name}[{k!r}]", f"shape {tuple(ref.shape)}", f"shape {tuple(t.shape)}", raw=True)


def check_device(name: str, value: Any) -> torch.device:
    """A torch device that exists on this machine (``"cpu"``, ``"cuda:0"``, a ``torch.device``); returns it.

    ``torch.device("cuda")`` is accepted by torch on a machine without CUDA and fails only at the first transfer,
    with a multi-line assertion; this check says so at the boundary.
    """
    if isinstance(value, bool) or not isinstance(value, (str, torch.device, int)):
        fail(name, "a torch device such as 'cpu' or 'cuda:0'", value, exc=TypeError)
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        fail(name, "a torch device such as 'cpu' or 'cuda:0'", value)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            fail(name, "a device available on this machine (torch.cuda.is_available() is False)", value)
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            fail(name, f"cuda:0 to cuda:{count - 1} on this machine", value)
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        fail(name, "a device available on this machine (torch.backends.mps.is_available() is False)", value)
    elif dev.type not in ("cpu", "cuda", "mps", "meta") and not _backend_available(dev.type):
        fail(name, "a device available on this machine", value)
    return dev


def _backend_available(kind: str) -> bool:
    """True when torch has a loaded backend module for ``kind`` (xpu, hpu, ...) that reports itself available."""
    mod = getattr(torch, kind, None)
    is_available = getattr(mod, "is_available", None)
    try:
        return bool(is_available()) if callable(is_available) else False
    except Exception:  # a backend stub that cannot answer is not available
        return False
