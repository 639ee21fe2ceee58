"""Run by tests/test_objective_distributed.py under ``torchrun --standalone --nproc_per_node=2``.

Every rank builds the deterministic problem of :func:`problem`, keeps its shard of the batches (rank 0 the
first batch, rank 1 the other two: uneven shards), measures everything of :func:`measure` on
``Objective(..., distributed=True)`` and saves the numbers to ``argv[1]/rank<r>.pt``. Rank 1 passes a
different seed to the estimators: the probes must still be rank 0's. Then both ranks build an objective over a
model with a different shape on rank 1, which must be refused on both ranks; the messages are saved too.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

from basinscope import hessian, sharpness
from basinscope.objective import Objective
from basinscope.surface import random_line

SIZES = (17, 15, 8)


def problem() -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A float64 MLP with BatchNorm (non-trivial running statistics) and three batches of uneven size."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3)).double()
    model[1].running_mean.uniform_(-0.5, 0.5)
    model[1].running_var.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(1)
    n = sum(SIZES)
    x, y = torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)
    batches, start = [], 0
    for s in SIZES:
        batches.append((x[start : start + s], y[start : start + s]))
        start += s
    return model, batches


def measure(obj: Objective, seed: int) -> dict[str, torch.Tensor]:
    """Every quantity that must not depend on how the data are split (float64 tensors)."""
    gen = torch.Generator().manual_seed(5)
    v = {k: torch.randn(t.shape, generator=gen, dtype=t.dtype) for k, t in obj.point().items()}
    w = {k: torch.randn(t.shape, generator=gen, dtype=t.dtype) for k, t in obj.point().items()}
    flat = lambda d: torch.cat([d[k].reshape(-1) for k in obj.names])  # noqa: E731
    out: dict[str, torch.Tensor] = {}
    loss, g = obj.loss_and_grad()
    out["loss"] = obj.loss().reshape(1)
    out["loss_and_grad"] = torch.cat([loss.reshape(1), flat(g)])
    out["hvp"] = flat(obj.hvp(v))
    out["hvp_two"] = torch.cat([flat(h) for h in obj.hvp([v, w])])
    ev = obj.evaluate()
    out["evaluate"] = torch.tensor([ev["loss"], ev["accuracy"], ev["samples"]], dtype=torch.float64)
    bufs = obj.recompute_bn()
    out["recompute_bn"] = torch.cat([bufs[k].reshape(-1).double() for k in sorted(bufs)])
    eig = hessian.top_eigenvalues(obj, k=3, max_iter=20, seed=seed)
    out["eigenvalues"] = torch.tensor(list(eig.eigenvalues), dtype=torch.float64)
    out["trace"] = torch.tensor([hessian.trace(obj, n_samples=6, seed=seed).value], dtype=torch.float64)
    dens = hessian.density(obj, n_runs=2, n_iter=8, seed=seed)
    out["density"] = torch.cat([torch.as_tensor(dens.nodes).reshape(-1), torch.as_tensor(dens.weights).reshape(-1)])
    out["keskar"] = torch.tensor([sharpness.keskar(obj, 0.05, steps=4, seed=seed).value], dtype=torch.float64)
    out["two_sided"] = torch.tensor([sharpness.two_sided(obj, 0.05, steps=4, seed=seed).value], dtype=torch.float64)
    out["probe"] = torch.tensor([sharpness.probe(obj, 0.02, 3, 3).value], dtype=torch.float64)
    line = random_line(obj, seed=seed, ts=[-0.5, 0.0, 0.5], test=obj, progress=False)
    out["line"] = torch.cat([torch.as_tensor(line.train_loss), torch.as_tensor(line.test_error)])
    return out


def main(out: str) -> None:
    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    model, batches = problem()
    shard = batches[:1] if rank == 0 else batches[1:]
    obj = Objective(model, F.cross_entropy, shard, distributed=True)
    results = measure(obj, seed=3 + rank)
    results["num_samples"] = torch.tensor([obj.num_samples, obj.local_samples], dtype=torch.float64)
    # checkpoints: rank 0 writes one file, every rank resumes from it (nothing left to compute)
    resumed = []
    for _ in range(2):
        tr = hessian.trace(obj, n_samples=6, seed=3, checkpoint=f"{out}/trace.pt", checkpoint_every=1)
        eig = hessian.top_eigenvalues(obj, k=3, max_iter=20, seed=3, checkpoint=f"{out}/eigen.pt")
        resumed += [tr.value, tr.cost.hvps, *eig.eigenvalues, eig.cost.hvps]
    results["resumed"] = torch.tensor(resumed, dtype=torch.float64)
    other = nn.Linear(4, 3 if rank == 0 else 2).double()
    try:
        Objective(other, F.cross_entropy, shard, distributed=True)
        refused = ""
    except ValueError as exc:
        refused = str(exc)
    torch.save({"results": results, "refused": refused}, f"{out}/rank{rank}.pt")
    torch.distributed.barrier()  # every rank is done with the group before it is destroyed
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
