"""Hessian spectra: basinscope.hessian vs PyHessian 0.1, side by side in one run.

ResNet-20 (He et al. 2016, CIFAR variant: 3 stages × 3 BasicBlocks, 16/32/64 channels, ~0.27M parameters) on
random CIFAR-shaped data (batch 128), CPU. Parts (``--parts``, comma separated):

* ``hvp``     seconds per HVP of each variant: cached create_graph gradient (with and without the cheaper
              second-order forms), recompute per product (stream), torch.func vjp-of-grad, several vectors per
              pass (stream) — the basis of ``graph="auto"``.
* ``one``     one batch of 128: top-1 and top-5 eigenvalues, trace, density; both libraries; accuracy vs a
              tightly converged Lanczos reference.
* ``four``    4 batches of 128 (PyHessian's dataloader mode): top-1, top-5.
* ``native``  ours alone (no PyHessian), one batch: top-1, top-5, trace (20 samples), density (one run);
              what ``benchmarks/gpu_check.sh`` times on CUDA (``--device cuda --parts hvp,native``).

``--device`` moves the problem there (its data drawn on the CPU; its 10 warm-up SGD steps run on the device);
on CUDA every time is taken after a synchronize. ``--json PATH`` writes the results.

Machine speed drifts on shared hosts, so every comparison is interleaved: ours, then ``--reps`` times
(PyHessian, ours); each ratio divides a PyHessian time by the mean of the two runs of ours around it, and the
reported speedup is the median ratio. HVP variants are timed in alternating rounds and reported as medians.

Run: ``flock /tmp/basinscope-bench.lock /work/venv/bin/python benchmarks/bench_hessian.py --parts hvp,one,four``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from basinscope.hessian import density, top_eigenvalues, trace
from basinscope.hessian.hvp import HessianOperator
from basinscope.objective import Objective


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


DEVICE = torch.device("cpu")  # set by --device


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def make_problem(n_batches: int, batch: int = 128, seed: int = 0):
    torch.manual_seed(seed)
    model = ResNet20().to(DEVICE)
    # a few SGD steps in train mode so BatchNorm statistics and weights are not at initialization
    x = torch.randn(n_batches * batch, 3, 32, 32).to(DEVICE)
    y = torch.randint(0, 10, (n_batches * batch,)).to(DEVICE)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for i in range(10):
        idx = slice((i % n_batches) * batch, (i % n_batches + 1) * batch)
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    model.eval()
    batches = [(x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]) for i in range(n_batches)]
    return model, batches


def timed(fn, *a, **kw):
    _sync()
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    _sync()
    return out, time.perf_counter() - t0


def part_hvp(reps: int = 5) -> dict:
    """Seconds per HVP of each variant: medians of ``reps`` rounds that alternate the variants (drift-robust)."""
    import statistics

    model, batches = make_problem(1)
    obj = Objective(model, F.cross_entropy, batches[0])
    out: dict = {"params": obj.dim, "reps": reps}
    gen = torch.Generator().manual_seed(0)
    vs = torch.randn(obj.dim, 4, generator=gen, dtype=torch.float64).to(DEVICE)
    cached = HessianOperator(obj, graph="cached")
    cached_torch = HessianOperator(obj, graph="cached", fast_second_order=False)
    stream = HessianOperator(obj, graph="stream")
    point = obj.point()
    bufs = dict(model.named_buffers())
    x, y = batches[0]

    def f(p):
        return F.cross_entropy(torch.func.functional_call(model, {**bufs, **p}, (x,)), y)

    v = stream.to_params(vs[:, 0])

    def vjp_of_grad():
        _, vjp_fn = torch.func.vjp(torch.func.grad(f), point)
        return vjp_fn(v)

    variants = {
        "gradient_s": (obj.grad, 1),
        "cached_s_per_hvp": (lambda: cached.matvec(vs[:, 0]), 1),
        "cached_pytorch_double_backward_s_per_hvp": (lambda: cached_torch.matvec(vs[:, 0]), 1),
        "recompute_s_per_hvp": (lambda: stream.matvec(vs[:, 0]), 1),
        "stream_4_vectors_per_pass_s_per_hvp": (lambda: stream.matmat(vs), 4),
        "vjp_of_grad_s_per_hvp": (vjp_of_grad, 1),
    }
    for fn, _ in variants.values():  # warm up; builds the cached graphs
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, (fn, per) in variants.items():
            _, t = timed(fn)
            times[name].append(t / per)
    for name, ts in times.items():
        out[name] = statistics.median(ts)
    out["fast_second_order_speedup"] = statistics.median(
        [a / b for a, b in zip(times["cached_pytorch_double_backward_s_per_hvp"], times["cached_s_per_hvp"])]
    )
    return out


def rel_err(values, ref):
    return max(abs(a - b) / abs(b) for a, b in zip(values, ref))


def interleaved(native, other, reps: int, extra: dict | None = None) -> dict:
    """Run ``native`` (and the ``extra`` variants of ours), then ``reps`` times (``other``, ours …): each ratio
    divides an ``other`` time by the mean of the two runs of a variant around it, which cancels a machine speed
    that drifts linearly."""
    import statistics

    ours = {"native": native, **(extra or {})}
    a = {name: [fn()] for name, fn in ours.items()}
    b = []
    for _ in range(reps):
        b.append(other())
        for name, fn in ours.items():
            a[name].append(fn())
    out = {"other_runs": b, "other_seconds": statistics.median([r.cost.seconds for r in b])}
    for name, runs in a.items():
        ratios = [rb.cost.seconds / (0.5 * (runs[i].cost.seconds + runs[i + 1].cost.seconds)) for i, rb in enumerate(b)]
        key = "" if name == "native" else f"{name}_"
        out[f"{key}native_runs"] = runs
        out[f"{key}ratios"] = ratios
        out[f"{key}speedup"] = statistics.median(ratios)
        out[f"{key}native_seconds"] = statistics.median([r.cost.seconds for r in runs])
    return out


def _eig_row(r, ref_vals) -> dict:
    return {
        "eigenvalues": r.eigenvalues,
        "rel_err": rel_err(sorted(r.eigenvalues, reverse=True), ref_vals[: len(r.eigenvalues)]),
        "error_estimates": r.error_estimates,
        "hvps": r.cost.hvps,
        "gradients": r.cost.gradients,
        "seconds": r.cost.seconds,
        "graph": r.settings["graph"],
        "start": r.settings.get("start"),
    }


def part_spectra(n_batches: int, density_iter: int, pyhessian_max_iter: int, ref_iter: int, reps: int) -> dict:
    from pyhessian import hessian as PyHessian  # noqa: F401 (fails early if not installed)

    model, batches = make_problem(n_batches)
    data = batches[0] if n_batches == 1 else batches
    obj = Objective(model, F.cross_entropy, data)
    out: dict = {"n_batches": n_batches, "params": obj.dim, "reps": reps}
    # the reference: Lanczos run far past its default tolerance, on the cached graph (fastest)
    ref = top_eigenvalues(obj, k=5, tol=1e-12, max_iter=ref_iter, graph="cached")
    out["reference"] = {"eigenvalues": ref.eigenvalues, "hvps": ref.cost.hvps, "seconds": ref.cost.seconds}
    print(json.dumps({"reference": out["reference"]}), flush=True)
    ref_vals = ref.eigenvalues
    for k in (1, 5):
        # ours at tol=1e-4 as well: still far more accurate than PyHessian's tol=1e-3 power iteration
        extra = {"tol1e-4": lambda k=k: top_eigenvalues(obj, k=k, tol=1e-4)} if k == 5 else None
        pair = interleaved(
            lambda k=k: top_eigenvalues(obj, k=k),
            lambda k=k: top_eigenvalues(obj, k=k, backend="pyhessian", method="power", max_iter=pyhessian_max_iter),
            reps,
            extra,
        )
        row = {
            "native": _eig_row(pair["native_runs"][-1], ref_vals),
            "pyhessian": _eig_row(pair["other_runs"][-1], ref_vals),
            "native_seconds_median": pair["native_seconds"],
            "pyhessian_seconds_median": pair["other_seconds"],
            "ratios": pair["ratios"],
            "speedup": pair["speedup"],
        }
        if extra:
            row["native_tol1e-4"] = _eig_row(pair["tol1e-4_native_runs"][-1], ref_vals)
            row["native_tol1e-4_seconds_median"] = pair["tol1e-4_native_seconds"]
            row["native_tol1e-4_ratios"] = pair["tol1e-4_ratios"]
            row["native_tol1e-4_speedup"] = pair["tol1e-4_speedup"]
        if k == 1 and n_batches == 1:  # our power iteration: PyHessian's procedure on our HVPs
            row["native_power"] = _eig_row(top_eigenvalues(obj, k=1, method="power"), ref_vals)
        if n_batches > 1:
            row["native_cached"] = _eig_row(top_eigenvalues(obj, k=k, graph="cached"), ref_vals)
        out[f"top{k}"] = row
        print(json.dumps({f"top{k}": row}), flush=True)
    if n_batches == 1:
        pair = interleaved(
            lambda: trace(obj, n_samples=20), lambda: trace(obj, n_samples=20, backend="pyhessian"), reps
        )
        row = {}
        for name, r in (("native", pair["native_runs"][-1]), ("pyhessian", pair["other_runs"][-1])):
            row[name] = {"value": r.value, "standard_error": r.standard_error, "hvps": r.cost.hvps}
        row.update(
            native_seconds_median=pair["native_seconds"],
            pyhessian_seconds_median=pair["other_seconds"],
            ratios=pair["ratios"],
            speedup=pair["speedup"],
        )
        out["trace"] = row
        print(json.dumps({"trace": row}), flush=True)
        pair = interleaved(
            lambda: density(obj, n_runs=1, n_iter=density_iter),
            lambda: density(obj, n_runs=1, n_iter=density_iter, backend="pyhessian"),
            reps,
        )
        row = {}
        for name, r in (("native", pair["native_runs"][-1]), ("pyhessian", pair["other_runs"][-1])):
            row[name] = {"nodes_min": float(r.nodes.min()), "nodes_max": float(r.nodes.max()), "hvps": r.cost.hvps}
        row.update(
            native_seconds_median=pair["native_seconds"],
            pyhessian_seconds_median=pair["other_seconds"],
            ratios=pair["ratios"],
            speedup=pair["speedup"],
        )
        out["density"] = row
        print(json.dumps({"density": row}), flush=True)
    return out


def part_native(density_iter: int) -> dict:
    """Ours alone on one batch: seconds and HVPs of top-1, top-5, trace and density (no PyHessian needed)."""
    model, batches = make_problem(1)
    obj = Objective(model, F.cross_entropy, batches[0])
    out: dict = {"params": obj.dim}
    top_eigenvalues(obj, k=1, max_iter=5)  # warm-up: kernels, the cached graph
    for name, fn in (
        ("top1", lambda: top_eigenvalues(obj, k=1)),
        ("top5", lambda: top_eigenvalues(obj, k=5)),
        ("trace", lambda: trace(obj, n_samples=20)),
        ("density", lambda: density(obj, n_runs=1, n_iter=density_iter)),
    ):
        r, seconds = timed(fn)
        out[name] = {"seconds": seconds, "hvps": r.cost.hvps, "s_per_hvp": seconds / max(r.cost.hvps, 1)}
        print(json.dumps({name: out[name]}), flush=True)
    return out


def main() -> None:
    global DEVICE
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="hvp,one,four")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--density-iter", type=int, default=30)
    ap.add_argument("--pyhessian-max-iter", type=int, default=100)
    ap.add_argument("--pyhessian-max-iter-four", type=int, default=20)
    ap.add_argument("--ref-iter", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions, one batch")
    ap.add_argument("--reps-four", type=int, default=1, help="interleaved repetitions, four batches")
    ap.add_argument("--device", default="cpu", help="torch device (cuda: times taken after a synchronize)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args()
    DEVICE = torch.device(args.device)
    torch.set_num_threads(args.threads)
    results = {"torch": torch.__version__, "threads": args.threads, "device": str(DEVICE)}
    parts = args.parts.split(",")
    if "hvp" in parts:
        results["hvp"] = part_hvp()
        print(json.dumps({"hvp": results["hvp"]}), flush=True)
    if "one" in parts:
        results["one_batch"] = part_spectra(1, args.density_iter, args.pyhessian_max_iter, args.ref_iter, args.reps)
    if "four" in parts:
        results["four_batches"] = part_spectra(
            4, args.density_iter, args.pyhessian_max_iter_four, args.ref_iter, args.reps_four
        )
    if "native" in parts:
        results["native"] = part_native(args.density_iter)
    print(json.dumps(results, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
