"""Extreme eigenvalues and eigenvectors of the Hessian: Lanczos (default) and PyHessian's power iteration.

Lanczos (:mod:`basinscope.hessian.lanczos`, full reorthogonalization) stops when the k wanted Ritz values are
accurate to tol·max|θ|, judged by the a-posteriori bounds of Parlett (The Symmetric Eigenvalue Problem, 1998,
§11.7 and Thm. 11.7.1): with residual r_i = ‖H y_i − θ_i y_i‖ = β_m|s_i[m]|, some eigenvalue lies within r_i of
θ_i, and within r_i²/gap_i when the rest of the spectrum is gap_i away. We estimate gap_i by the distance from
θ_i to the nearest other Ritz value and take min(r_i, r_i²/gap_i) as the error estimate. On a ResNet-20
Hessian (docs/benchmarks/hessian.md) this estimate was 2-3x above the true error at every step, and stopping
on it needs 2-4 fewer products than stopping on the residual for the same accuracy. Like every Krylov method,
an eigenvalue that the start vector barely touches can be missed; ``seed`` varies the start vector.

Start vector. Lanczos converges in fewer steps from a vector close to the wanted eigenvectors. At a trained
point the gradient lies mostly in the span of the top Hessian eigenvectors (Gur-Ari, Roberts, Dyer, "Gradient
Descent Happens in a Tiny Subspace", 2018), and with one cached graph it is free: the graph's outputs are the
gradient. ``start="gradient"`` therefore starts from g/‖g‖ + z/‖z‖ with z Gaussian: the random half gives
every eigenvector a nonzero component with probability 1, as a random start does, so no eigenvalue becomes
unreachable. On the ResNet-20 of docs/benchmarks/hessian.md it stopped after 8 instead of 9 products for the
top eigenvalue and 14 instead of 17 for the top five, at the same accuracy. It is the default for the largest
eigenvalues with a cached graph; streamed data would pay one extra pass for the gradient, so they start at
random unless asked.

Power iteration with deflation follows PyHessian (Yao, Gholami, Keutzer, Mahoney, "PyHessian: Neural Networks
Through the Lens of the Hessian", 2020, Alg. 1): for each of the k eigenvalues, from a random unit vector,
repeat v ← v orthonormalized against the eigenvectors already found, λ ← vᵀHv, v ← Hv/‖Hv‖, until
|λ_new − λ_old|/(|λ_old| + 1e-6) < tol. It finds the eigenvalues of largest *magnitude*; ``which="smallest"``
runs it on H − |λ_max|·I, whose largest-magnitude eigenvalues are the most negative ones of H, shifted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch

from .._checks import check_choice, check_int, check_positive, fail
from .._state import preserve_state
from ..objective import Objective
from ._resume import LanczosCheckpoint
from .hvp import HessianOperator
from .lanczos import LanczosRuns, ritz
from .results import EigenResult

__all__ = ["top_eigenvalues"]


def _default_tol(method: str, dtype: torch.dtype, basis_dtype: torch.dtype = torch.float64) -> float:
    if method == "power":
        return 1e-3  # PyHessian's default
    # float32 products (or a float32 basis) carry ~1e-7 relative rounding: a 1e-5 relative eigenvalue error is as
    # exact as they allow
    return 1e-10 if dtype == torch.float64 and basis_dtype == torch.float64 else 1e-5


def resolve_basis_dtype(basis_dtype: torch.dtype | None, model_dtype: torch.dtype) -> torch.dtype:
    """The Lanczos basis storage: ``None`` means the model's dtype (float64 for float64 models, else float32)."""
    if basis_dtype is None:
        return torch.float64 if model_dtype == torch.float64 else torch.float32
    if basis_dtype not in (torch.float32, torch.float64):
        fail("basis_dtype", "None, torch.float32 or torch.float64", basis_dtype, exc=TypeError)
    return basis_dtype


