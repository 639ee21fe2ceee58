"""Interruptible spectrum computations: their state on disk, resumed to the identical result.

On large data one Hessian-vector product is a full pass over the data, and a spectral density of 100 Lanczos
steps can run for hours. With ``checkpoint=PATH``, :func:`~basinscope.hessian.top_eigenvalues` (Lanczos) and
:func:`~basinscope.hessian.density` write the state of their Lanczos runs (the orthonormal basis so far, the
α/β recurrences, step counts and the restart generator), and :func:`~basinscope.hessian.trace` the products
computed so far, to ``PATH`` every ``checkpoint_every`` data passes, atomically (a killed run never leaves a
half-written file). Called again with the same arguments, they load it and
continue: the products are deterministic, so the result equals that of an uninterrupted run bit for bit on the
same machine. The result's ``cost`` counts only the products of the call that returns it.

The file is tied to the computation by SHA-256 fingerprints of the settings and selected coordinates, the point
θ, the model's buffers, the data (their bytes), the loss function and the objective's mode
(:mod:`basinscope.hessian._fingerprint`); a file with another fingerprint is refused with a one-line error naming
the part that differs, and left as it is. The file is read with ``torch.load(..., weights_only=True)``. Its size
is about (steps + 1)·runs·dim numbers of the basis dtype for Lanczos, and samples·dim float64 for the trace.

With a distributed objective every rank holds the same state: rank 0 alone writes the file, every rank reads it
on resume (so the path must be on a file system all ranks see), and the data fingerprint covers every shard.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .. import _data_parallel as DP
from .._checks import check_int, fail
from .._digest import fingerprint
from ..results import atomic_write_bytes, remove_stale_temporaries
from ._fingerprint import PART_NAMES, checkpoint_parts
from .hvp import HessianOperator
from .lanczos import LanczosRuns

__all__ = ["LanczosCheckpoint", "ProductCheckpoint", "SpectrumCheckpoint"]

_FORMAT = "landscape-spectrum-2"  # on-disk tag from before the rename, kept so older files still load


class SpectrumCheckpoint:
    """A fingerprinted state file for one spectrum computation (``path=None``: every method does nothing).

    Args:
        path: the checkpoint file.
        op: the Hessian operator (its point, coordinates and objective enter the fingerprint).
        kind: which computation (``"eigen"``, ``"density"``, ``"trace"``).
        settings: everything else that determines the result.
        every: data passes between saves.
    """

    def __init__(
        self, path: str | os.PathLike | None, op: HessianOperator, kind: str, settings: Mapping[str, Any], every: int
    ) -> None:
        if path is not None and not isinstance(path, (str, os.PathLike)):
            fail("checkpoint", "a file path", path, exc=TypeError)
        self.every = check_int("checkpoint_every", every, minimum=1)
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.is_dir():
            fail("checkpoint", "a file path", f"'{self.path}' (a directory)", raw=True)
        self.fingerprint = ""
        self.parts: dict[str, str] = {}
        self._writer = True
        if self.path is not None:
            fields = {
                "settings": {
                    "format": _FORMAT,
                    "kind": kind,
                    "settings": dict(settings),
                    "names": op.names,
                    "samples": getattr(op.obj, "num_samples", None),
                    "dtype": str(op.dtype),
                },
                "point": {n: t.detach() for n, t in op.point.items()},
            }
            self.parts = checkpoint_parts(op.obj, fields)
            if op.obj.distributed:
                # one file for all ranks (their states are identical): the data part covers every shard
                self.parts["data"] = fingerprint(shards=DP.all_gather_objects(self.parts["data"]))
                self._writer = DP.rank_and_world()[0] == 0
            self.fingerprint = fingerprint(**self.parts)
            remove_stale_temporaries(self.path)  # left by a run killed while writing
        self._since = 0

    @property
    def exists(self) -> bool:
        """Whether a checkpoint file is there to resume from."""
        return self.path is not None and self.path.is_file()

    def load(self) -> dict | None:
        """The saved state (``None`` when there is no file); a file of another computation is refused."""
        if not self.exists:
            return None
        assert self.path is not None
        from ..checkpoint import load_weights_only  # one-line errors for truncated or foreign files

        state = load_weights_only(self.path, map_location="cpu", what="checkpoint")
        if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint:
            saved = state.get("parts") if isinstance(state, dict) else None
            differs = "by another computation"
            if isinstance(saved, dict):
                for part, how in PART_NAMES.items():
                    if saved.get(part) != self.parts[part]:
                        differs = how
                        if part == "mode":
                            differs += f" (mode={saved.get(part)!r}, this objective has mode={self.parts[part]!r})"
                        break
            fail(
                "checkpoint",
                "a checkpoint of this computation (same settings, point, buffers, data, loss and mode)",
                f"'{self.path}', written {differs} (remove it to start afresh)",
                raw=True,
            )
        return state["state"]

    def write(self, state: dict) -> None:
        """Save ``state`` (tensors, numbers, lists and dicts of them) atomically."""
        if self.path is None:
            return
        if not self._writer:
            self._since = 0
            return
        buf = io.BytesIO()
        torch.save({"fingerprint": self.fingerprint, "parts": self.parts, "state": state}, buf)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, buf.getvalue())
        self._since = 0

    def due(self, *, final: bool = False) -> bool:
        """Count one data pass; True when a save is due (every ``every`` passes, or ``final``)."""
        if self.path is None:
            return False
        self._since += 1
        return final or self._since >= self.every


class LanczosCheckpoint(SpectrumCheckpoint):
    """Save and restore :class:`~basinscope.hessian.lanczos.LanczosRuns`."""

    def restore(self, runs: LanczosRuns) -> bool:
        """Load the saved state into ``runs`` (returns False when there is no file)."""
        state = self.load()
        if state is None:
            return False
        runs.load_state_dict(state)
        return True

    def step(self, runs: LanczosRuns, *, final: bool = False) -> None:
        """Count one Lanczos step; save every ``every`` steps (and at the end when ``final``)."""
        if self.due(final=final):
            self.save(runs)

    def save(self, runs: LanczosRuns) -> None:
        self.write(runs.state_dict())

    def flush(self, runs: LanczosRuns) -> None:
        """Save the final state unless the file already holds it (no step since the last save or restore)."""
        if self._since > 0:
            self.save(runs)


class ProductCheckpoint(SpectrumCheckpoint):
    """Save and restore the columns H·Z computed so far, per phase of a computation (Hutch++ has three)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        saved = self.load()
        self.phases: dict[str, torch.Tensor] = dict(saved["phases"]) if saved is not None else {}

    def done(self, phase: str) -> torch.Tensor | None:
        """The columns of ``phase`` computed before (CPU float64), or None."""
        return self.phases.get(phase)

    def record(self, phase: str, columns: torch.Tensor, *, final: bool) -> None:
        """Count one data pass that extended ``phase`` to ``columns``; save when due."""
        if self.path is None:
            return
        self.phases[phase] = columns
        if self.due(final=final):
            self.write({"phases": {k: v.detach().cpu().clone() for k, v in self.phases.items()}})
