"""Data-parallel curvature: 1 process vs 2 ``torchrun`` processes on the 4-batch ResNet-20 case.

The problem is ``make_problem(4)`` of ``benchmarks/bench_hessian.py`` (ResNet-20, ~0.27M parameters, 4 batches of
128 random CIFAR-shaped images, 10 warm-up SGD steps, eval mode). Each worker keeps batches r, r + W, ... of the
four (rank r of W processes) in an ``Objective(..., distributed=W > 1)`` and times, after one warm-up product:

* ``hvp``: one H·v (:class:`~basinscope.hessian.hvp.HessianOperator`, ``graph="auto"``, i.e. streaming over the
  rank's batches), median of ``--hvps`` products;
* ``eigen``: ``top_eigenvalues(k=1, max_iter=--lanczos)`` (Lanczos; the same iterations in both runs);
* ``allreduce``: the communication alone, one ``all_reduce`` of #params float64 (what every HVP sends).

The driver runs the two configurations in alternation, ``--reps`` times each (machine speed drifts on a shared
host), and reports medians, the ratio of the medians and the median of the per-repetition ratios. Every worker
runs torch on ``--threads`` intra-op threads (default 1: 2 processes use 2 cores, 1 process 1 core). The
eigenvalues of the two configurations are printed side by side: they must agree (the data-parallel sum is exact).

Run: ``flock /tmp/basinscope-bench.lock python benchmarks/bench_distributed.py --reps 3 --json out.json``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args: argparse.Namespace) -> None:
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_hessian import make_problem

    from basinscope import _data_parallel as DP
    from basinscope.hessian import top_eigenvalues
    from basinscope.hessian.hvp import HessianOperator
    from basinscope.objective import Objective

    torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = 0
    if world > 1:
        torch.distributed.init_process_group("gloo")
        rank = torch.distributed.get_rank()
    model, batches = make_problem(4)
    obj = Objective(model, F.cross_entropy, batches[rank::world], distributed=world > 1)
    op = HessianOperator(obj)
    v = torch.randn(op.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    hv = op.matvec(v)  # warm-up
    times = []
    for _ in range(args.hvps):
        t0 = time.perf_counter()
        hv = op.matvec(v)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    eig = top_eigenvalues(obj, k=1, max_iter=args.lanczos, tol=1e-14)
    eig_s = time.perf_counter() - t0
    comm = []
    if world > 1:
        buf = torch.zeros(op.dim, dtype=torch.float64)
        for _ in range(5):
            t0 = time.perf_counter()
            DP.sum_([buf])
            comm.append(time.perf_counter() - t0)
    if rank == 0:
        out = {
            "world": world,
            "threads": args.threads,
            "params": op.dim,
            "local_batches": len(obj.batches),
            "hvp_s": statistics.median(times),
            "hvp_all_s": times,
            "eigen_s": eig_s,
            "eigen_hvps": eig.cost.hvps,
            "eigenvalue": float(eig.eigenvalues[0]),
            "hv_norm": float(hv.norm()),
            "allreduce_s": statistics.median(comm) if comm else None,
            "allreduce_bytes": 8 * op.dim if world > 1 else 0,
        }
        print(json.dumps(out), flush=True)
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def _child(cmd: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    line = next(x for x in proc.stdout.splitlines() if x.startswith("{"))
    return {**json.loads(line), "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hvps", type=int, default=3)
    ap.add_argument("--lanczos", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    me = [str(Path(__file__).resolve()), "--worker", "--threads", str(args.threads)]
    me += ["--hvps", str(args.hvps), "--lanczos", str(args.lanczos)]
    one_cmd = [sys.executable, *me]
    two_cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *me]
    runs: dict[str, list[dict]] = {"1 process": [], "2 processes": []}
    for rep in range(args.reps):
        for name, cmd in (("1 process", one_cmd), ("2 processes", two_cmd)):
            r = _child(cmd, args.threads)
            runs[name].append(r)
            print(f"rep {rep} {name}: hvp {r['hvp_s']:.3f} s, eigen {r['eigen_s']:.2f} s "
                  f"({r['eigen_hvps']} HVPs), λ1 {r['eigenvalue']:.10g}", flush=True)  # fmt: skip
    summary = {}
    for name, rs in runs.items():
        summary[name] = {
            "hvp_s_median": statistics.median(r["hvp_s"] for r in rs),
            "eigen_s_median": statistics.median(r["eigen_s"] for r in rs),
            "eigenvalues": [r["eigenvalue"] for r in rs],
            "allreduce_s_median": statistics.median(r["allreduce_s"] for r in rs) if rs[0]["allreduce_s"] else None,
        }
    one, two = summary["1 process"], summary["2 processes"]
    summary["ratio_hvp"] = one["hvp_s_median"] / two["hvp_s_median"]
    summary["ratio_eigen"] = one["eigen_s_median"] / two["eigen_s_median"]
    for what in ("hvp", "eigen"):  # each repetition's pair, run back to back
        pairs = [a[f"{what}_s"] / b[f"{what}_s"] for a, b in zip(runs["1 process"], runs["2 processes"])]
        summary[f"ratio_{what}_per_rep"] = pairs
        summary[f"ratio_{what}_per_rep_median"] = statistics.median(pairs)
    summary["params"] = runs["1 process"][0]["params"]
    print(json.dumps(summary, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
