"""What the two run stores of the paper experiments share: fingerprints, partial-checkpoint paths, state copies
and the four-number evaluation document.

The SALR runs (:mod:`._runs`) and the SWA Revisited runs (:mod:`._swa_runs`) keep finished runs under a
fingerprint of their settings and an unfinished run's runner checkpoint under ``partial/``; both use the helpers
here, so the fingerprints and file names of the two stores are computed the same way (and stay those of the
results already on disk).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["copy_state", "fingerprint", "metrics_doc", "partial_path"]


def fingerprint(spec: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``spec`` as sorted JSON."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def partial_path(root: str | Path, name: str) -> Path:
    """``root/partial/<name>.pt`` (``/`` in ``name`` becomes ``__``, as in the stage store's file names), the
    runner checkpoint of the unfinished run ``name``; its folder is created."""
    path = Path(root) / "partial" / f"{name.replace('/', '__')}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def copy_state(model: nn.Module, *, cpu: bool = False) -> dict[str, torch.Tensor]:
    """A detached copy of ``model.state_dict()`` (on the CPU with ``cpu=True``, else on the model's device)."""
    state = model.state_dict()
    if cpu:
        return {k: v.detach().cpu().clone() for k, v in state.items()}
    return {k: v.detach().clone() for k, v in state.items()}


def metrics_doc(test: dict[str, float], train: dict[str, float]) -> dict[str, float]:
    """``test_accuracy``, ``test_loss``, ``train_accuracy``, ``train_loss`` from two evaluations (each with
    ``"accuracy"`` and ``"loss"``)."""
    return {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "train_accuracy": train["accuracy"],
        "train_loss": train["loss"],
    }
