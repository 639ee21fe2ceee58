"""Host synchronizations on the per-step paths, found by torch's CUDA sync debug mode (run by hand or by
``benchmarks/gpu_check.sh``; ``tests/test_gpu_check.py`` runs it on the CPU).

Per-step paths that must not synchronize run under ``torch.cuda.set_sync_debug_mode("error")``, where any
synchronizing CUDA call raises:

* ``sgd_step``     :class:`basinscope.optim.SGD` (tensor learning rate, momentum) steps;
* ``salr_step``    :class:`basinscope.optim.SGDSALR` steps, measuring ones included (the probe, Algorithm 2);
* ``salr_released_step`` the same with ``variant="released"`` (clamped walk, percentiles on the device);
* ``swa_step``     an SGD step at the cyclic rate plus :class:`basinscope.optim.WeightAverager` updates;
* ``sam_step``     :class:`basinscope.optim.SAM` steps;
* ``hvp``          :class:`basinscope.hessian.hvp.HessianOperator` products, as Lanczos calls them.

Paths that synchronize by design run under ``"warn"``: every synchronizing call is recorded with the innermost
basinscope line that made it, and each must be in :data:`DOCUMENTED` (the reason is printed; the list and the
reasons are in docs/benchmarks/gpu.md). A line hit once per grid point (the surface) or more than once per
Lanczos step would be a regression and fails:

* ``lanczos``      :func:`basinscope.hessian.top_eigenvalues` (one transfer of α_j, β_j per step);
* ``surface_grid`` :func:`basinscope.surface.plane` (values fetched once per checkpoint of the grid).

Without CUDA the same code runs on the CPU (the sync debug mode exists only in CUDA builds), which checks that
the script and the paths work; ``"cuda": false`` in the output says nothing was checked for synchronization.

Run: ``python benchmarks/sync_check.py [--device cuda] [--json sync.json]``; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: (file, function) of a synchronizing call that is there by design → why.
DOCUMENTED: dict[tuple[str, str], str] = {
    ("lanczos.py", "step"): "α_j and β_j go to the host once per Lanczos step (a.cpu(), b.cpu()): the tridiagonal "
    "eigenproblem, the breakdown test and the finiteness check need them",
    ("eigen.py", "_start_vector"): "the gradient start: its norm is tested (zero or not finite) once per call",
    ("eigen.py", "_lanczos"): "convergence tests on host copies (none expected: T_m lives on the host)",
    ("grid.py", "_to_host"): "surface values go to the host once per checkpoint of the grid (and at the end), "
    "not per point",
    ("grid.py", "evaluate_points"): "the grid's setup, once per call",
    ("plane.py", "plane_basis"): "the plane's basis: the norms that reject duplicate or collinear points and the "
    "points' coordinates, once per call",
    ("plane.py", "plane"): "the marks' coordinates in the plane, once per call",
    ("params.py", "gram_schmidt"): "Gram-Schmidt: the norms of the basis vectors, once per call",
    ("points.py", "prepare_states"): "the points' states are checked and converted once per call",
}


def _problem(device: torch.device, n: int = 256, width: int = 64):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 10)).to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 20, generator=g).to(device)
    y = torch.randint(0, 10, (n,), generator=g).to(device)
    return model, x, y


def _closure(opt, model, x, y):
    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return closure


def sgd_step(device, steps):
    from basinscope.optim import SGD

    model, x, y = _problem(device)
    opt = SGD(model.parameters(), lr=torch.tensor(0.05, device=device), momentum=0.9)
    return lambda: [opt.step(_closure(opt, model, x, y)) for _ in range(steps)]


def salr_step(device, steps):
    from basinscope.optim import SGDSALR

    model, x, y = _problem(device)
    opt = SGDSALR(model, F.cross_entropy, lr=0.05, c=2, n_descent=2, n_ascent=2, gamma=0.01)
    return lambda: [opt.step(_closure(opt, model, x[:64], y[:64]), batch=(x[:64], y[:64])) for _ in range(steps)]


def salr_released_step(device, steps):
    from basinscope.optim import SGDSALR

    model, x, y = _problem(device)
    opt = SGDSALR(model, F.cross_entropy, lr=0.05, c=2, n_descent=2, n_ascent=2, variant="released")
    return lambda: [opt.step(_closure(opt, model, x[:64], y[:64]), batch=(x[:64], y[:64])) for _ in range(steps)]


def swa_step(device, steps):
    from basinscope.optim import SGD, WeightAverager, chc_lr

    model, x, y = _problem(device)
    opt = SGD(model.parameters(), lr=torch.tensor(0.05, device=device))
    avg = WeightAverager()
    named = dict(model.named_parameters())
    rates = [torch.tensor(chc_lr(i, high=0.05, low=0.005, cycle=3), device=device) for i in range(1, steps + 1)]

    def run():
        for i, lr in enumerate(rates, start=1):
            for g in opt.param_groups:
                g["lr"].copy_(lr)
            opt.step(_closure(opt, model, x, y))
            if i % 3 == 0:
                avg.update(named)

    return run


def sam_step(device, steps):
    from basinscope.optim import SAM

    model, x, y = _problem(device)
    opt = SAM(model.parameters(), rho=0.05, lr=0.05)
    return lambda: [opt.step(_closure(opt, model, x, y)) for _ in range(steps)]


def hvp(device, steps):
    from basinscope.hessian.hvp import HessianOperator
    from basinscope.objective import Objective

    model, x, y = _problem(device)
    op = HessianOperator(Objective(model.eval(), F.cross_entropy, (x, y)))
    v = op.random(2, seed=0).to(device)
    return lambda: [op.matmat(v) for _ in range(steps)]


def lanczos(device, steps):
    from basinscope.hessian import top_eigenvalues
    from basinscope.objective import Objective

    model, x, y = _problem(device)
    obj = Objective(model.eval(), F.cross_entropy, (x, y))
    return lambda: top_eigenvalues(obj, k=2, max_iter=steps, tol=1e-30)


def surface_grid(device, steps):
    from basinscope.objective import Objective
    from basinscope.params import random_direction
    from basinscope.surface import plane

    model, x, y = _problem(device)
    obj = Objective(model.eval(), F.cross_entropy, [(x[:128], y[:128]), (x[128:], y[128:])])
    w1 = obj.point()
    w2 = {k: v + 0.1 * d for (k, v), d in zip(w1.items(), random_direction(w1, seed=1).values())}
    w3 = {k: v + 0.1 * d for (k, v), d in zip(w1.items(), random_direction(w1, seed=2).values())}
    return lambda: plane(obj, w1, w2, w3, resolution=steps, bn_data=False, progress=False)


#: name → (builder, mode, steps): per-step paths under "error", the rest under "warn" (module docstring)
CHECKS: dict[str, tuple[Callable, str, int]] = {
    "sgd_step": (sgd_step, "error", 6),
    "salr_step": (salr_step, "error", 6),
    "salr_released_step": (salr_released_step, "error", 6),
    "swa_step": (swa_step, "error", 9),
    "sam_step": (sam_step, "error", 4),
    "hvp": (hvp, "error", 4),
    "lanczos": (lanczos, "warn", 12),
    "surface_grid": (surface_grid, "warn", 6),
}


def _site(stack: list[traceback.FrameSummary]) -> tuple[str, str, int]:
    """The innermost frame inside the basinscope package: (file name, function, line)."""
    for frame in reversed(stack):
        if "/basinscope/" in frame.filename.replace("\\", "/"):
            return Path(frame.filename).name, frame.name, frame.lineno or 0
    frame = stack[-1]
    return Path(frame.filename).name, frame.name, frame.lineno or 0


@contextlib.contextmanager
def _sync_mode(mode: str, cuda: bool) -> Iterator[list[tuple[str, str, int]]]:
    """``torch.cuda.set_sync_debug_mode(mode)`` for the block (CUDA only); yields the recorded sync sites."""
    sites: list[tuple[str, str, int]] = []
    if not cuda:
        yield sites
        return
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        original = warnings.showwarning

        def record(message, category, filename, lineno, file=None, line=None):
            if "synchroniz" in str(message):
                sites.append(_site(traceback.extract_stack()[:-1]))
            else:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode(mode)
        try:
            yield sites
        finally:
            torch.cuda.set_sync_debug_mode(previous)
            warnings.showwarning = original


def run_check(name: str, device: torch.device) -> dict:
    """Build the check's problem, warm it up once, then run it under its sync debug mode."""
    build, mode, steps = CHECKS[name]
    cuda = device.type == "cuda"
    row: dict = {"mode": mode if cuda else "none (no CUDA)", "steps": steps}
    fn = build(device, steps)
    fn()  # warm-up: first-call allocations and library initialization are not per-step costs
    if cuda:
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    try:
        with _sync_mode(mode, cuda) as sites:
            fn()
        if cuda:
            torch.cuda.synchronize(device)
    except RuntimeError as e:  # "error" mode: the first synchronizing call raises
        frames = traceback.extract_tb(e.__traceback__)
        row.update(ok=False, error=" ".join(str(e).split())[:300], site=list(_site(frames)))
        return row
    row["seconds"] = time.perf_counter() - t0
    counts: dict[tuple[str, str, int], int] = {}
    for s in sites:
        counts[s] = counts.get(s, 0) + 1
    found = []
    ok = True
    for (file, func, line), hits in sorted(counts.items()):
        why = DOCUMENTED.get((file, func))
        per_step = hits > steps * (2 if name == "lanczos" else 1) + 2
        ok &= why is not None and not per_step
        found.append({"site": f"{file}:{line} ({func})", "hits": hits, "documented": why, "too_many": per_step})
    row.update(ok=ok, syncs=found)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="host synchronizations on the per-step paths")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--only", default=",".join(CHECKS), help="comma-separated checks (default: all)")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"sync_check: --device {a.device}, but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    out: dict = {"device": str(device), "cuda": device.type == "cuda", "torch": torch.__version__, "checks": {}}
    for name in a.only.split(","):
        try:
            row = run_check(name, device)
        except Exception as e:  # a broken path is a failed check, reported with the others
            row = {"ok": False, "error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"}
        out["checks"][name] = row
        status = "ok" if row["ok"] else "FAIL"
        detail = row.get("error") or "; ".join(f"{s['site']} ×{s['hits']}" for s in row.get("syncs", [])) or "no sync"
        print(f"sync_check {name:13s} {row.get('mode', '?'):15s} {status}  {detail}", flush=True)
    out["ok"] = all(r["ok"] for r in out["checks"].values())
    if a.json is not None:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1))
    if not out["cuda"]:
        print("sync_check: no CUDA device: the paths ran on the CPU; synchronizations were not checked")
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