def _error_estimates(theta: torch.Tensor, res: torch.Tensor) -> torch.Tensor:
    """min(r_i, r_i²/gap_i) for every Ritz value, gap_i = distance to the nearest other Ritz value."""
    if theta.numel() == 1:
        return res.clone()
    diff = (theta[:, None] - theta[None, :]).abs()
    diff.fill_diagonal_(float("inf"))
    gap = diff.min(dim=1).values
    quad = torch.where(gap > 0, res.square() / gap, torch.full_like(res, float("inf")))
    return torch.minimum(res, quad)


def _distributed_seed(obj: Objective, seed: int, backend: str) -> int:
    """Rank 0's ``seed`` on every rank of a distributed objective (the same random probes everywhere); the
    PyHessian backend is refused there (it evaluates one process's data)."""
    seed = obj.common_seed(seed)
    if obj.distributed and backend == "pyhessian":
        fail("backend", "'native' with a distributed objective (PyHessian evaluates one process's data)", backend)
    return seed


def _progress(enabled: bool, total: int, desc: str):
    """A bar over ``total`` HVPs (:func:`basinscope._progress.progress`), or ``None`` when hidden."""
    from .._progress import progress, showing

    return progress(total=total, desc=desc, unit="hvp") if showing(enabled) else None


def _start_vector(op: HessianOperator, start: str, seed: int) -> torch.Tensor:
    """The Lanczos start vector: random, or gradient + random with equal norms (module docstring)."""
    z = op.random(1, seed)
    if start == "random":
        return z
    g = op.gradient()[:, None]
    g_norm = torch.linalg.vector_norm(g)
    if not bool(torch.isfinite(g_norm)) or float(g_norm) == 0.0:
        return z  # at a stationary point (or a non-finite gradient) the gradient carries no direction
    return g.div_(g_norm).add_(z, alpha=1.0 / float(torch.linalg.vector_norm(z)))


def _lanczos(
    op: HessianOperator,
    k: int,
    which: str,
    tol: float,
    max_iter: int,
    seed: int,
    start: str,
    progress: bool,
    ckpt: LanczosCheckpoint,
    basis_dtype: torch.dtype,
):
    steps = min(max_iter, op.dim)
    # a resumed run takes its start vector from the checkpoint (no gradient pass for it)
    if ckpt.exists:
        first = torch.ones(op.dim, 1, dtype=torch.float64, device=op.device)
    else:
        first = _start_vector(op, start, seed)
    runs = LanczosRuns(
        op.matmat, first, steps, on_breakdown="restart", seed=seed, basis_dtype=basis_dtype, name="top_eigenvalues"
    )
    del first
    resumed = ckpt.restore(runs)
    bar = _progress(progress, steps, "lanczos")
    if bar is not None and resumed:
        bar.update(runs.steps[0])
    converged = False
    while True:
        if resumed:  # first judge the restored state, as the interrupted run did after its last step
            more, resumed = not runs.done, False
        else:
            more = runs.step()
            ckpt.step(runs)
            if bar is not None:
                bar.update(1)
        m = runs.steps[0]
        if m >= k:
            theta, S, res = ritz(runs, 0)
            order = torch.arange(m - 1, m - 1 - k, -1) if which == "largest" else torch.arange(k)
            scale = float(theta.abs().max())
            est = _error_estimates(theta, res)
            converged = bool((est[order] <= tol * max(scale, 1e-300)).all())
            if converged or not more:
                break
        elif not more:
            break
    ckpt.flush(runs)
    if bar is not None:
        bar.close()
    if m < k:
        fail("max_iter", f"at least k={k} Lanczos steps", f"{m} steps", raw=True)
    # one float64 Ritz vector at a time, converted to the model's dtype at once
    vectors = [op.to_params(runs.ritz_vector(0, S[:, c])) for c in order.tolist()]
    return (
        [float(v) for v in theta[order]],
        vectors,
        [float(r) for r in res[order]],
        converged or m >= op.dim,
        [m],
        [float(e) for e in est[order]],
    )


