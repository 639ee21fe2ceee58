"""Spectral density of the Hessian by stochastic Lanczos quadrature (SLQ).

The empirical spectral density φ(t) = (1/n) Σ_i δ(t − λ_i) is smoothed by a Gaussian,
φ_σ(t) = (1/n) Σ_i g_σ(t − λ_i) = (1/n) tr g_σ(tI − H), and the trace is estimated with random unit vectors v
(Lin, Saad, Yang, "Approximating spectral densities of large matrices", SIAM Review 2016; Ghorbani, Krishnan,
Xiao, "An Investigation into Neural Net Optimization via Hessian Eigenvalue Density", ICML 2019, eqs. 3–6):

    vᵀ g_σ(tI − H) v ≈ Σ_{i=1}^{m} τ_i g_σ(t − θ_i),

where θ_i are the eigenvalues of the m×m Lanczos matrix T started at v and τ_i = (e₁ᵀ s_i)² the squared first
components of its eigenvectors (Gauss quadrature: exact for polynomials of degree ≤ 2m − 1). Averaging over
``n_runs`` Rademacher vectors gives

    φ̂(t) = (1/R) Σ_r Σ_i τ_{r,i} g_σ(t − θ_{r,i}),   g_σ(x) = exp(−x²/(2σ²)) / (σ√(2π)).

This is PyHessian's ``density`` (Rademacher start, full reorthogonalization); here the R runs advance in lock
step, applying R vectors per data pass.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .._checks import check_int, check_positive, fail
from .._state import preserve_state
from ..objective import Objective
from ._resume import LanczosCheckpoint
from .eigen import _distributed_seed, _Null, _progress, resolve_basis_dtype
from .hvp import HessianOperator
from .lanczos import LanczosRuns, ritz
from .results import DensityResult

__all__ = ["broaden", "density"]


def broaden(
    nodes: torch.Tensor, weights: torch.Tensor, *, sigma: float | None = None, grid: int | Sequence[float] = 1000
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Gaussian-broadened density (1/R) Σ_r Σ_i τ_{r,i} g_σ(t − θ_{r,i}) on a grid. Returns (grid, density, σ).

    ``sigma`` defaults to 1% of the spread of the nodes; an integer ``grid`` spans the nodes with a margin
    of 5σ on each side (so the density integrates to 1 up to the trapezoid rule's error)."""
    mask = ~torch.isnan(nodes)
    finite = nodes[mask]
    lo, hi = float(finite.min()), float(finite.max())
    spread = hi - lo
    if sigma is None:
        sigma = 0.01 * spread if spread > 0 else max(abs(hi), 1.0) * 1e-3
    check_positive("sigma", sigma)
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        check_int("grid", int(grid), minimum=2)
        t = torch.linspace(lo - 5 * sigma, hi + 5 * sigma, int(grid), dtype=torch.float64)
    else:
        t = torch.as_tensor(np.asarray(grid, dtype=np.float64))
        if t.dim() != 1 or t.numel() < 2:
            fail("grid", "a number of points >= 2 or a 1-D array of >= 2 points", grid)
    theta = torch.where(mask, nodes, torch.zeros_like(nodes)).reshape(-1)
    tau = (weights * mask).reshape(-1) / nodes.shape[0]
    rho = torch.zeros_like(t)
    for start in range(0, theta.numel(), 256):  # bounded memory: grid × 256 at a time
        d = t[:, None] - theta[None, start : start + 256]
        rho += (tau[None, start : start + 256] * torch.exp(-0.5 * (d / sigma) ** 2)).sum(dim=1)
    return t, rho / (sigma * math.sqrt(2 * math.pi)), float(sigma)


