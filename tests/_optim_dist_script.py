"""Run by tests/test_optim_ddp.py under ``torchrun --standalone --nproc_per_node=2`` (gloo).

A user's DDP loop: every step each rank takes its half of the global batch. Two runs:

* SWA: a BatchNorm network trained with SGD (momentum) under DDP, averaged every ``C`` steps with
  :class:`~basinscope.optim.swa.WeightAverager`, then BatchNorm statistics recomputed with
  :func:`~basinscope.optim.swa.recompute_bn_` from each rank's shards (reduced across the ranks);
* SALR: :class:`~basinscope.optim.salr.SGDSALR` on the DDP model (Ŝ all-reduced).

Each rank saves its final state_dicts (and the SALR Ŝ history) to ``argv[1]/rank<r>.pt``. :func:`swa_reference`
and :func:`salr_reference` are the single-process runs over the concatenated batches that they must equal.
"""

from __future__ import annotations

import gc
import sys

import torch
import torch.nn.functional as F
from torch import nn

STEPS, C, SHARD, WORLD = 6, 2, 8, 2
LR, GAMMA, PROBE_STEPS = 0.1, 0.02, 2


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    n = STEPS * SHARD * WORLD
    return torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def shard(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s part of the global batch of ``step``."""
    x, y = data()
    start = (step * WORLD + rank) * SHARD
    return x[start : start + SHARD], y[start : start + SHARD]


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3)).double()


def plain_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def _load_average(model: nn.Module, average: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(average[name])


def swa_reference() -> dict[str, torch.Tensor]:
    """One process, the concatenated batches; BatchNorm normalizes each rank's part separately (DDP without
    SyncBatchNorm), i.e. the loss is the mean of the parts' losses."""
    from basinscope.optim.swa import WeightAverager, recompute_bn_

    model = bn_net().train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    avg = WeightAverager()
    for k in range(STEPS):
        opt.zero_grad()
        loss = sum(F.cross_entropy(model(x), y) for x, y in (shard(k, r) for r in range(WORLD))) / WORLD
        loss.backward()
        opt.step()
        if k % C == 0:
            avg.update(dict(model.named_parameters()))
    _load_average(model, avg.average)
    recompute_bn_(model, F.cross_entropy, [shard(k, r) for r in range(WORLD) for k in range(STEPS)])
    return {k: v.clone() for k, v in model.state_dict().items()}


def salr_reference() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One process, the concatenated batches; Ŝ_k is the mean of the parts' Ŝ (public estimator)."""
    from basinscope.objective import Objective
    from basinscope.optim.salr import SGDSALR
    from basinscope.sharpness import stochastic_probe

    model = plain_net()
    opt = SGDSALR(model, F.cross_entropy, lr=LR, c=C, gamma=GAMMA, n_descent=PROBE_STEPS, n_ascent=PROBE_STEPS)
    for k in range(STEPS):
        parts = [shard(k, r) for r in range(WORLD)]
        x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        s = None
        if opt.measures_next():
            values = [
                stochastic_probe(Objective(model, F.cross_entropy, p), GAMMA, PROBE_STEPS, PROBE_STEPS).value
                for p in parts
            ]
            s = sum(values) / WORLD

        def closure(x=x, y=y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss

        opt.step(closure, sharpness=s)
    return {k: v.clone() for k, v in model.state_dict().items()}, opt.rule.values()


def run(rank: int) -> dict:
    """Both DDP runs of rank ``rank``; the DDP wrappers (which hold the process group) end with this call."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from basinscope.optim.salr import SGDSALR
    from basinscope.optim.swa import WeightAverager, recompute_bn_

    ddp = DDP(bn_net().train())
    opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=0.9)
    avg = WeightAverager()
    for k in range(STEPS):
        x, y = shard(k, rank)
        opt.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        opt.step()
        if k % C == 0:
            avg.update(dict(ddp.module.named_parameters()))
    _load_average(ddp.module, avg.average)
    recompute_bn_(ddp, F.cross_entropy, [shard(k, rank) for k in range(STEPS)])
    swa_state = {k: v.clone() for k, v in ddp.module.state_dict().items()}

    ddp = DDP(plain_net())
    salr = SGDSALR(ddp, F.cross_entropy, lr=LR, c=C, gamma=GAMMA, n_descent=PROBE_STEPS, n_ascent=PROBE_STEPS)
    for k in range(STEPS):
        x, y = shard(k, rank)

        def closure(x=x, y=y):
            salr.zero_grad()
            loss = F.cross_entropy(ddp(x), y)
            loss.backward()
            return loss

        salr.step(closure, batch=(x, y))
    salr_state = {k: v.clone() for k, v in ddp.module.state_dict().items()}
    return {"swa": swa_state, "salr": salr_state, "sharpness": salr.rule.values(), "distributed": salr.distributed}


def main(out: str) -> None:
    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    torch.save(run(rank), f"{out}/rank{rank}.pt")
    gc.collect()  # the DDP wrappers are gone before the group: teardown happens while the interpreter is alive
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
