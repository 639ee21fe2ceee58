"""Hessian spectra: landscape.hessian vs PyHessian 0.1, side by side in one run.

ResNet-20 (He et al. 2016, CIFAR variant: 3 stages × 3 BasicBlocks, 16/32/64 channels, ~0.27M parameters) on
random CIFAR-shaped data (batch 128), CPU. Parts (``--parts``, comma separated):

* ``hvp``     seconds per HVP of each variant: cached create_graph gradient (with and without the cheaper
              second-order forms), recompute per product (stream), torch.func vjp-of-grad, several vectors per
              pass (stream) — the basis of ``graph="auto"``.
* ``one``     one batch of 128: top-1 and top-5 eigenvalues, trace, density; both libraries; accuracy vs a
              tightly converged Lanczos reference.
* ``four``    4 batches of 128 (PyHessian's dataloader mode): top-1, top-5.

Run: ``flock /tmp/landscape-bench.lock /work/venv/bin/python benchmarks/bench_hessian.py --parts hvp,one,four``
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from landscape.hessian import density, top_eigenvalues, trace
from landscape.hessian.hvp import HessianOperator
from landscape.objective import Objective


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


def make_problem(n_batches: int, batch: int = 128, seed: int = 0):
    torch.manual_seed(seed)
    model = ResNet20()
    # a few SGD steps in train mode so BatchNorm statistics and weights are not at initialization
    x = torch.randn(n_batches * batch, 3, 32, 32)
    y = torch.randint(0, 10, (n_batches * batch,))
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
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def part_hvp(reps: int = 3) -> dict:
    model, batches = make_problem(1)
    obj = Objective(model, F.cross_entropy, batches[0])
    out = {"params": obj.dim}
    gen = torch.Generator().manual_seed(0)
    vs = torch.randn(obj.dim, 4, generator=gen, dtype=torch.float64)
    # plain gradient, for scale
    obj.grad()
    _, t = timed(lambda: [obj.grad() for _ in range(reps)])
    out["gradient_s"] = t / reps
    op = HessianOperator(obj, graph="cached")
    op.matvec(vs[:, 0])  # builds the graph
    _, t = timed(lambda: [op.matvec(vs[:, 0]) for _ in range(reps)])
    out["cached_s_per_hvp"] = t / reps
    op.release()
    op = HessianOperator(obj, graph="cached", fast_second_order=False)
    op.matvec(vs[:, 0])
    _, t = timed(lambda: [op.matvec(vs[:, 0]) for _ in range(reps)])
    out["cached_pytorch_double_backward_s_per_hvp"] = t / reps
    op.release()
    op = HessianOperator(obj, graph="stream")
    _, t = timed(lambda: [op.matvec(vs[:, 0]) for _ in range(reps)])
    out["recompute_s_per_hvp"] = t / reps
    _, t = timed(lambda: op.matmat(vs))
    out["stream_4_vectors_per_pass_s_per_hvp"] = t / 4
    # torch.func: vjp of grad
    point = obj.point()
    bufs = dict(model.named_buffers())
    x, y = batches[0]

    def f(p):
        return F.cross_entropy(torch.func.functional_call(model, {**bufs, **p}, (x,)), y)

    v = op.to_params(vs[:, 0])

    def vjp_of_grad():
        _, vjp_fn = torch.func.vjp(torch.func.grad(f), point)
        return vjp_fn(v)

    vjp_of_grad()
    _, t = timed(lambda: [vjp_of_grad() for _ in range(reps)])
    out["vjp_of_grad_s_per_hvp"] = t / reps
    return out


def rel_err(values, ref):
    return max(abs(a - b) / abs(b) for a, b in zip(values, ref))


def part_spectra(n_batches: int, density_iter: int, pyhessian_max_iter: int, ref_iter: int) -> dict:
    from pyhessian import hessian as PyHessian  # noqa: F401 (fails early if not installed)

    model, batches = make_problem(n_batches)
    data = batches[0] if n_batches == 1 else batches
    obj = Objective(model, F.cross_entropy, data)
    out: dict = {"n_batches": n_batches, "params": obj.dim}
    # the reference: Lanczos run far past its default tolerance, on the cached graph (fastest)
    ref = top_eigenvalues(obj, k=5, tol=1e-12, max_iter=ref_iter, graph="cached")
    out["reference"] = {"eigenvalues": ref.eigenvalues, "hvps": ref.cost.hvps, "seconds": ref.cost.seconds}
    print(json.dumps({"reference": out["reference"]}), flush=True)
    ref_vals = ref.eigenvalues
    variants = {
        "native": {},
        "native_power": {"method": "power"},
        "pyhessian": {"backend": "pyhessian", "method": "power", "max_iter": pyhessian_max_iter},
    }
    if n_batches > 1:
        variants["native_cached"] = {"graph": "cached"}
    for k in (1, 5):
        row = {}
        for name, kw in variants.items():
            if name == "native_power" and (k > 1 or n_batches > 1):
                continue  # PyHessian's procedure and cost; skipped where it would only lengthen the run
            r = top_eigenvalues(obj, k=k, **kw)
            row[name] = {
                "eigenvalues": r.eigenvalues,
                "rel_err": rel_err(sorted(r.eigenvalues, reverse=True), ref_vals[:k]),
                "error_estimates": r.error_estimates,
                "hvps": r.cost.hvps,
                "seconds": r.cost.seconds,
                "graph": r.settings["graph"],
            }
        row["speedup"] = row["pyhessian"]["seconds"] / row["native"]["seconds"]
        out[f"top{k}"] = row
        print(json.dumps({f"top{k}": row}), flush=True)
    if n_batches == 1:
        row = {}
        for backend in ("native", "pyhessian"):
            r = trace(obj, n_samples=20, backend=backend)
            row[backend] = {
                "value": r.value,
                "standard_error": r.standard_error,
                "hvps": r.cost.hvps,
                "seconds": r.cost.seconds,
            }
        out["trace"] = row
        print(json.dumps({"trace": row}), flush=True)
        row = {}
        for backend in ("native", "pyhessian"):
            r = density(obj, n_runs=1, n_iter=density_iter, backend=backend)
            row[backend] = {
                "nodes_min": float(r.nodes.min()),
                "nodes_max": float(r.nodes.max()),
                "hvps": r.cost.hvps,
                "seconds": r.cost.seconds,
            }
        row["speedup"] = row["pyhessian"]["seconds"] / row["native"]["seconds"]
        out["density"] = row
        print(json.dumps({"density": row}), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="hvp,one,four")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--density-iter", type=int, default=30)
    ap.add_argument("--pyhessian-max-iter", type=int, default=100)
    ap.add_argument("--pyhessian-max-iter-four", type=int, default=20)
    ap.add_argument("--ref-iter", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {"torch": torch.__version__, "threads": args.threads}
    parts = args.parts.split(",")
    if "hvp" in parts:
        results["hvp"] = part_hvp()
        print(json.dumps({"hvp": results["hvp"]}), flush=True)
    if "one" in parts:
        results["one_batch"] = part_spectra(1, args.density_iter, args.pyhessian_max_iter, args.ref_iter)
    if "four" in parts:
        results["four_batches"] = part_spectra(4, args.density_iter, args.pyhessian_max_iter_four, args.ref_iter)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
