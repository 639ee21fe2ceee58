"""Base class for result objects: frozen dataclasses that save to ``.npz`` + ``.json`` and load back.

Every estimator returns a small frozen dataclass deriving from :class:`Result`. Fields may hold

* tensors or numpy arrays                    → stored in the ``.npz`` file,
* parameter dicts (``dict[str, Tensor]``)    → stored in the ``.npz`` file under ``field/name`` keys,
* lists of parameter dicts                   → ``field/i/name`` keys,
* :class:`ParamFiles` (parameter dicts kept one file each, e.g. SWA samples streamed to disk) → their paths (JSON),
* :class:`~basinscope.objective.Cost`          → JSON,
* numbers, strings, lists, dicts, ``None``   → JSON.

``save(path)`` writes ``path.npz`` and ``path.json`` as a pair: both go to temporary files first (flushed to
disk), then replace the destinations, JSON first. The JSON holds the SHA-256 of the ``.npz`` it belongs to
and :meth:`Result.load` checks it, so a save interrupted at any moment leaves either the previous result
intact or a pair that ``load`` refuses with a one-line error; never a silent mix of old and new. Arrays load
back as numpy arrays or torch tensors, as they were saved. Loading uses ``numpy.load(allow_pickle=False)``: no
code runs on load.

Outputs and symbolic links: every file is written by :func:`atomic_write_bytes` (or :func:`atomic_output` for
writers that need a path, such as ``savefig``), which renames a temporary file over the destination. A symbolic
link planted at the destination is therefore replaced by the new file; its target is never opened or modified.
Directories on the way (``out_dir``, parents) are created with ``mkdir(exist_ok=True)`` and symbolic links
among them are followed, so an output directory may live on another disk through a link.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._atomic import (
    atomic_output,
    atomic_write_bytes,
    atomic_write_files,
    remove_stale_temporaries,
    write_error,
)
from ._resultjson import FORMAT, check_field, decode, encode, field_types
from .objective import Cost

__all__ = [
    "ParamFiles",
    "Result",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_files",
    "remove_stale_temporaries",
    "to_jsonable",
    "write_error",
]


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
        from .checkpoint import load_weights_only  # one-line errors for pickled, truncated or foreign files

        return load_weights_only(path, map_location="cpu", what=f"ParamFiles[{i}]")

    def __repr__(self) -> str:
        return f"ParamFiles({len(self)} files in {str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamFiles) and (self.root, self.names) == (other.root, other.names)


def to_jsonable(value: Any) -> Any:
    """Convert numbers, numpy scalars, 0-d tensors, tuples and nested containers to JSON values (non-finite
    floats stay floats: :meth:`Result.save` tags them, see :mod:`basinscope._resultjson`)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Cost):
        return value.as_dict()
    return value


def _is_params(v: Any) -> bool:
    return isinstance(v, dict) and len(v) > 0 and all(isinstance(t, torch.Tensor) for t in v.values())


