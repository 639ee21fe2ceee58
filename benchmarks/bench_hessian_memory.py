"""Peak memory of top-k Hessian eigenvalues: basinscope.hessian vs PyHessian 0.1, in bytes per parameter.

ResNet-20 of ``bench_hessian.py`` (272,474 parameters, float32, CPU) on one batch of ``--batch`` CIFAR-shaped
inputs (default 16: the memory compared here is per parameter and does not grow with the batch, while the
graph and the time of each product do).
Every case runs in a fresh Python process (``--case NAME``) and reports the peak resident memory of the call
above the memory at rest just before it: the kernel's high-water mark ``VmHWM`` is reset
(``/proc/self/clear_refs``, value 5) after the problem is built, and read after the call. glibc is told to
serve every allocation of 64 KiB or more with its own mapping (``MALLOC_MMAP_THRESHOLD_=65536``), so freed
tensors leave the resident set at once and the high-water mark follows the tensors alive together.

The double-backward graph of the batch (activations: hundreds of MB here) does not depend on the method, so
each library's *extra* memory is its peak minus the peak of its own baseline, a process that builds the same
graph and applies one Hessian-vector product (``hvp_ours``: ``HessianOperator.matmat``; ``hvp_pyhessian``:
``pyhessian.hessian(...)`` and ``hessian_vector_product``). Extra / parameters = bytes per parameter: the
Krylov basis or power-iteration vectors, the eigenvectors returned, the temporaries per step, and for ours the
state guard's copies of the parameters and buffers.

Cases: ``top{1,5}_ours`` (defaults: float32 basis for this float32 model), ``top5_ours_f64``
(``basis_dtype=torch.float64``), ``top{1,5}_pyhessian`` (``eigenvalues(top_n=k, maxIter=100, tol=1e-3)``),
and, with ``--old PATH`` (a copy of the package before the basis was grown lazily, e.g.
``git archive 9bd3548 landscape | tar -x -C PATH``), ``top{1,5}_old``, the preallocated float64 basis.
``fingerprint_ours`` times the checkpoint's data digest against one product.

Run: ``flock /tmp/basinscope-bench.lock python benchmarks/bench_hessian_memory.py --reps 3 [--old PATH]``
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

HERE = Path(__file__).resolve().parent


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def run_case(case: str, threads: int, batch: int) -> dict:
    import gc

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    sys.path.insert(0, str(HERE))
    from bench_hessian import make_problem

    from basinscope.objective import Objective

    model, batches = make_problem(1, batch=batch)
    x, y = batches[0]
    n_params = sum(p.numel() for p in model.parameters())
    obj = Objective(model, F.cross_entropy, (x, y))
    out: dict = {"case": case, "params": n_params}
    what, _, lib = case.partition("_")  # hvp | top1 | top5 | fingerprint; ours | ours_f64 | old | pyhessian
    recorded: list = []
    if lib.startswith("ours"):
        from basinscope.hessian import LanczosRuns, eigen

        class Recording(LanczosRuns):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                recorded.append(self)

        eigen.LanczosRuns = Recording
    if lib == "pyhessian":
        import warnings

        from pyhessian import hessian as PyHessian
        from pyhessian.hessian import hessian_vector_product

        warnings.filterwarnings("ignore")
        torch.manual_seed(0)
    gc.collect()
    rest = _status()["VmRSS"]
    _reset_peak()
    t0 = time.perf_counter()
    if what == "hvp" and lib != "pyhessian":
        from basinscope.hessian import HessianOperator

        op = HessianOperator(obj)
        op.matmat(op.random(1, 0))
        op.release()
    elif what.startswith("top") and lib != "pyhessian":
        from basinscope.hessian import top_eigenvalues

        kw = {"basis_dtype": torch.float64} if lib == "ours_f64" else {}
        res = top_eigenvalues(obj, k=int(what[3:]), **kw)
        out.update(hvps=res.cost.hvps, eigenvalues=res.eigenvalues)
        if recorded:
            out["basis_bytes_per_param"] = recorded[0].basis_bytes / n_params
            out["basis_vectors"] = recorded[0].basis_size
    elif what == "hvp":
        h = PyHessian(model, F.cross_entropy, data=(x, y), cuda=False)
        v = [torch.randn_like(p) for p in h.params]
        hessian_vector_product(h.gradsH, h.params, v)
    elif what.startswith("top"):
        h = PyHessian(model, F.cross_entropy, data=(x, y), cuda=False)
        values, _ = h.eigenvalues(maxIter=100, tol=1e-3, top_n=int(what[3:]))
        out.update(eigenvalues=values)
    elif what == "fingerprint":
        from basinscope.hessian import HessianOperator
        from basinscope.hessian._fingerprint import data_digest

        op = HessianOperator(obj)
        v = op.random(1, 0)
        op.matmat(v)  # builds the graph
        digest, hvp = [], []
        for _ in range(5):
            t = time.perf_counter()
            data_digest(obj)
            digest.append(time.perf_counter() - t)
            t = time.perf_counter()
            op.matmat(v)
            hvp.append(time.perf_counter() - t)
        out.update(digest_ms=1e3 * statistics.median(digest), hvp_ms=1e3 * statistics.median(hvp))
    else:
        raise SystemExit(f"unknown case {case!r}")
    out["seconds"] = time.perf_counter() - t0
    out["peak_above_rest_bytes"] = _status()["VmHWM"] - rest
    return out


def spawn(case: str, threads: int, batch: int, pythonpath: str) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", PYTHONPATH=pythonpath, OMP_NUM_THREADS=str(threads))
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--case",
        case,
        "--threads",
        str(threads),
        "--batch",
        str(batch),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16, help="examples in the one batch")
    ap.add_argument("--old", help="directory holding the package before the lazily grown basis")
    ap.add_argument("--ours", default=str(HERE.parent), help="directory holding the package to measure")
    ap.add_argument(
        "--cases",
        default="hvp_ours,top1_ours,top5_ours,top5_ours_f64,hvp_pyhessian,top1_pyhessian,top5_pyhessian,fingerprint_ours",
    )
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.threads, args.batch)))
        return
    ours = args.ours
    cases = [(c, ours) for c in args.cases.split(",")]
    if args.old:
        cases += [("hvp_old", args.old), ("top1_old", args.old), ("top5_old", args.old)]
    runs: dict[str, list[dict]] = {c: [] for c, _ in cases}
    t_start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for rep in range(args.reps):  # interleaved: a drifting machine affects every case alike
        for case, path in cases:
            r = spawn(case, args.threads, args.batch, path)
            runs[case].append(r)
            print(json.dumps({"rep": rep, **r}), flush=True)
    summary = {
        "batch": args.batch,
        "threads": args.threads,
        "started": t_start,
        "ended": time.strftime("%H:%M:%S UTC", time.gmtime()),
        "load": os.getloadavg(),
    }
    for case, rs in runs.items():
        summary[case] = {"peak_above_rest_MB": statistics.median(r["peak_above_rest_bytes"] for r in rs) / 2**20}
    for lib, base in (
        ("_ours", "hvp_ours"),
        ("_f64", "hvp_ours"),
        ("_pyhessian", "hvp_pyhessian"),
        ("_old", "hvp_old"),
    ):
        if base not in runs:
            continue
        b = statistics.median(r["peak_above_rest_bytes"] for r in runs[base])
        for case, rs in runs.items():
            if case.endswith(lib) and case.startswith("top"):
                n = rs[0]["params"]
                extra = [(r["peak_above_rest_bytes"] - b) / n for r in rs]
                summary[case]["extra_bytes_per_param"] = statistics.median(extra)
                summary[case]["extra_bytes_per_param_runs"] = extra
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
