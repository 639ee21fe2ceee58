"""Resumable grids: partial results on disk, checked against a fingerprint of the arguments.

A surface evaluation given ``store=DIR`` writes what it has computed to ``DIR`` as it goes (every
``checkpoint_every`` seconds and when it stops, also on an exception), each write atomic (temporary file +
``os.replace``), so a process killed at any moment leaves a readable store. Restarted with the same
arguments it loads the finished points and evaluates only the rest; every point is computed by the same code
from the same inputs, so the final result is identical to an uninterrupted run.

Layout::

    DIR/manifest.json     {"format", "fingerprint", "n_points", "columns"}
    DIR/part-<rank>.npz   done (bool, n_points), values (float64, n_points × columns)

Under torch.distributed every rank writes its own part; on start every rank reads all parts, so a store may
be resumed with a different number of processes. The fingerprint is a SHA-256 over the grid coordinates,
the weights that define the grid (origin, directions, exact points), the data of the objectives and the
settings; a store made with different arguments is refused.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import fail
from .._digest import fingerprint
from ..results import atomic_write_bytes, remove_stale_temporaries

__all__ = ["SurfaceStore", "fingerprint"]

_FORMAT = "landscape.surface.store/1"  # on-disk tag from before the rename, kept so older files still load


class SurfaceStore:
    """A directory holding the partial results of one grid evaluation.

    Args:
        path: the directory (created if missing).
        fingerprint: :func:`fingerprint` of everything that determines the values.
        n_points: number of grid points.
        columns: names of the value columns.
        rank: this process's rank (each rank writes ``part-<rank>.npz``).

    Example:
        >>> import tempfile, numpy as np
        >>> s = SurfaceStore(tempfile.mkdtemp(), fingerprint="abc", n_points=3, columns=["loss"])
        >>> done, values = s.open()
        >>> done[1], values[1, 0] = True, 0.5
        >>> s.write(done, values)
        >>> s.open()[0].tolist()
        [False, True, False]
    """

    def __init__(self, path: str | os.PathLike, *, fingerprint: str, n_points: int, columns: list[str], rank: int = 0):
        if not isinstance(path, (str, os.PathLike)):
            fail("store", "a directory path (str or os.PathLike)", path, exc=TypeError)
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            fail("store", "a directory path", f"the file {self.path}", raw=True)
        self.fingerprint = fingerprint
        self.n_points = int(n_points)
        self.columns = list(columns)
        self.rank = int(rank)

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def _manifest(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "fingerprint": self.fingerprint,
            "n_points": self.n_points,
            "columns": self.columns,
        }

    def open(self) -> tuple[np.ndarray, np.ndarray]:
        """Check (or create) the manifest and return ``(done, values)`` merged from every part on disk.

        Raises ``ValueError`` when the directory holds a store made with different arguments."""
        self.path.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path / f"part-{self.rank}.npz")  # left by a rank killed while writing
        mine = self._manifest()
        if self.manifest_path.is_file():
            try:
                found = json.loads(self.manifest_path.read_text())
            except (OSError, ValueError):
                found = {}
            if found.get("format") != _FORMAT:
                fail("store", f"a surface store ({_FORMAT})", f"an unreadable manifest in {self.path}", raw=True)
            if found != mine:
                fail(
                    "store",
                    f"a store made with the same arguments (fingerprint {self.fingerprint[:12]}, "
                    f"{self.n_points} points)",
                    f"one made with different arguments (fingerprint {str(found.get('fingerprint'))[:12]}, "
                    f"{found.get('n_points')} points) in {self.path}; use a new directory",
                    raw=True,
                )
        else:
            atomic_write_bytes(self.manifest_path, json.dumps(mine, indent=1).encode())
        done = np.zeros(self.n_points, dtype=bool)
        values = np.full((self.n_points, len(self.columns)), np.nan, dtype=np.float64)
        for part in sorted(self.path.glob("part-*.npz")):
            try:
                with np.load(part, allow_pickle=False) as z:
                    d, v = z["done"], z["values"]
            except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
                # parts are written atomically, so this is damage from outside (a copy cut short, a full disk)
                fail(
                    "store",
                    "readable part files",
                    f"a truncated or corrupt {part.name} in {self.path} ({type(e).__name__}); delete that file to "
                    "recompute its points",
                    raw=True,
                )
            if d.shape != done.shape or v.shape != values.shape:
                fail("store", f"parts of {self.n_points} points", f"{part.name} of shape {d.shape}", raw=True)
            new = d & ~done
            values[new] = v[new]
            done |= d
        return done, values

    def write(self, done: np.ndarray, values: np.ndarray) -> None:
        """Atomically write this rank's part (``done`` mask and ``values``)."""
        buf = io.BytesIO()
        np.savez(buf, done=np.asarray(done, dtype=bool), values=np.asarray(values, dtype=np.float64))
        atomic_write_bytes(self.path / f"part-{self.rank}.npz", buf.getvalue())
