"""Safe checkpoint loading and saving: weights only, never pickled code.

A PyTorch checkpoint is a pickle. A pickle can name any importable callable and have it run on load (its
``__reduce__``), so opening a file someone else wrote with ``torch.load(path)`` can execute their code.
:func:`load_state_dict` always calls ``torch.load(path, weights_only=True, map_location=...)``: the restricted
unpickler accepts tensors, numbers, strings and plain containers and refuses anything else *before* it is
called. Such a file is rejected with a one-line ``ValueError``; nothing in it runs.

Accepted layouts:

* a raw ``state_dict`` (``{name: Tensor}``), as written by ``torch.save(model.state_dict(), path)``;
* a dict holding one under ``"state_dict"`` or ``"model"`` (the usual training-script layout; other entries such
  as an epoch counter or optimizer state are ignored);
* the keys of ``torch.nn.DataParallel`` / ``torch.optim.swa_utils.AveragedModel`` (``module.`` prefix, plus
  ``n_averaged``) are unwrapped.

Example:
    >>> import torch, tempfile, os
    >>> model = torch.nn.Linear(3, 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> _ = save_checkpoint(model, path, meta={"epoch": 3})
    >>> load_into(torch.nn.Linear(3, 2), path).weight.shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import io
import os
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._checks import describe
from .params import Params
from .results import atomic_write_bytes

__all__ = [
    "load_checkpoint_meta",
    "load_into",
    "load_params",
    "load_state_dict",
    "load_weights_only",
    "save_checkpoint",
]

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict")


def load_weights_only(path: str | os.PathLike, *, map_location: Any = "cpu", what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors naming ``what`` and the file.

    Args:
        path: a file written by ``torch.save``.
        map_location: passed to ``torch.load``.
        what: the name used in error messages (an argument or option, e.g. ``"--init"``).

    Returns:
        The loaded object (tensors, numbers, strings and plain containers only).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a directory, a file that needs pickled code (refused, nothing executed), or a file that is
            truncated, corrupt or not written by ``torch.save``.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{what}: expected an existing file, got missing '{p}'")
    if not p.is_file():
        raise ValueError(f"{what}: expected a file, got a directory '{p}'")
    try:
        with warnings.catch_warnings():
            # pickle protocols other than torch's default trigger a harmless warning in the restricted unpickler
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(p, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as e:
        text = str(e)
        # The restricted unpickler names the global it refused; keep only that name from torch's long message.
        found = re.search(r"GLOBAL\s+([A-Za-z_][\w.]*\.[\w]+)", text)
        if found or "global" in text.lower():
            detail = f"it calls {found.group(1)}" if found else "it holds Python objects"
            raise ValueError(
                f"{what}: expected a weights-only file (tensors, numbers, plain containers), got '{p.name}' which "
                f"needs pickled code to load ({detail}); refused without running it — if you trust the file, "
                "re-save it with torch.save(model.state_dict(), path)"
            ) from None
        # an opcode the restricted unpickler does not know: damage, or a plain pickle (which may need code)
        raise ValueError(
            f"{what}: expected a weights-only file written by torch.save, got '{p}', which the weights-only loader "
            f"cannot read ({_first_sentence(e)}): truncated, corrupt, or a pickle that needs code to load; refused "
            "without running it"
        ) from None
    except Exception as e:  # the unpickler fails in many ways on files that are not torch checkpoints
        raise _corrupt(what, p, e) from None


def _first_sentence(e: BaseException) -> str:
    """The part of torch's long load errors that names the failure."""
    msg = " ".join(str(e).split())
    if not msg:
        return type(e).__name__
    found = re.search(r"Unsupported \w+ \S+", msg)
    return (found.group(0) if found else msg.split(". ")[0])[:120]


def _corrupt(what: str, p: Path, e: BaseException) -> ValueError:
    return ValueError(
        f"{what}: expected a complete file written by torch.save, got '{p}', which is truncated, corrupt or of "
        f"another format ({_first_sentence(e)})"
    )