def density(
    obj: Objective,
    *,
    n_runs: int = 1,
    n_iter: int = 100,
    sigma: float | None = None,
    grid: int | Sequence[float] = 1000,
    seed: int = 0,
    params: Mapping[str, torch.Tensor] | None = None,
    layers: Sequence[str] | str | None = None,
    backend: str = "native",
    graph: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    basis_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> DensityResult:
    """Eigenvalue density of H(θ) by stochastic Lanczos quadrature (Ghorbani et al. 2019).

    Args:
        obj: the objective.
        n_runs: independent Rademacher start vectors R (PyHessian's ``n_v``; default 1 as there).
        n_iter: Lanczos steps m per run (PyHessian's ``iter``; default 100 as there); capped at the dimension.
        sigma: Gaussian broadening (default 1% of the spread of the Ritz values).
        grid: number of grid points or the grid itself.
        seed, params, layers, graph, progress: as in :func:`~basinscope.hessian.top_eigenvalues`.
        checkpoint, checkpoint_every: save the Lanczos runs' state to this file every ``checkpoint_every``
            steps; called again with the same arguments, the computation resumes from it and ends with the
            identical result (:mod:`basinscope.hessian._resume`).
        basis_dtype: storage of the Lanczos bases (``torch.float32`` or ``torch.float64``; default the model's
            dtype), n_runs·(n_iter + 1)·dim numbers grown as the steps are run; the recurrences are float64
            either way (:mod:`basinscope.hessian.lanczos`).
        backend: ``"native"`` or ``"pyhessian"`` (PyHessian's ``density(iter=n_iter, n_v=n_runs)`` with a
            scoped ``torch.eig`` shim, broadened here the same way).

    Costs n_runs·n_iter Hessian-vector products in n_iter data passes.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope.objective import Objective
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
        >>> obj = Objective(model, F.cross_entropy, (torch.randn(32, 4).double(), torch.randint(0, 3, (32,))))
        >>> res = density(obj, n_runs=4, n_iter=20)
        >>> round(float(torch.trapezoid(res.density, res.grid)), 3)
        1.0
    """
    if not isinstance(obj, Objective):
        fail("obj", "a basinscope.Objective", obj, exc=TypeError)
    if backend not in ("native", "pyhessian"):
        fail("backend", "one of 'native', 'pyhessian'", backend)
    check_int("n_runs", n_runs, minimum=1)
    check_int("n_iter", n_iter, minimum=1)
    check_int("seed", seed, minimum=0)
    seed = _distributed_seed(obj, seed, backend)
    if sigma is not None:
        check_positive("sigma", sigma)
    op = HessianOperator(obj, params, layers=layers, graph=graph)
    steps = min(n_iter, op.dim)
    settings = {"n_runs": n_runs, "n_iter": steps, "seed": seed, "layers": op.names if layers else None}
    settings["graph"] = op.graph
    basis_dtype = resolve_basis_dtype(basis_dtype, op.dtype)
    if backend == "native":
        settings["basis_dtype"] = str(basis_dtype).removeprefix("torch.")
    if checkpoint is not None and backend != "native":
        fail("checkpoint", "None with backend='pyhessian' (only native runs resume)", checkpoint)
    ckpt = LanczosCheckpoint(checkpoint, op, "density", settings, checkpoint_every)
    if backend == "pyhessian":
        from ._pyhessian import pyhessian_density

        nodes, weights, cost = pyhessian_density(obj, op, n_runs=n_runs, n_iter=steps, seed=seed)
    else:
        guard = preserve_state(obj.model) if obj.model is not None else _Null()
        bar = _progress(progress, steps, "slq")
        with guard, obj.track() as t:
            try:
                runs = LanczosRuns(
                    op.matmat,
                    op.random(n_runs, seed, "rademacher"),
                    steps,
                    on_breakdown="stop",
                    basis_dtype=basis_dtype,
                    name="density",
                )
                if ckpt.restore(runs) and bar is not None:
                    bar.update(max(runs.steps))
                while not runs.done:
                    runs.step()
                    ckpt.step(runs, final=runs.done)
                    if bar is not None:
                        bar.update(1)
            finally:
                op.release()
                if bar is not None:
                    bar.close()
        cost = t.cost
        nodes = torch.full((n_runs, steps), float("nan"), dtype=torch.float64)
        weights = torch.zeros((n_runs, steps), dtype=torch.float64)
        for r in range(n_runs):
            theta, S, _ = ritz(runs, r)
            m = theta.numel()
            nodes[r, :m] = theta
            weights[r, :m] = S[0, :] ** 2
    t_grid, rho, sig = broaden(nodes, weights, sigma=sigma, grid=grid)
    return DensityResult(
        grid=t_grid,
        density=rho,
        nodes=nodes,
        weights=weights,
        sigma=sig,
        backend=backend,
        settings=settings,
        cost=cost,
    )
