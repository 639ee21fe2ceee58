"""Where the runner's minibatches come from, resumably: tensors in memory or any re-iterable of batches.

* :class:`TensorSource` — ``(inputs, targets)`` tensors on the model's device; a permutation per epoch from a
  CPU ``torch.Generator`` seeded with the run's seed (:class:`Stream`; the last batch of an epoch may be
  short). Its fingerprint is a SHA-256 of the tensors' bytes, shapes and dtypes.
* :class:`LoaderSource` — a ``torch.utils.data.DataLoader`` or any re-iterable of ``(inputs, targets)``
  batches: one batch per iteration, a fresh ``iter(loader)`` per epoch. For resumption it records, at the
  start of every epoch, the state of torch's global CPU generator and of every ``torch.Generator`` the loader
  holds (``loader.generator``, its sampler's and batch sampler's ``generator``): a shuffling DataLoader draws
  its order from these when ``iter()`` and the first ``next()`` run. A resumed run restores them, replays
  the epoch's batches up to the checkpoint and checks that the last replayed batch is bit-identical to the
  one the checkpoint saw (SHA-256), so a loader whose order comes from elsewhere (Python's ``random``,
  NumPy, a sampler with hidden state) or that yields other data is refused instead of silently diverging.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from .._checks import fail
from .._digest import fingerprint
from ..results import atomic_write_bytes

__all__ = ["LoaderSource", "Stream", "TensorSource", "digest", "pair", "save_checkpoint"]


def pair(data: Any, name: str, attrs: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    if is_pair(data):
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


def is_pair(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)


def is_loader(data: Any) -> bool:
    """A re-iterable of batches (a DataLoader, a list of pairs, …): iterable, not a tensor pair, not a string."""
    return isinstance(data, Iterable) and not isinstance(data, (torch.Tensor, str, bytes)) and not is_pair(data)


def digest(*tensors: torch.Tensor) -> str:
    """SHA-256 of the tensors' shapes, dtypes and bytes (copied to the CPU; one host synchronization)."""
    return fingerprint(tensors=list(tensors))[:16]


