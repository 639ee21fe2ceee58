"""Side-by-side timings of the reference optimizers and the SALR probe (run by hand, not a test).

    flock /tmp/landscape-bench.lock /work/venv/bin/python benchmarks/bench_optim.py [--reps 5]

Toy CNN (``build_model("toy_cnn")``), batch 128 of random CIFAR-shaped data, float32, CPU:

1. time per iteration of SGD, SGD-SALR (c = 2, n_descent = n_ascent = 5) and SAM;
2. the per-example-normalized probe (10 steps; ghost norms = the default, and vmap) vs an explicit per-example
   loop and vs 10 plain batch-gradient steps, and the probe with ``normalize="batch"``;
3. SWA averaging (WeightAverager) vs ``torch.optim.swa_utils.AveragedModel.update_parameters``.

Reports medians over ``--reps`` repetitions and the ratios against the targets.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.optim.swa_utils import AveragedModel

from landscape import params as P
from landscape.models import build_model
from landscape.optim import SAM, SGD, SGDSALR, WeightAverager
from landscape.sharpness.stochastic import probe_kernel


def timeit(fn, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = build_model("toy_cnn")
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}")

    def closure_for(opt):
        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss

        return closure

    # 1. per-iteration time
    sgd = SGD(model.parameters(), lr=0.01)
    salr = SGDSALR(model, F.cross_entropy, lr=0.01, c=2, n_descent=5, n_ascent=5, gamma=0.005)
    sam = SAM(model.parameters(), rho=0.05, lr=0.01)
    t_sgd = timeit(lambda: sgd.step(closure_for(sgd)), args.reps * 2)
    t_salr = timeit(lambda: [salr.step(closure_for(salr), batch=(x, y)) for _ in range(2)], args.reps) / 2
    t_sam = timeit(lambda: sam.step(closure_for(sam)), args.reps * 2)
    print("\n| optimizer | s / iteration | × SGD |\n|---|---|---|")
    for name, t in (("SGD", t_sgd), ("SGD-SALR (c=2, n1=n2=5)", t_salr), ("SAM", t_sam)):
        print(f"| {name} | {t:.4f} | {t / t_sgd:.2f} |")

    # 2. the probe (10 normalized steps + 2 forward passes) vs loop vs plain batch-gradient steps
    params = {n: p.detach() for n, p in model.named_parameters()}
    bufs = dict(model.named_buffers())
    steps = 10

    def probe(normalize="per_example", chunk=None, method="auto"):
        return probe_kernel(
            model,
            F.cross_entropy,
            params,
            x,
            y,
            gamma=0.005,
            n_descent=5,
            n_ascent=5,
            normalize=normalize,
            chunk_size=chunk,
            method=method,
        ).value

    def loop_probe():
        model.eval()
        keys = list(params)
        walks = []
        for sign in (-1.0, 1.0):
            p = dict(params)
            for _ in range(5):
                d = P.zeros_like(p)
                for j in range(x.shape[0]):
                    q = {k: v.detach().requires_grad_(True) for k, v in p.items()}
                    loss = F.cross_entropy(functional_call(model, {**bufs, **q}, (x[j : j + 1],)), y[j : j + 1])
                    g = dict(zip(keys, torch.autograd.grad(loss, [q[k] for k in keys])))
                    d = P.axpy(1.0 / P.norm(g), g, d)
                p = P.axpy(sign * 0.005 / x.shape[0], d, p)
            walks.append(p)
        with torch.no_grad():
            f = [F.cross_entropy(functional_call(model, {**bufs, **w}, (x,)), y) for w in walks]
        return f[1] - f[0]

    def batch_steps():
        p = dict(params)
        for _ in range(steps):
            q = {k: v.detach().requires_grad_(True) for k, v in p.items()}
            loss = F.cross_entropy(functional_call(model, {**bufs, **q}, (x,)), y)
            g = torch.autograd.grad(loss, list(q.values()))
            p = {k: v.detach() - 0.005 * gi for (k, v), gi in zip(q.items(), g)}
        return p

    model.eval()
    t_ghost = timeit(probe, args.reps)
    t_probe = timeit(lambda: probe(method="vmap"), args.reps)
    t_probe_c32 = timeit(lambda: probe(chunk=32, method="vmap"), args.reps)
    t_probe_batch = timeit(lambda: probe("batch"), args.reps)
    t_batch = timeit(batch_steps, args.reps)
    t_loop = timeit(loop_probe, max(1, args.reps // 2), warmup=0)
    print(f"\n| {steps} normalized steps | s | × batch-gradient steps |\n|---|---|---|")
    for name, t in (
        ("per-example probe (ghost norms, default)", t_ghost),
        ("per-example probe (vmap)", t_probe),
        ("per-example probe (vmap, chunk 32)", t_probe_c32),
        ("batch-normalized probe", t_probe_batch),
        ("plain batch-gradient steps", t_batch),
        ("explicit per-example loop", t_loop),
    ):
        print(f"| {name} | {t:.3f} | {t / t_batch:.2f} |")
    print(f"\nghost probe / batch steps = {t_ghost / t_batch:.2f} (target <= 1.5)")
    print(f"loop / ghost probe = {t_loop / t_ghost:.2f} (target >= 2.5)")
    print(f"vmap probe / ghost probe = {t_probe / t_ghost:.2f}")
    print(f"vmap probe / batch steps = {t_probe / t_batch:.2f}, loop / vmap probe = {t_loop / t_probe:.2f}")

    # 3. SWA averaging
    avg = WeightAverager()
    am = AveragedModel(model)
    named = dict(model.named_parameters())
    avg.update(named)
    am.update_parameters(model)
    t_ours = timeit(lambda: avg.update(named), args.reps * 20)
    t_am = timeit(lambda: am.update_parameters(model), args.reps * 20)
    print(f"\n| averaging update | ms |\n|---|---|\n| WeightAverager | {1e3 * t_ours:.3f} |")
    print(f"| AveragedModel | {1e3 * t_am:.3f} |\nWeightAverager / AveragedModel = {t_ours / t_am:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
