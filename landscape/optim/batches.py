"""Minibatch order and checkpoint writing for the runner (plain, resumable state)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from .._checks import fail
from ..results import atomic_write_bytes

__all__ = ["Stream", "pair", "save_checkpoint"]


def pair(data: Any, name: str, attrs: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
    elif hasattr(data, attrs[0]) and hasattr(data, attrs[1]):
        x, y = getattr(data, attrs[0]), getattr(data, attrs[1])
        x, y = torch.as_tensor(x), torch.as_tensor(y)
    else:
        fail(name, f"an (inputs, targets) pair of tensors or an object with {attrs[0]}/{attrs[1]}", data, exc=TypeError)
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        fail(
            name,
            "non-empty inputs and targets with the same length",
            f"{tuple(x.shape)} and {tuple(y.shape)}",
            raw=True,
        )
    return x, y


class Stream:
    """Seeded minibatch order; its state is three plain values (resumable)."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.b = n, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def indices(self) -> torch.Tensor:
        if self.perm is None or self.pos >= self.n:
            self.perm = torch.randperm(self.n, generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.b]
        self.pos += self.b
        return idx

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.gen.set_state(s["gen"])
        self.perm, self.pos = s["perm"], int(s["pos"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
