"""Grid points split across processes with ``torch.distributed``.

Run the same script under ``torchrun``::

    torchrun --standalone --nproc_per_node=2 my_surface.py

and every surface function (``plane``, ``line``, ``random_plane``, ``random_line``) splits the grid points
across the ranks (rank r evaluates the remaining points r, r + W, r + 2W, ...), then combines the values
with one ``all_reduce`` (each rank contributes zeros for points it did not evaluate, so the sum is exact).
Each point is computed by the same code from the same inputs as in one process, so the result is the same.

If torch.distributed is not initialized but ``WORLD_SIZE > 1`` is set (torchrun sets it), the process group
is initialized here: ``gloo`` for CPU objectives, ``nccl`` for CUDA ones. It is left initialized for later
surfaces; call :func:`shutdown` at the end of the script to tear it down. The command line calls
:func:`release` when a command ends, which tears down a group set up here (and no other): a gloo group left
for the interpreter's exit can abort the process while its worker threads are destroyed.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .. import _data_parallel as DP

__all__ = ["active", "barrier", "rank_and_world", "release", "shutdown", "sum_across"]

_OWNED = False  # whether active() initialized the default process group


def _dist():
    import torch.distributed as dist

    return dist


def active(device: torch.device, enabled: bool | None = None) -> bool:
    """Whether to split work: ``enabled=None`` means "if initialized or if ``WORLD_SIZE > 1``".

    Initializes the default process group from the environment when needed (gloo on CPU, nccl on CUDA)."""
    if enabled is False or not torch.distributed.is_available():
        return False
    dist = _dist()
    if dist.is_initialized():
        return dist.get_world_size() > 1
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend=backend)
    global _OWNED
    _OWNED = True
    return True


def rank_and_world(on: bool) -> tuple[int, int]:
    """(rank, world size); ``(0, 1)`` when not distributed."""
    return DP.rank_and_world() if on else (0, 1)


def sum_across(values: np.ndarray, device: torch.device) -> np.ndarray:
    """Element-wise sum over ranks (float64, one ``all_reduce``)."""
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(DP.reduce_device(device))
    _dist().all_reduce(t)
    return t.cpu().numpy()


def barrier(device: torch.device) -> None:
    """All ranks wait here (a tiny ``all_reduce``, which works on every backend)."""
    t = torch.zeros(1, device=DP.reduce_device(device))
    _dist().all_reduce(t)


def shutdown() -> None:
    """Destroy the default process group if one is initialized, after every rank has reached this call."""
    _destroy(meet=True)


def release() -> None:
    """Destroy the default process group if :func:`active` initialized it; a caller's own group is kept.

    No rank waits for the others (a command may end with an error on one rank only)."""
    if _OWNED:
        _destroy(meet=False)


def _destroy(meet: bool) -> None:
    global _OWNED
    if torch.distributed.is_available() and _dist().is_initialized():
        if meet and _dist().get_world_size() > 1:
            _dist().barrier()
        _dist().destroy_process_group()
    _OWNED = False
