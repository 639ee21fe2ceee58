"""Data-parallel reductions for :class:`~basinscope.objective.Objective` with ``distributed=True``.

Every rank holds a shard of the data. An objective's loss is f(θ) = Σ_b (n_b/N)·ℓ_b over *all* batches of all
ranks, with N the total number of samples; each rank sums the terms of its own batches (weights n_b/N with the
global N, so shards of any size combine exactly) and one ``all_reduce`` (sum) gives f, ∇f or H·v on every rank.
The summed tensors are packed into one flat buffer per dtype, so a Hessian-vector product costs one all-reduce
of #params floats (m·#params for m vectors applied in one pass).

Backends: the default process group, whatever it is (gloo on CPU, nccl on CUDA, as set up by the caller, e.g.
``torch.distributed.init_process_group()`` under ``torchrun``). For gloo, CUDA tensors are reduced on the CPU.
A group of one rank needs no communication and none is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ._checks import fail

__all__ = [
    "all_gather_objects",
    "broadcast_seed",
    "check_shards",
    "combine_bn_statistics",
    "rank_and_world",
    "reduce_device",
    "require_group",
    "sum_",
]


def _dist():
    import torch.distributed as dist

    return dist


def require_group(arg: str = "distributed") -> None:
    """Raise the one-line error of ``arg`` when no default process group is initialized."""
    if not (torch.distributed.is_available() and _dist().is_initialized()):
        fail(
            arg,
            "an initialized torch.distributed process group when True "
            "(torch.distributed.init_process_group(), e.g. under torchrun)",
            "no process group",
            raw=True,
        )


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the default process group."""
    dist = _dist()
    return dist.get_rank(), dist.get_world_size()


def reduce_device(device: torch.device) -> torch.device:
    """Where a tensor on ``device`` is all-reduced: ``device`` itself with nccl, the CPU with gloo."""
    return device if _dist().get_backend() == "nccl" else torch.device("cpu")


def sum_(tensors: Sequence[torch.Tensor]) -> None:
    """Sum ``tensors`` over all ranks in place: one ``all_reduce`` per dtype of a flat packed buffer.

    Nothing is communicated in a group of one rank."""
    if _dist().get_world_size() == 1 or not tensors:
        return
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.dtype, []).append(t)
    for group in groups.values():
        device = reduce_device(group[0].device)
        flat = torch.cat([t.reshape(-1).to(device) for t in group])
        _dist().all_reduce(flat)
        for t, piece in zip(group, torch.split(flat, [t.numel() for t in group])):
            t.copy_(piece.reshape(t.shape))


def broadcast_seed(seed: int) -> int:
    """Rank 0's ``seed`` on every rank (random probes are then identical everywhere)."""
    if _dist().get_world_size() == 1:
        return seed
    t = torch.tensor([seed], dtype=torch.int64)
    if _dist().get_backend() == "nccl":
        t = t.cuda()
    _dist().broadcast(t, src=0)
    return int(t.item())


def all_gather_objects(value: Any) -> list[Any]:
    """``value`` of every rank, in rank order (a pickled all-gather; for construction-time checks only)."""
    out: list[Any] = [None] * _dist().get_world_size()
    _dist().all_gather_object(out, value)
    return out


def combine_bn_statistics(bufs: dict[str, torch.Tensor], bn_names: list[str]) -> None:
    """Running statistics of one cumulative pass over the batches of every rank, from each rank's pass.

    With ``momentum=None`` a BatchNorm layer's running mean and variance after k batches are the means of the
    k batch statistics, so the pass over all ranks' batches has Σ_r k_r·stat_r / Σ_r k_r."""
    stats: list[torch.Tensor] = []
    counts: list[torch.Tensor] = []
    for name in bn_names:
        prefix = f"{name}." if name else ""
        k = bufs[prefix + "num_batches_tracked"]
        for stat in ("running_mean", "running_var"):
            stats.append(bufs[prefix + stat].mul_(k))
        counts.append(k)
    sum_([*stats, *counts])
    for i, k in enumerate(counts):
        stats[2 * i].div_(k)
        stats[2 * i + 1].div_(k)


def check_shards(gathered: list[tuple[str | None, list, int]], rank: int) -> None:
    """Raise the same one-line error on every rank when a shard was refused or the parameters differ."""
    for r, (error, _, _) in enumerate(gathered):
        if error is not None:
            exc = TypeError if error.startswith("TypeError") else ValueError
            if r == rank:
                raise exc(error.split(": ", 1)[1])
            raise exc(f"data: expected a valid shard on every rank, got rank {r}: {error.split(': ', 1)[1]}")
    reference = gathered[0][1]
    for r, (_, shapes, _) in enumerate(gathered[1:], start=1):
        if shapes != reference:
            diff = next(
                (f"{a[0]} {list(a[1])} vs {b[0]} {list(b[1])} on rank 0" for a, b in zip(shapes, reference) if a != b),
                f"{len(shapes)} parameters vs {len(reference)} on rank 0",
            )
            fail("model", "the same trainable parameter names and shapes on every rank", f"rank {r}: {diff}", raw=True)
