"""Finished stages of the demo on disk, so that re-running with the same output directory reuses them.

A stage is a JSON document (numbers) plus optional weights (a weights-only checkpoint). Both are written
atomically after the stage finishes; a stage is reused only when the settings fingerprint matches.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_state_dict, save_checkpoint
from ..report.json import dumps
from ..results import atomic_write_bytes

__all__ = ["StageStore"]


class StageStore:
    """Stage results under ``out_dir/stages`` and weights under ``out_dir/checkpoints``.

    Args:
        out_dir: the demo's output directory.
        fingerprint: settings hash; stages saved under another fingerprint are ignored (and overwritten).
        reuse: ``False`` ignores every saved stage.
    """

    def __init__(self, out_dir: str | os.PathLike, fingerprint: str, *, reuse: bool = True) -> None:
        self.root = Path(out_dir)
        self.fingerprint = fingerprint
        self.reuse = reuse
        (self.root / "stages").mkdir(parents=True, exist_ok=True)
        (self.root / "checkpoints").mkdir(parents=True, exist_ok=True)

    def _doc(self, name: str) -> Path:
        return self.root / "stages" / f"{name.replace('/', '__')}.json"

    def weights_path(self, name: str) -> Path:
        return self.root / "checkpoints" / f"{name.replace('/', '__')}.pt"

    def load(self, name: str) -> dict[str, Any] | None:
        """The saved document of stage ``name`` (``None`` when absent, stale or reuse is off)."""
        path = self._doc(name)
        if not self.reuse or not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if doc.get("fingerprint") != self.fingerprint:
            return None
        return doc["data"]

    def load_weights(self, name: str) -> dict[str, torch.Tensor]:
        return load_state_dict(self.weights_path(name))

    def save(self, name: str, data: dict[str, Any], weights: dict[str, torch.Tensor] | None = None) -> None:
        """Write the weights first, then the document, so a document always has its weights."""
        if weights is not None:
            save_checkpoint(weights, self.weights_path(name), meta={"stage": name, "fingerprint": self.fingerprint})
        doc = {"fingerprint": self.fingerprint, "data": json.loads(dumps(data))}
        atomic_write_bytes(self._doc(name), json.dumps(doc).encode())