def _to(t: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return t.to(device, dtype if t.is_floating_point() else t.dtype, non_blocking=True)


class Stream:
    """Seeded minibatch order; its state is three plain values (resumable)."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.b = n, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.pos = 0
        self.epoch = 0  # epochs completed before the current one

    def indices(self) -> torch.Tensor:
        if self.perm is None or self.pos >= self.n:
            if self.perm is not None:
                self.epoch += 1
            self.perm = torch.randperm(self.n, generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.b]
        self.pos += self.b
        return idx

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm, "pos": self.pos, "epoch": self.epoch}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.gen.set_state(s["gen"])
        self.perm, self.pos = s["perm"], int(s["pos"])
        self.epoch = int(s.get("epoch", 0))  # absent in checkpoints from before it was kept


class TensorSource:
    """Minibatches of in-memory tensors in a seeded order (see the module docstring)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, device, dtype) -> None:
        self.fingerprint = digest(x, y)
        self.x, self.y = _to(x, device, dtype), y.to(device)
        self.batch_size = batch_size
        self.stream = Stream(x.shape[0], batch_size, seed)
        self.epoch_batches: int | None = -(-x.shape[0] // batch_size)

    @property
    def epoch(self) -> int:
        """Epochs completed before the one the last batch came from."""
        return self.stream.epoch

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.stream.indices().to(self.x.device)
        return self.x[idx], self.y[idx]

    def pass_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the data in its stored order (BatchNorm recomputation)."""
        b = self.batch_size
        return [(self.x[j : j + b], self.y[j : j + b]) for j in range(0, len(self.x), b)]

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()

    def load_state_dict(self, s: dict[str, Any], checkpoint: Path | None = None) -> None:
        self.stream.load_state_dict(s)


def _generators(loader: Any) -> list[torch.Generator]:
    """The torch.Generators a DataLoader draws its order from (deduplicated, in a fixed order)."""
    found: list[torch.Generator] = []
    for obj in (
        loader,
        getattr(loader, "sampler", None),
        getattr(loader, "batch_sampler", None),
        getattr(getattr(loader, "batch_sampler", None), "sampler", None),
    ):
        g = getattr(obj, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not h for h in found):
            found.append(g)
    return found


class LoaderSource:
    """Minibatches from a re-iterable of ``(inputs, targets)`` batches (see the module docstring)."""

    def __init__(self, loader: Any, device, dtype) -> None:
        if iter(loader) is loader:
            fail(
                "train_data",
                "a re-iterable of (inputs, targets) batches (a DataLoader, a list) that starts over on every iter()",
                f"a one-shot iterator ({type(loader).__name__})",
                raw=True,
            )
        self.loader, self.device, self.dtype = loader, device, dtype
        self.it: Iterator | None = None
        self.epoch = 0
        self.pos = 0
        self.start: dict[str, Any] | None = None
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None
        self.fingerprint = "loader"
        try:
            self.epoch_batches: int | None = len(loader)
        except TypeError:
            self.epoch_batches = None

    def _capture(self) -> dict[str, Any]:
        return {"cpu": torch.get_rng_state(), "generators": [g.get_state() for g in _generators(self.loader)]}

    def _restore(self, s: dict[str, Any]) -> None:
        torch.set_rng_state(s["cpu"])
        gens = _generators(self.loader)
        if len(gens) != len(s["generators"]):
            want = len(s["generators"])
            fail("train_data", f"a loader with {want} torch.Generator(s), as when checkpointed", len(gens))
        for g, st in zip(gens, s["generators"]):
            g.set_state(st)

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.it is None:
            self.start = self._capture()
            self.it = iter(self.loader)
            self.pos = 0
        try:
            b = next(self.it)
        except StopIteration:
            if self.pos == 0:
                fail("train_data", "a loader that yields batches on every pass", "an empty pass", raw=True)
            self.it = None
            self.epoch += 1
            return self._draw()
        if not (isinstance(b, (tuple, list)) and len(b) >= 2 and all(isinstance(t, torch.Tensor) for t in b[:2])):
            fail("train_data", "batches (inputs, targets) of tensors", b, exc=TypeError)
        self.pos += 1
        return b[0], b[1]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._draw()
        self.last = (x, y)
        return _to(x, self.device, self.dtype), y.to(self.device, non_blocking=True)

    def pass_batches(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the loader (BatchNorm recomputation); it draws from the loader's order sources."""
        return self.loader

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "pos": self.pos,
            "start": self.start,
            "last": None if self.last is None else digest(*self.last),
            "generators": [g.get_state() for g in _generators(self.loader)],
        }

    def load_state_dict(self, s: dict[str, Any], checkpoint: Path | None = None) -> None:
        """Replay the checkpoint's epoch up to its position, then check the last batch (see the module)."""
        self.epoch = int(s["epoch"])
        self.it, self.pos, self.last = None, 0, None
        if s["start"] is None:
            return
        now = torch.get_rng_state()
        self._restore(s["start"])
        self.start = self._capture()
        self.it = iter(self.loader)
        x = y = None
        for _ in range(int(s["pos"])):
            try:
                batch = next(self.it)
                x, y = batch[0], batch[1]
            except StopIteration:
                x = None
                break
            self.pos += 1
        if x is None or digest(x, y) != s["last"]:
            name = f"'{checkpoint.name}'" if checkpoint is not None else "the checkpoint"
            fail(
                "resume",
                f"train_data that replays the batches {name} was written with (same data, order drawn only from "
                "torch's global generator or the loader's torch.Generator)",
                f"a different batch at position {int(s['pos'])} of epoch {self.epoch}; pass resume=False or the "
                "same seeded DataLoader",
                raw=True,
            )
        torch.set_rng_state(now)
        for g, st in zip(_generators(self.loader), s["generators"]):
            g.set_state(st)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
