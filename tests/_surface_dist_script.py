"""Run by tests/test_surface_store.py under ``torchrun --standalone --nproc_per_node=2``.

Builds the deterministic problem of :func:`problem`, evaluates a plane and a line (split across the ranks
by basinscope.surface.distributed), and rank 0 saves both results to ``argv[1]`` (a directory).
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

from basinscope.objective import Objective


def problem():
    """A float64 classification MLP with train/test objectives and three points (same in every process)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(60, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (60,), generator=g)
    xt, yt = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (40,), generator=g)
    obj = Objective(model, F.cross_entropy, [(x[:32], y[:32]), (x[32:], y[32:])])
    test = Objective(model, F.cross_entropy, (xt, yt))
    w1 = obj.point()
    w2 = {k: v + 0.3 * torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in w1.items()}
    w3 = {k: v + 0.3 * torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in w1.items()}
    return obj, test, w1, w2, w3


def main(out: str, store: str | None = None) -> None:
    from basinscope.surface import line, plane, shutdown

    obj, test, w1, w2, w3 = problem()
    s = plane(obj, w1, w2, w3, test=test, resolution=6, progress=False, store=store, checkpoint_every=0)
    l = line(obj, w1, w3, ts=[-0.5, 0.0, 0.25, 1.0, 1.5], test=test, progress=False)
    if torch.distributed.get_rank() == 0:
        s.save(f"{out}/plane")
        l.save(f"{out}/line")
        with open(f"{out}/world.txt", "w") as f:
            f.write(str(torch.distributed.get_world_size()))
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