def _unwrap(obj: Any, path: str | os.PathLike, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _CONTAINER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{what}: expected a state_dict (name -> Tensor) or a dict with a 'state_dict'/'model' entry, "
            f"got {describe(obj)} in '{Path(path).name}'"
        )
    sd = {str(k): v for k, v in obj.items()}
    # AveragedModel / DataParallel wrap the network as `.module`; AveragedModel adds a counter.
    if "n_averaged" in sd and any(k.startswith("module.") for k in sd):
        sd.pop("n_averaged")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def load_state_dict(
    path: str | os.PathLike, *, map_location: Any = "cpu", what: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """Read a checkpoint's state_dict with ``torch.load(weights_only=True)``.

    Args:
        path: a file written by ``torch.save``.
        map_location: passed to ``torch.load`` (default ``"cpu"``).
        what: the name used in error messages (an argument or option, e.g. ``"--init"``).

    Returns:
        ``{name: Tensor}``, unwrapped from ``"state_dict"``/``"model"`` entries and ``module.`` prefixes.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file needs pickled code (refused, nothing executed), is not a torch file, or holds no
            state_dict.
    """
    return _unwrap(load_weights_only(path, map_location=map_location, what=what), path, what)


def load_checkpoint_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``"meta"`` entry written by :func:`save_checkpoint` (``{}`` when absent); loaded weights-only."""
    obj = load_weights_only(path, map_location="cpu")
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    return dict(meta) if isinstance(meta, Mapping) else {}


def load_into(
    model: nn.Module,
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    map_location: Any = None,
    what: str = "checkpoint",
) -> nn.Module:
    """Load a checkpoint (path or state_dict) into ``model`` after checking every key and shape.

    Args:
        model: the network whose architecture the checkpoint was saved from.
        source: a checkpoint path (loaded with :func:`load_state_dict`) or a state_dict.
        map_location: default: the device of the model's first parameter.
        what: the name used in error messages (an argument or option, e.g. ``"--init"``).

    Returns:
        ``model`` (loaded in place).

    Raises:
        ValueError: keys missing from / unexpected in the checkpoint, or a tensor of the wrong shape — one line
            naming the first few offenders.
    """
    if map_location is None:
        first = next(iter(model.parameters()), None)
        map_location = first.device if first is not None else "cpu"
    if isinstance(source, (str, os.PathLike)):
        sd = load_state_dict(source, map_location=map_location, what=what)
    else:
        sd = _unwrap(source, "<state_dict>", what)
    ref = model.state_dict()
    missing = [k for k in ref if k not in sd]
    extra = [k for k in sd if k not in ref]
    if missing or extra:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} missing ("
                + ", ".join(map(repr, missing[:3]))
                + (", ..." if len(missing) > 3 else "")
                + ")"
            )
        if extra:
            parts.append(
                f"{len(extra)} unexpected ("
                + ", ".join(map(repr, extra[:3]))
                + (", ..." if len(extra) > 3 else "")
                + ")"
            )
        raise ValueError(
            f"{what}: expected the keys of {type(model).__name__}'s state_dict, got "
            + "; ".join(parts)
            + " — is --model the architecture the checkpoint was saved from?"
        )
    for k, t in ref.items():
        if tuple(sd[k].shape) != tuple(t.shape):
            raise ValueError(
                f"{what}[{k!r}]: expected shape {tuple(t.shape)}, got shape {tuple(sd[k].shape)}"
                " — is --model built with the same sizes as the checkpoint?"
            )
    model.load_state_dict(sd, strict=True)
    return model


def load_params(model: nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor]) -> Params:
    """The trainable parameters of a checkpoint as a parameter dict keyed like ``model.named_parameters()``.

    The model is not modified (the checkpoint is validated against a copy of its state). Useful to pass several
    checkpoints as points to a measurement, e.g. the three points of ``basinscope.surface.plane``.
    """
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else "cpu"
    sd = load_state_dict(source, map_location=device) if isinstance(source, (str, os.PathLike)) else source
    sd = _unwrap(sd, "<state_dict>")
    ref = model.state_dict()
    probe = {k: v for k, v in sd.items()}
    for k, t in ref.items():
        if k not in probe:
            continue
        if tuple(probe[k].shape) != tuple(t.shape):
            raise ValueError(f"checkpoint[{k!r}]: expected shape {tuple(t.shape)}, got shape {tuple(probe[k].shape)}")
    out: Params = {}
    missing = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name not in sd:
            missing.append(name)
            continue
        out[name] = sd[name].detach().to(device=p.device, dtype=p.dtype).clone()
    if missing:
        raise ValueError(
            f"checkpoint: expected the parameters of {type(model).__name__}, got {len(missing)} missing ("
            + ", ".join(map(repr, missing[:3]))
            + (", ..." if len(missing) > 3 else "")
            + ")"
        )
    return out


def save_checkpoint(
    source: nn.Module | Mapping[str, torch.Tensor], path: str | os.PathLike, *, meta: Mapping[str, Any] | None = None
) -> Path:
    """Write ``{"state_dict": ..., "meta": ...}`` atomically; loadable with ``weights_only=True``.

    Args:
        source: a model (its ``state_dict()`` is saved, moved to CPU) or a state_dict / parameter dict.
        path: destination file (parent directories are created).
        meta: plain values (numbers, strings, lists, dicts) stored beside the weights.

    Returns:
        The path written.
    """
    sd = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    sd = {k: v.detach().cpu().clone() for k, v in sd.items()}
    buf = io.BytesIO()
    torch.save({"state_dict": sd, "meta": dict(meta or {})}, buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
