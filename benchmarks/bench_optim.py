"""Side-by-side timings of the reference optimizers and the SALR probe (run by hand, not a test).

    flock /tmp/basinscope-bench.lock /work/venv/bin/python benchmarks/bench_optim.py [--reps 5]
    python benchmarks/bench_optim.py --device cuda --reps 2 --json optim.json     (benchmarks/gpu_check.sh)

Toy CNN (``build_model("toy_cnn")``), batch 128 of random CIFAR-shaped data, float32, CPU:

1. time per iteration of SGD, SGD-SALR (c = 2, n_descent = n_ascent = 5) and SAM;
2. the per-example-normalized probe (10 steps; ghost norms = the default, and vmap) vs an explicit per-example
   loop and vs 10 plain batch-gradient steps, and the probe with ``normalize="batch"``;
3. SWA averaging (WeightAverager) vs ``torch.optim.swa_utils.AveragedModel.update_parameters``.

Machine speed drifts on shared hosts, so the candidates of each comparison run in alternating rounds (one call
of each per round, after a warm-up call). Reported: medians over the ``--reps`` rounds, and each ratio as the
median of the per-round ratios (both sides measured within seconds of each other).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.optim.swa_utils import AveragedModel

from basinscope import params as P
from basinscope.models import build_model
from basinscope.optim import SAM, SGD, SGDSALR, WeightAverager
from basinscope.sharpness.stochastic import probe_kernel


def _sync() -> None:
    """Wait for queued CUDA work, so that a time covers the work and not only its launch."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def rounds(fns: dict, reps: int) -> dict[str, list[float]]:
    """Seconds of every function in ``fns`` over ``reps`` alternating rounds (after one warm-up call each)."""
    for fn in fns.values():
        fn()
    _sync()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync()
            out[name].append(time.perf_counter() - t0)
    return out


def med(ts: list[float]) -> float:
    return statistics.median(ts)


def ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-round ratios a/b."""
    return statistics.median([x / y for x, y in zip(a, b)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cpu", help="torch device (cuda: times include a synchronize)")
    ap.add_argument("--skip-loop", action="store_true", help="leave out the explicit per-example loop (slow)")
    ap.add_argument("--json", type=Path, default=None, help="write the timings (seconds) here")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model("toy_cnn").to(device)
    x = torch.randn(args.batch, 3, 32, 32).to(device)
    y = torch.randint(0, 10, (args.batch,)).to(device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, batch {args.batch}")
    record: dict = {"device": str(device), "batch": args.batch, "reps": args.reps}

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
    it = rounds(
        {
            "SGD": lambda: [sgd.step(closure_for(sgd)) for _ in range(2)],
            "SGD-SALR (c=2, n1=n2=5)": lambda: [salr.step(closure_for(salr), batch=(x, y)) for _ in range(2)],
            "SAM": lambda: [sam.step(closure_for(sam)) for _ in range(2)],
        },
        args.reps,
    )
    print("\n| optimizer | s / iteration | × SGD (median of per-round ratios) |\n|---|---|---|")
    for name, ts in it.items():
        print(f"| {name} | {med(ts) / 2:.4f} | {ratio(ts, it['SGD']):.2f} |")
    record["s_per_iteration"] = {name: med(ts) / 2 for name, ts in it.items()}

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
    names = {
        "ghost": "per-example probe (ghost norms, default)",
        "vmap": "per-example probe (vmap)",
        "vmap32": "per-example probe (vmap, chunk 32)",
        "batchnorm": "batch-normalized probe",
        "batch": "plain batch-gradient steps",
        "loop": "explicit per-example loop",
    }
    t = rounds(
        {
            "ghost": probe,
            "vmap": lambda: probe(method="vmap"),
            "vmap32": lambda: probe(chunk=32, method="vmap"),
            "batchnorm": lambda: probe("batch"),
            "batch": batch_steps,
            **({} if args.skip_loop else {"loop": loop_probe}),
        },
        args.reps,
    )
    if args.skip_loop:
        del names["loop"]
    print(f"\n| {steps} normalized steps | s | × batch-gradient steps |\n|---|---|---|")
    for key, name in names.items():
        print(f"| {name} | {med(t[key]):.3f} | {ratio(t[key], t['batch']):.2f} |")
    record["probe_s"] = {key: med(t[key]) for key in names}
    print(f"\nghost probe / batch steps = {ratio(t['ghost'], t['batch']):.2f} (target <= 1.5)")
    if "loop" in t:
        print(f"loop / ghost probe = {ratio(t['loop'], t['ghost']):.2f} (target >= 2.5)")
    print(f"vmap probe / ghost probe = {ratio(t['vmap'], t['ghost']):.2f}")
    print(f"per-round ghost / batch: {[round(a / b, 3) for a, b in zip(t['ghost'], t['batch'])]}")

    # 3. SWA averaging
    avg = WeightAverager()
    am = AveragedModel(model)
    named = dict(model.named_parameters())
    avg.update(named)
    am.update_parameters(model)
    a = rounds({"ours": lambda: avg.update(named), "am": lambda: am.update_parameters(model)}, args.reps * 20)
    print(f"\n| averaging update | ms |\n|---|---|\n| WeightAverager | {1e3 * med(a['ours']):.3f} |")
    print(f"| AveragedModel | {1e3 * med(a['am']):.3f} |")
    print(f"WeightAverager / AveragedModel = {ratio(a['ours'], a['am']):.2f} (target <= 1)")
    record["averaging_update_s"] = {"WeightAverager": med(a["ours"]), "AveragedModel": med(a["am"])}
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
