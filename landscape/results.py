"""Base class for result objects: frozen dataclasses that save to ``.npz`` + ``.json`` and load back.

Every estimator returns a small frozen dataclass deriving from :class:`Result`. Fields may hold

* tensors or numpy arrays                    → stored in the ``.npz`` file,
* parameter dicts (``dict[str, Tensor]``)    → stored in the ``.npz`` file under ``field/name`` keys,
* lists of parameter dicts                   → ``field/i/name`` keys,
* :class:`ParamFiles` (parameter dicts kept one file each, e.g. SWA samples streamed to disk) → their paths (JSON),
* :class:`~landscape.objective.Cost`          → JSON,
* numbers, strings, lists, dicts, ``None``   → JSON.

``save(path)`` writes ``path.npz`` and ``path.json`` atomically (temporary file + ``os.replace``) so an
interrupted save never leaves a half-written result. Arrays load back as numpy arrays or torch tensors, as
they were saved. Loading uses ``numpy.load(allow_pickle=False)``: no code runs on load.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .objective import Cost

__all__ = ["ParamFiles", "Result", "atomic_write_bytes", "to_jsonable"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ParamFiles(Sequence):
    """A read-only sequence of parameter dicts stored one ``.pt`` file each, loaded on access.

    Files are written with :meth:`write` (atomically: a killed run never leaves a half-written file) and read
    with ``torch.load(..., weights_only=True)`` onto the CPU. Relative paths are resolved against ``root``.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> files = ParamFiles([], root=d)
        >>> files.write("a.pt", {"w": torch.ones(2)})
        >>> len(files), files[0]["w"].tolist()
        (1, [1.0, 1.0])
    """

    def __init__(self, names: Sequence[str], root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.names = [str(n) for n in names]

    def path(self, i: int) -> Path:
        return self.root / self.names[i]

    def write(self, name: str, params: dict[str, torch.Tensor]) -> None:
        """Save ``params`` (as CPU tensors) to ``root/name`` and append it."""
        import io

        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in params.items()}, buf)
        atomic_write_bytes(self.root / name, buf.getvalue())
        self.names.append(name)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        path = self.path(i)
        if not path.is_file():
            raise FileNotFoundError(f"samples: expected the file {path} written by the run, got a missing file")
        return torch.load(path, weights_only=True, map_location="cpu")

    def __repr__(self) -> str:
        return f"ParamFiles({len(self)} files in {str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamFiles) and (self.root, self.names) == (other.root, other.names)


def to_jsonable(value: Any) -> Any:
    """Convert numbers, numpy scalars, 0-d tensors, tuples and nested containers to JSON-ready values."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, Cost):
        return value.as_dict()
    return value


def _is_params(v: Any) -> bool:
    return isinstance(v, dict) and len(v) > 0 and all(isinstance(t, torch.Tensor) for t in v.values())


def _from_json(v: Any) -> Any:
    if v in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    if isinstance(v, dict):
        return {k: _from_json(x) for k, x in v.items()}
    return v


@dataclasses.dataclass(frozen=True)
class Result:
    """Base for all result dataclasses (see module docstring)."""

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``<path>.npz`` and ``<path>.json``; returns the base path (suffix stripped)."""
        base = Path(path)
        if base.suffix in (".npz", ".json"):
            base = base.with_suffix("")
        arrays: dict[str, np.ndarray] = {}
        manifest: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                arrays[f.name] = v.detach().cpu().numpy()
                manifest[f.name] = "tensor"
            elif isinstance(v, np.ndarray):
                arrays[f.name] = v
                manifest[f.name] = "ndarray"
            elif _is_params(v):
                for k, t in v.items():
                    arrays[f"{f.name}/{k}"] = t.detach().cpu().numpy()
                manifest[f.name] = "params"
            elif isinstance(v, (list, tuple)) and v and all(_is_params(x) for x in v):
                for i, d in enumerate(v):
                    for k, t in d.items():
                        arrays[f"{f.name}/{i}/{k}"] = t.detach().cpu().numpy()
                manifest[f.name] = f"params_list:{len(v)}"
            elif isinstance(v, Cost):
                meta[f.name] = v.as_dict()
                manifest[f.name] = "cost"
            elif isinstance(v, ParamFiles):
                meta[f.name] = {"root": str(v.root.resolve()), "names": list(v.names)}
                manifest[f.name] = "param_files"
            else:
                meta[f.name] = to_jsonable(v)
                manifest[f.name] = "json"
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(base.with_suffix(".npz"), buf.getvalue())
        doc = {"type": type(self).__name__, "manifest": manifest, "fields": meta}
        atomic_write_bytes(base.with_suffix(".json"), json.dumps(doc, indent=1).encode())
        return base

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Load a result written by :meth:`save` (``path`` with or without suffix)."""
        base = Path(path)
        if base.suffix in (".npz", ".json"):
            base = base.with_suffix("")
        jpath, npath = base.with_suffix(".json"), base.with_suffix(".npz")
        for p in (jpath, npath):
            if not p.is_file():
                raise FileNotFoundError(f"path: expected a saved result ({p.name} present), got missing {p}")
        doc = json.loads(jpath.read_text())
        if doc.get("type") != cls.__name__:
            raise ValueError(f"path: expected a saved {cls.__name__}, got a saved {doc.get('type')!r}")
        kwargs: dict[str, Any] = {}
        with np.load(npath, allow_pickle=False) as z:
            for name, kind in doc["manifest"].items():
                if kind == "tensor":
                    kwargs[name] = torch.from_numpy(z[name].copy())
                elif kind == "ndarray":
                    kwargs[name] = z[name].copy()
                elif kind == "params":
                    pre = f"{name}/"
                    kwargs[name] = {k[len(pre) :]: torch.from_numpy(z[k].copy()) for k in z.files if k.startswith(pre)}
                elif kind.startswith("params_list:"):
                    n = int(kind.split(":")[1])
                    out = []
                    for i in range(n):
                        pre = f"{name}/{i}/"
                        out.append({k[len(pre) :]: torch.from_numpy(z[k].copy()) for k in z.files if k.startswith(pre)})
                    kwargs[name] = out
                elif kind == "cost":
                    kwargs[name] = Cost(**doc["fields"][name])
                elif kind == "param_files":
                    kwargs[name] = ParamFiles(doc["fields"][name]["names"], doc["fields"][name]["root"])
                else:
                    kwargs[name] = _from_json(doc["fields"][name])
        return cls(**kwargs)