def _power(op: HessianOperator, k: int, tol: float, max_iter: int, seed: int, shift: float, progress: bool):
    found: list[torch.Tensor] = []
    values, residuals, iterations = [], [], []
    converged = True
    bar = _progress(progress, k * max_iter, "power")
    for idx in range(k):
        v = op.random(1, seed + idx)[:, 0]
        v = v / torch.linalg.vector_norm(v)
        lam = None
        res = float("nan")
        ok = False
        it = 0
        for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
            for u in found:
                v = v - (u @ v) * u
            v = v / torch.linalg.vector_norm(v)
            hv = op.matvec(v) - shift * v
            tmp = float(v @ hv)
            res = float(torch.linalg.vector_norm(hv - tmp * v))
            v = hv / torch.linalg.vector_norm(hv)
            if bar is not None:
                bar.update(1)
            if lam is not None and abs(lam - tmp) / (abs(lam) + 1e-6) < tol:
                lam = tmp
                ok = True
                break
            lam = tmp
        converged = converged and ok
        found.append(v)
        values.append(lam + shift)
        residuals.append(res)
        iterations.append(it)
    if bar is not None:
        bar.close()
    return values, [op.to_params(u) for u in found], residuals, converged, iterations, list(residuals)


def top_eigenvalues(
    obj: Objective,
    k: int = 1,
    *,
    method: str = "lanczos",
    which: str = "largest",
    tol: float | None = None,
    max_iter: int | None = None,
    seed: int = 0,
    start: str = "auto",
    params: Mapping[str, torch.Tensor] | None = None,
    layers: Sequence[str] | str | None = None,
    backend: str = "native",
    graph: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    basis_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> EigenResult:
    """The k largest (or most negative) eigenvalues of H(θ) and their eigenvectors.

    Args:
        obj: the objective (the Hessian is that of its sample-weighted mean loss over all its data).
        k: how many eigenpairs (1 ≤ k < dimension).
        method: ``"lanczos"`` (default; full reorthogonalization) or ``"power"`` (PyHessian's power
            iteration with deflation; largest magnitude).
        which: ``"largest"`` (algebraically largest for Lanczos) or ``"smallest"`` (most negative).
        tol: Lanczos: the estimated eigenvalue error, relative to max|θ|, at which to stop (module docstring;
            default 1e-10 in float64, 1e-5 in float32); power: relative change of λ between iterations (default
            1e-3, PyHessian's).
        max_iter: Lanczos: largest Krylov dimension (default min(dim, max(100, 10k))); power: iterations per
            eigenvalue (default 100, PyHessian's).
        seed: start vector(s).
        start: Lanczos start vector: ``"gradient"`` (the normalized gradient plus a normalized random vector),
            ``"random"``, or ``"auto"`` (default): ``"gradient"`` for the largest eigenvalues when the gradient is
            free (one cached graph), ``"random"`` otherwise. Power iteration always starts at random, as
            PyHessian's.
        params: the point θ (default: the model's parameters).
        layers: parameter names or prefixes: the spectrum of that principal sub-Hessian.
        backend: ``"native"`` or ``"pyhessian"`` (the PyHessian package's power iteration, for side-by-side
            checks; requires ``method="power"``, ``which="largest"``).
        graph: HVP strategy, see :class:`~basinscope.hessian.hvp.HessianOperator`.
        checkpoint: Lanczos only: a file to save the run's state to every ``checkpoint_every`` steps; called
            again with the same arguments, the run resumes from it and ends with the identical result
            (:mod:`basinscope.hessian._resume`).
        checkpoint_every: Lanczos steps between saves (default 10).
        basis_dtype: Lanczos: storage of the Krylov basis, ``torch.float32`` or ``torch.float64``; default the
            model's dtype (float32 for float32 models). The recurrences are float64 either way
            (:mod:`basinscope.hessian.lanczos`); a float32 basis limits the accuracy to ~1e-7·max|λ| (the default
            ``tol`` is then 1e-5). The basis grows with the steps run: (steps + 1)·dim numbers.
        progress: show a progress bar.

    Returns:
        :class:`EigenResult` with eigenvalues, eigenvectors (parameter dicts), residuals and cost.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope.objective import Objective
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
        >>> obj = Objective(model, F.cross_entropy, (torch.randn(32, 4).double(), torch.randint(0, 3, (32,))))
        >>> res = top_eigenvalues(obj, k=3)
        >>> len(res.eigenvalues), res.cost.hvps > 0
        (3, True)
    """
    if not isinstance(obj, Objective):
        fail("obj", "a basinscope.Objective", obj, exc=TypeError)
    check_choice("method", method, ("lanczos", "power"))
    check_choice("which", which, ("largest", "smallest"))
    check_choice("backend", backend, ("native", "pyhessian"))
    check_int("k", k, minimum=1)
    check_int("seed", seed, minimum=0)
    seed = _distributed_seed(obj, seed, backend)
    check_choice("start", start, ("auto", "gradient", "random"))
    op = HessianOperator(obj, params, layers=layers, graph=graph)
    if start == "auto":
        start = "gradient" if method == "lanczos" and which == "largest" and op.graph == "cached" else "random"
    if method == "power":
        start = "random"
    if k >= op.dim:
        fail("k", f"an integer < the dimension of the Hessian ({op.dim})", k)
    basis_dtype = resolve_basis_dtype(basis_dtype, op.dtype)
    if tol is None:
        tol = _default_tol(method, op.dtype, basis_dtype)
    check_positive("tol", tol)
    if max_iter is None:
        max_iter = 100 if method == "power" else min(op.dim, max(100, 10 * k))
    check_int("max_iter", max_iter, minimum=1)
    if method == "lanczos" and max_iter < k:
        fail("max_iter", f"an integer >= k={k} for Lanczos (the Krylov dimension)", max_iter)
    settings = {"k": k, "tol": tol, "max_iter": max_iter, "seed": seed, "layers": op.names if layers else None}
    settings["graph"] = op.graph
    settings["start"] = start
    if method == "lanczos":
        settings["basis_dtype"] = str(basis_dtype).removeprefix("torch.")
    if checkpoint is not None and (method != "lanczos" or backend != "native"):
        fail("checkpoint", "None unless method='lanczos' with the native backend (only Lanczos resumes)", checkpoint)
    ckpt = LanczosCheckpoint(checkpoint, op, "eigen", {**settings, "which": which}, checkpoint_every)
    if backend == "pyhessian":
        from ._pyhessian import pyhessian_eigenvalues

        if method != "power" or which != "largest":
            fail(
                "backend", "'native' for method='lanczos' or which='smallest' (PyHessian has power iteration)", backend
            )
        return pyhessian_eigenvalues(obj, op, k=k, tol=tol, max_iter=max_iter, seed=seed, settings=settings)

    guard = preserve_state(obj.model) if obj.model is not None else _Null()
    with guard, obj.track() as t:
        try:
            if method == "lanczos":
                out = _lanczos(op, k, which, tol, max_iter, seed, start, progress, ckpt, basis_dtype)
            else:
                shift = 0.0
                if which == "smallest":
                    top = _power(op, 1, tol, max_iter, seed + 104729, 0.0, progress)
                    shift = abs(top[0][0])
                out = _power(op, k, tol, max_iter, seed, shift, progress)
        finally:
            op.release()
    values, vectors, residuals, converged, iterations, errors = out
    return EigenResult(
        eigenvalues=values,
        eigenvectors=vectors,
        residuals=residuals,
        error_estimates=errors,
        converged=converged,
        iterations=iterations,
        which=which,
        method=method,
        backend="native",
        settings=settings,
        cost=t.cost,
    )


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
