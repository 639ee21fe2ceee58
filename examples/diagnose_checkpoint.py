"""Diagnose a trained checkpoint: sharpness (ϕ, S, Ŝ), Hessian spectrum and loss surfaces, as a report.

    python examples/diagnose_checkpoint.py model.pt --model cnn1d --out diag     # your checkpoint
    python examples/diagnose_checkpoint.py --out diag                             # trains a small model first
    python examples/diagnose_checkpoint.py --quick --out diag                     # seconds, for tests

Without a checkpoint the script trains the MNIST-1D CNN briefly with SGD (``basinscope.optim.train``),
saves it with ``basinscope.checkpoint.save_checkpoint`` and diagnoses that file, the way you would diagnose your
own. The checkpoint is loaded weights-only (a file that needs pickled code is refused without running it).
The same as a command: ``basinscope diagnose model.pt --model cnn1d --data mnist1d --out diag``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from basinscope.checkpoint import load_into, save_checkpoint
from basinscope.data import mnist1d
from basinscope.diagnose import diagnose, write_diagnosis
from basinscope.models import build_model
from basinscope.optim import train


def train_small(path: Path, *, model: str, iterations: int, seed: int, progress: bool) -> Path:
    """Train ``model`` on MNIST-1D for ``iterations`` SGD steps and save a weights-only checkpoint."""
    data = mnist1d()
    torch.manual_seed(seed)
    net = build_model(model)
    res = train(
        "sgd",
        net,
        data.train,
        test_data=data.test,
        budget=iterations,
        lr=0.05,
        momentum=0.9,
        seed=seed,
        progress=progress,
    )
    print(f"trained {model} for {res.iterations} iterations: test accuracy {res.test['accuracy']:.3f}")
    return save_checkpoint(net, path, meta={"model": model, "iterations": res.iterations})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", help="a state_dict file (default: train a small model first)")
    parser.add_argument("--model", default="cnn1d", help="zoo model the checkpoint belongs to (default: cnn1d)")
    parser.add_argument("--out", default="diagnose-out", help="output directory")
    parser.add_argument("--quick", action="store_true", help="tiny budgets and cheap settings (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: one thread is as fast, and robust on a loaded machine
    try:
        t0 = time.perf_counter()
        ckpt = Path(args.checkpoint) if args.checkpoint else None
        if ckpt is None:
            ckpt = train_small(
                out / "trained.pt",
                model=args.model,
                iterations=100 if args.quick else 3000,
                seed=args.seed,
                progress=not args.quick,
            )
        data = mnist1d()
        model = load_into(build_model(args.model), ckpt)
        n = 500 if args.quick else len(data.x_train)
        d = diagnose(
            model,
            [(data.x_train[i : i + 1000], data.y_train[i : i + 1000]) for i in range(0, n, 1000)]
            if n > 500
            else (data.x_train[:n], data.y_train[:n]),
            data.test,
            quick=args.quick,
            resolution=5 if args.quick else 21,
            seed=args.seed,
            progress=not args.quick,
        )
        paths = write_diagnosis(d, out, title=f"diagnosis of {ckpt.name}", subtitle=f"model {args.model}, MNIST-1D")
    finally:
        torch.set_num_threads(threads)
    m = d.metrics
    print(f"test accuracy {m['test']['accuracy']:.3f}")
    print(f"phi {m['sharpness']['phi']:.4g}  S {m['sharpness']['S']:.4g}  S_hat {m['sharpness']['S_hat']:.4g}")
    print("top Hessian eigenvalues", ", ".join(f"{v:.4g}" for v in m["hessian"]["top_eigenvalues"]))
    print(f"trace {m['hessian']['trace']:.4g} ± {m['hessian']['trace_standard_error']:.2g}")
    print(f"report: {paths['report']}  ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
