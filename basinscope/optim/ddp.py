"""The reference optimizers inside a user's ``DistributedDataParallel`` (DDP) loop.

DDP keeps the weights identical on every rank (it all-reduces the gradients), so what depends only on the
weights needs nothing more: :class:`~basinscope.optim.swa.WeightAverager` averages the same samples on every
rank. Two things are computed from each rank's own data and are combined here:

* **SALR's Ŝ** (SALR paper, Algorithm 2): each rank probes its shard of the minibatch; the sample-weighted mean
  Ŝ = Σ_r |B_r|·Ŝ_r / Σ_r |B_r| is all-reduced (one all-reduce of two numbers, no host synchronization with
  nccl), so every rank sets the same rate η_k = η₀·Ŝ_k/median(Ŝ) (:class:`~basinscope.optim.salr.SALR` with
  ``distributed=True``, the default for a DDP model). This is the mean of the shards' probes, not the probe of
  the union minibatch (the probe is not linear in the data); both estimate the sharpness of the minibatch
  loss around θ_k, and the rule uses only ratios of Ŝ.
* **BatchNorm statistics after averaging** (``update_bn`` semantics: each batch counts once): each rank runs its
  batches and the statistics are combined into those of one pass over the batches of all ranks
  (:func:`~basinscope.optim.swa.recompute_bn_` with ``distributed=True``, the default for a DDP model; see
  :meth:`basinscope.objective.Objective.recompute_bn`).

The probes and the recomputation run on the wrapped module (``model.module``): DDP's own forward would
synchronize buffers and prepare gradient reduction, which a measurement must not do.

Example (under ``torchrun``, after ``torch.distributed.init_process_group()``)::

    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = SGDSALR(ddp, F.cross_entropy, lr=0.05, c=2)      # Ŝ all-reduced: the same rate on every rank
    avg = WeightAverager()
    for k, (x, y) in enumerate(my_shard_of_each_batch):
        ...  # closure, opt.step(closure, batch=(x, y))
        if k % c == 0:
            avg.update(dict(ddp.module.named_parameters()))
    ddp.module.load_state_dict(avg.average, strict=False)
    recompute_bn_(ddp, F.cross_entropy, my_shard_batches)   # statistics of all ranks' batches
"""

from __future__ import annotations

import torch
from torch import nn

from .. import _data_parallel as DP

__all__ = ["is_ddp", "mean_over_ranks", "unwrap"]


def is_ddp(model: object) -> bool:
    """Whether ``model`` is wrapped in ``torch.nn.parallel.DistributedDataParallel``."""
    return isinstance(model, nn.parallel.DistributedDataParallel)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (``model`` itself otherwise)."""
    return model.module if is_ddp(model) else model


def mean_over_ranks(value: torch.Tensor, weight: float) -> torch.Tensor:
    """Σ_r w_r·v_r / Σ_r w_r over the ranks of the default process group, on every rank (one all-reduce).

    ``value`` is a 0-d tensor; the result is float64 on ``value``'s device. A non-finite value on any rank makes
    the result non-finite on every rank (so all ranks skip it alike)."""
    DP.require_group()
    v = value.detach().reshape(()).to(torch.float64)
    packed = torch.stack([v * weight, torch.full_like(v, float(weight))])
    DP.sum_([packed])
    return (packed[0] / packed[1]).to(value.device)
