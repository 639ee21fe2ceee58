"""The JSON half of a saved result: unambiguous values and a check of every field against its declared type.

Standard JSON has no NaN or infinity. A result file writes a non-finite float as ``{"__float__": "nan"}``
(``"inf"``, ``"-inf"``), so the *string* ``"nan"`` (a point label, a setting) stays a string; a dict that
itself has only the key ``"__float__"`` or ``"__dict__"`` is wrapped as ``{"__dict__": {...}}``. Files written
before this encoding (no ``"format"`` entry) stored non-finite floats as the strings ``"nan"``/``"inf"``/
``"-inf"``; they are read back as floats only where the field's type does not admit a string.

:func:`check_field` compares a loaded value with the dataclass annotation of its field (``float``, ``int``,
``str``, ``bool``, ``list[...]``, ``dict[str, ...]``, unions, ``None``, classes such as ``numpy.ndarray``), so a
hand-edited file with ``"value": "abc"`` is refused with a one-line error naming the field instead of loading
into a result that breaks later.

Example:
    >>> encode({"a": float("nan"), "b": "nan"})
    {'a': {'__float__': 'nan'}, 'b': 'nan'}
    >>> decode(encode({"a": float("nan"), "b": "nan"}), object)["b"]
    'nan'
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FORMAT", "check_field", "decode", "encode", "field_types"]

FORMAT = 2  # 2: tagged non-finite floats, every field listed in the manifest; absent: the earlier files
_NONFINITE = ("nan", "inf", "-inf")
_TAGS = ("__float__", "__dict__")


def encode(value: Any) -> Any:
    """JSON-ready ``value`` with non-finite floats tagged (see module docstring)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": str(value)}
    if isinstance(value, Mapping):
        out = {str(k): encode(v) for k, v in value.items()}
        return {"__dict__": out} if len(out) == 1 and next(iter(out)) in _TAGS else out
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def _admits_str(hint: Any) -> bool:
    """True when ``hint`` names ``str`` itself or in a union (``Any`` does not count)."""
    if hint is str:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_admits_str(h) for h in typing.get_args(hint))
    return False


def _item_hint(hint: Any, index: int | None = None) -> Any:
    """The annotation of the items of a list/dict annotation (``Any`` when unknown)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [_item_hint(h, index) for h in args if h is not type(None)]
        return inner[0] if len(inner) == 1 else Any
    if not args:
        return Any
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return args[-1]
    if origin is tuple and index is not None and len(args) > index and args[-1] is not Ellipsis:
        return args[index]
    return args[0]


def decode(value: Any, hint: Any, *, legacy: bool = False) -> Any:
    """Inverse of :func:`encode`; ``legacy`` reads the strings ``"nan"``/``"inf"`` as floats where ``hint``
    admits no string (files written before the tagged encoding)."""
    if isinstance(value, dict):
        if len(value) == 1 and "__float__" in value and value["__float__"] in _NONFINITE:
            return float(value["__float__"])
        if len(value) == 1 and isinstance(value.get("__dict__"), dict):
            return {k: decode(v, _item_hint(hint), legacy=legacy) for k, v in value["__dict__"].items()}
        return {k: decode(v, _item_hint(hint), legacy=legacy) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, _item_hint(hint, i), legacy=legacy) for i, v in enumerate(value)]
    if legacy and value in _NONFINITE and not _admits_str(hint):
        return float(value)
    return value


def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a result dataclass (``{}`` entries become ``Any`` where unresolvable)."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation naming something not importable here: checked as Any
        return {}


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) < 40 else repr(value[:37] + "...")
    if isinstance(value, (bool, int, float)) or value is None:
        return repr(value)
    return type(value).__name__


def _mismatch(value: Any, hint: Any) -> str | None:
    """``None`` when ``value`` fits ``hint``; else a description of where it does not."""
    if hint is Any or hint is object:
        return None
    if hint is None or hint is type(None):
        return None if value is None else _describe(value)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        found = [_mismatch(value, h) for h in args]
        return None if any(f is None for f in found) else found[0]
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else _describe(value)
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else _describe(value)
    if origin is None and isinstance(hint, type):
        return None if isinstance(value, hint) else _describe(value)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            return _describe(value)
        for k, v in value.items():
            inner = _mismatch(v, args[-1] if args else Any)
            if inner is not None:
                return f"[{k!r}] {inner}"
        return None
    if origin is not None and isinstance(origin, type) and issubclass(origin, Sequence):
        if not isinstance(value, (list, tuple)):
            return _describe(value)
        for i, v in enumerate(value):
            inner = _mismatch(v, _item_hint(hint, i))
            if inner is not None:
                return f"[{i}] {inner}"
        return None
    return None  # Literal, Callable, ...: not checked


def _name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("torch.", "").replace("numpy.", "np.")


def check_field(result: str, name: str, value: Any, hint: Any) -> None:
    """Raise a one-line ``ValueError`` when ``value`` does not fit the annotation ``hint`` of field ``name``."""
    found = _mismatch(value, hint)
    if found is not None:
        raise ValueError(
            f"path: expected a saved {result} whose field {name!r} is {_name(hint)}, got {found} (the file was "
            "edited or damaged; save the result again)"
        )
