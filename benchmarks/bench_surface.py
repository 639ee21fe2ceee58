"""Loss surfaces: basinscope.surface.plane vs the bare forward-pass limit vs a naive state_dict loop; 1 vs 2
torchrun processes.

Problem: a 21×21 plane through three points of the toy CNN (``build_model("toy_cnn")``, ~1.1M parameters) on
1,000 random CIFAR-shaped images (2 batches of 500), CPU, loss + error at every point. Three variants in one
process, side by side, same number of points:

* ``limit``  the model's own forward pass over the data at every point, weights already in the model (what
             no implementation can beat: zero cost to move between points, no loss, no argmax);
* ``ours``   ``basinscope.surface.plane`` (foreach writes into one reusable parameter dict, functional_call,
             device tensors collected and synced once per checkpoint);
* ``naive``  a loop that builds a state_dict per point and loads it into the model (the loss-landscapes way).

Then the same ``plane`` in fresh processes: 1 process × 1 thread, 1 process × 2 threads, and
``torchrun --standalone --nproc_per_node=2`` with 1 thread per process.

Run: ``flock /tmp/basinscope-bench.lock /work/venv/bin/python benchmarks/bench_surface.py``
(``--resolution 11`` for a quick look). On a GPU: ``--device cuda --parts inprocess --json surface.json``
(``benchmarks/gpu_check.sh``): the same three variants on the device, times taken after a synchronize.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def problem(n_images: int = 1000, batch: int = 500, device: torch.device | str = "cpu"):
    """The toy CNN, its data and three points, drawn on the CPU (the same on every device), then moved."""
    from basinscope.models import build_model
    from basinscope.objective import Objective

    torch.manual_seed(0)
    model = build_model("toy_cnn").eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n_images, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n_images,), generator=g)
    model, x, y = model.to(device), x.to(device), y.to(device)
    batches = [(x[i : i + batch], y[i : i + batch]) for i in range(0, n_images, batch)]
    obj = Objective(model, F.cross_entropy, batches)
    w1 = obj.point()
    w2 = {k: v + 0.05 * torch.randn(v.shape, generator=g).to(device) for k, v in w1.items()}
    w3 = {k: v + 0.05 * torch.randn(v.shape, generator=g).to(device) for k, v in w1.items()}
    return model, obj, batches, w1, w2, w3


def run_ours(resolution: int, device: torch.device | str = "cpu") -> dict:
    from basinscope.surface import plane, shutdown

    device = torch.device(device)
    _, obj, _, w1, w2, w3 = problem(device=device)
    _sync(device)
    t0 = time.perf_counter()
    s = plane(obj, w1, w2, w3, resolution=resolution, progress=False)
    _sync(device)
    seconds = time.perf_counter() - t0
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    shutdown()
    return {"seconds": seconds, "points": int(s.train_loss.size), "rank": rank, "world": world,
            "threads": torch.get_num_threads(), "checksum": float(s.train_loss.sum())}  # fmt: skip


def run_limit(n_points: int, device: torch.device | str = "cpu") -> float:
    device = torch.device(device)
    model, _, batches, _, _, _ = problem(device=device)
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(n_points):
            for x, _ in batches:
                model(x)
    _sync(device)
    return time.perf_counter() - t0


def run_naive(resolution: int, device: torch.device | str = "cpu") -> tuple[float, int]:
    import numpy as np

    from basinscope.surface.plane import plane_basis

    model, _obj, batches, w1, w2, w3 = problem(device=device)
    u, v, pc = plane_basis(w1, w2, w3)
    u = {k: t.float() for k, t in u.items()}
    v = {k: t.float() for k, t in v.items()}
    lo, hi = pc.min(0), pc.max(0)
    ext = hi - lo
    alphas = np.linspace(lo[0] - 0.25 * ext[0], hi[0] + 0.25 * ext[0], resolution)
    betas = np.linspace(lo[1] - 0.25 * ext[1], hi[1] + 0.25 * ext[1], resolution)
    original = {k: t.clone() for k, t in model.state_dict().items()}
    out = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in betas:
            for a in alphas:
                sd = dict(original)
                for k in w1:
                    sd[k] = w1[k] + float(a) * u[k] + float(b) * v[k]
                model.load_state_dict(sd)
                loss, correct = 0.0, 0
                for x, y in batches:
                    o = model(x)
                    loss += F.cross_entropy(o, y).item() * len(y) / 1000
                    correct += int((o.argmax(1) == y).sum())
                out.append((loss, correct))
    seconds = time.perf_counter() - t0
    model.load_state_dict(original)
    return seconds, len(out)


def child(args: list[str], env: dict) -> list[dict]:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolution", type=int, default=21)
    ap.add_argument("--worker", action="store_true", help="internal: time plane() once and print JSON")
    ap.add_argument("--parts", default="inprocess,processes")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="torch device of the in-process variants")
    ap.add_argument("--json", type=Path, default=None, help="write the in-process timings (seconds) here")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(run_ours(a.resolution)), flush=True)
        return
    parts = a.parts.split(",")
    device = torch.device(a.device)
    record: dict = {"device": str(device), "resolution": a.resolution, "repeats": a.repeats}
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, "
          f"resolution {a.resolution}, device {device}", flush=True)  # fmt: skip
    if "inprocess" in parts:
        # interleaved repeats (limit, ours, limit, ours, ...), minimum of each: the machine is shared
        ours_runs, limit_runs = [], []
        for _ in range(a.repeats):
            ours = run_ours(a.resolution, device)
            n = ours["points"]
            ours_runs.append(ours["seconds"])
            limit_runs.append(run_limit(n, device))
        naive, n_naive = run_naive(a.resolution, device)
        naive = naive * n / n_naive
        limit, best = min(limit_runs), min(ours_runs)
        print(f"points {n}: limit {limit:.2f} s ({1e3 * limit / n:.1f} ms/pt) | ours {best:.2f} s "
              f"({best / limit:.3f}x limit) | naive state_dict {naive:.2f} s ({naive / limit:.3f}x limit)",
              flush=True)  # fmt: skip
        print(f"  all runs: limit {[round(x, 2) for x in limit_runs]}, ours {[round(x, 2) for x in ours_runs]}")
        record.update(points=n, limit_s=limit, ours_s=best, naive_s=naive, ours_runs_s=ours_runs,
                      limit_runs_s=limit_runs)  # fmt: skip
    if a.json is not None:
        a.json.write_text(json.dumps(record, indent=1))
    if "processes" in parts:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("WORLD_SIZE", None)
        script = [str(Path(__file__).resolve()), "--worker", "--resolution", str(a.resolution)]
        results = {}
        for threads in (1, 2):
            e = {**env, "OMP_NUM_THREADS": str(threads)}
            results[f"1 proc x {threads} thr"] = child([sys.executable, *script], e)[0]
        e = {**env, "OMP_NUM_THREADS": "1"}
        runs = child([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *script], e)
        results["2 procs x 1 thr"] = max(runs, key=lambda r: r["seconds"])
        base = results["1 proc x 1 thr"]["seconds"]
        for k, r in results.items():
            print(f"{k}: {r['seconds']:.2f} s, speed-up vs 1x1 {base / r['seconds']:.2f}, "
                  f"vs 1x2 {results['1 proc x 2 thr']['seconds'] / r['seconds']:.2f}, "
                  f"checksum {r['checksum']:.9g}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