@dataclasses.dataclass(frozen=True)
class Result:
    """Base for all result dataclasses (see module docstring)."""

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``<path>.npz`` and ``<path>.json`` as a pair (see module docstring); returns the base path
        (suffix stripped)."""
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
                meta[f.name] = encode(to_jsonable(v))
                manifest[f.name] = "json"
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        npz = buf.getvalue()
        doc = {
            "type": type(self).__name__,
            "format": FORMAT,
            "npz_sha256": hashlib.sha256(npz).hexdigest(),
            "manifest": manifest,
            "fields": meta,
        }
        # JSON first: interrupted between the two renames, the new JSON's digest does not match the old npz.
        atomic_write_files(
            {base.with_suffix(".json"): json.dumps(doc, indent=1).encode(), base.with_suffix(".npz"): npz}
        )
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
        try:
            doc = json.loads(jpath.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"path: expected a saved result, got an unreadable {jpath.name} ({e})") from None
        if not isinstance(doc, dict) or doc.get("type") != cls.__name__:
            found = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
            raise ValueError(f"path: expected a saved {cls.__name__}, got a saved {found!r}")
        npz = npath.read_bytes()
        want = doc.get("npz_sha256")  # absent in files written before the digest was stored
        if want is not None and hashlib.sha256(npz).hexdigest() != want:
            raise ValueError(
                f"path: expected {npath.name} written together with {jpath.name} (sha256 {want[:12]}...), got a "
                f"different {npath.name} (sha256 {hashlib.sha256(npz).hexdigest()[:12]}...); the save was "
                "interrupted or the files were mixed — save the result again"
            )
        try:
            z = np.load(io.BytesIO(npz), allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"path: expected a readable {npath.name}, got a corrupt file ({e})") from None
        legacy = "format" not in doc
        manifest, values = _checked_manifest(cls, doc, jpath.name, legacy)
        hints = field_types(cls)
        kwargs: dict[str, Any] = {}
        with z:
            for name, kind in manifest.items():
                kwargs[name] = _load_field(name, kind, z, values, npath.name, hints.get(name, Any), legacy)
                check_field(cls.__name__, name, kwargs[name], hints.get(name, Any))
        return cls(**kwargs)


_KINDS = ("tensor", "ndarray", "params", "cost", "param_files", "json")


def _checked_manifest(
    cls: type, doc: dict[str, Any], jname: str, legacy: bool
) -> tuple[dict[str, str], dict[str, Any]]:
    """The manifest and field values of a result file, checked against the dataclass's fields."""
    manifest, values = doc.get("manifest"), doc.get("fields")
    if not isinstance(manifest, dict) or not isinstance(values, dict):
        raise ValueError(f"path: expected {jname} with 'manifest' and 'fields' entries, got an edited or cut file")
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    unknown = [n for n in manifest if n not in names]
    required = [
        f.name
        for f in fields
        if f.init and (not legacy or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING))
    ]
    missing = [n for n in required if n not in manifest]
    if unknown or missing:
        raise ValueError(
            f"path: expected {jname} to list the fields of {cls.__name__}, got "
            + "; ".join(
                part
                for part in (
                    f"unknown {', '.join(map(repr, unknown[:3]))}" if unknown else "",
                    f"missing {', '.join(map(repr, missing[:3]))}" if missing else "",
                )
                if part
            )
            + " (the file was edited or cut short; save the result again)"
        )
    for name, kind in manifest.items():
        ok = isinstance(kind, str) and (
            kind in _KINDS or (kind.startswith("params_list:") and kind.split(":", 1)[1].isdigit())
        )
        if not ok:
            raise ValueError(f"path: expected {jname}'s manifest entry {name!r} to be a known kind, got {kind!r}")
        if kind in ("cost", "param_files", "json") and name not in values:
            raise ValueError(f"path: expected {jname} to hold the value of field {name!r}, got none")
    return manifest, values


def _load_field(name: str, kind: str, z: Any, values: dict[str, Any], nname: str, hint: Any, legacy: bool) -> Any:
    """One field of a saved result from the npz archive ``z`` or the JSON ``values``, by its manifest kind."""

    def array(key: str) -> np.ndarray:
        if key not in z.files:
            raise ValueError(f"path: expected {nname} to hold the array {key!r} listed in the manifest, got none")
        return z[key].copy()

    def params(pre: str) -> dict[str, torch.Tensor]:
        found = {k[len(pre) :]: torch.from_numpy(array(k)) for k in z.files if k.startswith(pre)}
        if not found:  # a saved parameter dict is never empty: the manifest lists more than was saved
            raise ValueError(f"path: expected {nname} to hold the arrays {pre}* listed in the manifest, got none")
        return found

    if kind == "tensor":
        return torch.from_numpy(array(name))
    if kind == "ndarray":
        return array(name)
    if kind == "params":
        return params(f"{name}/")
    if kind.startswith("params_list:"):
        return [params(f"{name}/{i}/") for i in range(int(kind.split(":", 1)[1]))]
    v = values[name]
    if kind == "cost":
        costs = field_types(Cost)  # the counters and their types, in field order
        if not isinstance(v, dict) or set(v) - set(costs):
            raise ValueError(f"path: expected field {name!r} to hold the counters {', '.join(costs)}, got {v!r:.80}")
        for k, x in v.items():
            check_field("result", f"{name}.{k}", x, costs[k])
        return Cost(**v)
    if kind == "param_files":
        ok = isinstance(v, dict) and isinstance(v.get("root"), str) and isinstance(v.get("names"), list)
        if not ok or not all(isinstance(n, str) for n in v["names"]):
            raise ValueError(f"path: expected field {name!r} to hold a root directory and file names, got {v!r:.80}")
        return ParamFiles(v["names"], v["root"])
    return decode(v, hint, legacy=legacy)
