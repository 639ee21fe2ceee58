"""Numbers → JSON: every metric of a run in one file, valid JSON whatever the values.

Standard JSON has no NaN or infinity; Python's ``json`` writes them as bare ``NaN``/``Infinity``, which other
tools reject. :func:`jsonable` maps non-finite floats to ``null`` (documented in the file's top-level
``"_conventions"`` entry when written by :func:`write_json`) and converts tensors, numpy values, dataclasses
(results, costs), paths and tuples into plain JSON types. Parameter dicts and large arrays are not metrics:
tensors with more than ``max_elements`` entries are summarized by their shape.

Example:
    >>> import math
    >>> jsonable({"a": math.nan, "b": (1, 2.5)})
    {'a': None, 'b': [1, 2.5]}
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..results import atomic_write_bytes

__all__ = ["dumps", "jsonable", "write_json"]

CONVENTIONS = "non-finite numbers (NaN, ±inf) are written as null"


def jsonable(value: Any, *, max_elements: int = 10_000) -> Any:
    """A JSON-ready copy of ``value`` (see module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return jsonable(value.item(), max_elements=max_elements)
    if isinstance(value, (torch.Tensor, np.ndarray)):
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        if arr.size > max_elements:
            return {"shape": list(arr.shape), "dtype": str(arr.dtype)}
        return jsonable(arr.tolist(), max_elements=max_elements)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "as_dict") and callable(value.as_dict):
            return jsonable(value.as_dict(), max_elements=max_elements)
        return {f.name: jsonable(getattr(value, f.name), max_elements=max_elements) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, max_elements=max_elements) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v, max_elements=max_elements) for v in value]
    return str(value)


def dumps(value: Any, *, indent: int | None = 1) -> str:
    """``json.dumps`` of :func:`jsonable` ``(value)``; never emits NaN/Infinity."""
    return json.dumps(jsonable(value), indent=indent, allow_nan=False, ensure_ascii=False)


def write_json(path: str | os.PathLike, value: Mapping[str, Any]) -> Path:
    """Write ``value`` (a mapping) atomically as JSON with a ``"_conventions"`` note; returns the path."""
    doc = {"_conventions": CONVENTIONS, **dict(value)}
    atomic_write_bytes(path, (dumps(doc) + "\n").encode("utf-8"))
    return Path(path)
