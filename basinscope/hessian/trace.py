"""Stochastic estimates of tr(H): Hutchinson and Hutch++.

Hutchinson (1989): for Rademacher probes z_i (entries ±1, E[zzᵀ] = I),

    tr(H) ≈ (1/m) Σ_i z_iᵀ H z_i,        standard error = std_i(z_iᵀHz_i) / √m.

Hutch++ (Meyer, Musco, Musco, Woodruff, "Hutch++: Optimal Stochastic Trace Estimation", SOSA 2021, Alg. 1):
with m products split in three, S ∈ R^{n×m/3} random, Q = orth(H S), G ∈ R^{n×(m − 2m/3)} Rademacher,

    tr(H) ≈ tr(Qᵀ H Q) + (1/|G|) Σ_j g_jᵀ (I − QQᵀ) H (I − QQᵀ) g_j.

The low-rank part is exact for the deflated subspace; the residual part is Hutchinson on what is left, whose
variance is smaller when H has a few large eigenvalues (as neural-network Hessians do). Its standard error is
the residual probes' std / √|G|.

Probes are applied ``block_size`` per data pass (:meth:`HessianOperator.matmat`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch

from .._checks import check_choice, check_int, fail
from .._state import preserve_state
from ..objective import Objective
from ._resume import ProductCheckpoint
from .eigen import _distributed_seed, _Null, _progress
from .hvp import HessianOperator
from .results import TraceResult

__all__ = ["trace"]


_PHASES = {"probes": "", "sketch": " of the Hutch++ sketch", "range": " of the Hutch++ range", "residual": ""}


def _check_finite(products: torch.Tensor, phase: str) -> None:
    """Raise when a column of H·Z is not finite (one host transfer per phase, after its last product)."""
    finite = torch.isfinite(products).all(dim=0).cpu()
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0, 0])
        fail(
            "trace",
            "finite Hessian-vector products",
            f"a non-finite one for probe {first + 1} of {finite.numel()}{_PHASES[phase]} "
            "(the loss or the model produce NaN/inf at this point)",
            raw=True,
        )


def _blocked(
    op: HessianOperator, Z: torch.Tensor, block_size: int, bar, ckpt: ProductCheckpoint, phase: str
) -> torch.Tensor:
    out = torch.empty_like(Z)
    m = Z.shape[1]
    first = 0
    saved = ckpt.done(phase)
    if saved is not None:  # resumed: the columns computed before the interruption
        first = saved.shape[1]
        out[:, :first] = saved.to(out.device)
        if bar is not None:
            bar.update(first)
    for start in range(first, m, block_size):
        end = min(start + block_size, m)
        out[:, start:end] = op.matmat(Z[:, start:end])
        ckpt.record(phase, out[:, :end], final=end == m)
        if bar is not None:
            bar.update(end - start)
    _check_finite(out, phase)
    return out


def trace(
    obj: Objective,
    *,
    method: str = "hutchinson",
    n_samples: int = 100,
    seed: int = 0,
    params: Mapping[str, torch.Tensor] | None = None,
    layers: Sequence[str] | str | None = None,
    backend: str = "native",
    graph: str = "auto",
    block_size: int = 10,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    progress: bool = False,
) -> TraceResult:
    """tr(H(θ)) by Hutchinson's or the Hutch++ estimator, with a standard error.

    Args:
        obj: the objective.
        method: ``"hutchinson"`` (default) or ``"hutch++"``.
        n_samples: Hessian-vector products to spend (Hutch++: ≥ 3, split n/3 sketch, n/3 for H·Q, rest
            residual probes).
        seed: probe vectors.
        params, layers, graph, progress: as in :func:`~basinscope.hessian.top_eigenvalues`.
        backend: ``"native"`` or ``"pyhessian"`` (PyHessian's ``trace(maxIter=n_samples, tol=1e-3)``,
            Hutchinson only; note its early stop when the running mean is negative).
        block_size: probes per data pass.
        checkpoint, checkpoint_every: save the products computed so far to this file every
            ``checkpoint_every`` data passes; called again with the same arguments, the estimate resumes from it
            and ends with the identical result (:mod:`basinscope.hessian._resume`).

    Raises:
        ValueError: when a Hessian-vector product is not finite (the loss or the model produce NaN/inf at θ);
            the message names the probe. Checked once per phase (Hutchinson: one, Hutch++: three) after its last
            product, so the product loop does not synchronize with the device.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope.objective import Objective
        >>> model = torch.nn.Linear(4, 3).double()
        >>> obj = Objective(model, F.cross_entropy, (torch.randn(32, 4).double(), torch.randint(0, 3, (32,))))
        >>> res = trace(obj, n_samples=50)
        >>> res.cost.hvps
        50
    """
    if not isinstance(obj, Objective):
        fail("obj", "a basinscope.Objective", obj, exc=TypeError)
    check_choice("method", method, ("hutchinson", "hutch++"))
    check_choice("backend", backend, ("native", "pyhessian"))
    check_int("n_samples", n_samples, minimum=3 if method == "hutch++" else 1)
    check_int("seed", seed, minimum=0)
    seed = _distributed_seed(obj, seed, backend)
    check_int("block_size", block_size, minimum=1)
    op = HessianOperator(obj, params, layers=layers, graph=graph)
    settings = {"n_samples": n_samples, "seed": seed, "layers": op.names if layers else None, "graph": op.graph}
    if backend == "pyhessian":
        from ._pyhessian import pyhessian_trace

        if method != "hutchinson":
            fail("backend", "'native' for method='hutch++' (PyHessian has Hutchinson only)", backend)
        if checkpoint is not None:
            fail("checkpoint", "None with backend='pyhessian' (only native runs resume)", checkpoint)
        return pyhessian_trace(obj, op, n_samples=n_samples, seed=seed, settings=settings)
    ckpt = ProductCheckpoint(
        checkpoint, op, "trace", {**settings, "method": method, "block_size": block_size}, checkpoint_every
    )

    guard = preserve_state(obj.model) if obj.model is not None else _Null()
    bar = _progress(progress, n_samples, method)
    with guard, obj.track() as t:
        try:
            if method == "hutchinson":
                Z = op.random(n_samples, seed, "rademacher")
                HZ = _blocked(op, Z, block_size, bar, ckpt, "probes")
                samples = (Z * HZ).sum(dim=0).cpu()
                value = samples.mean()
                se = samples.std(unbiased=True) / n_samples**0.5 if n_samples > 1 else torch.tensor(float("inf"))
            else:
                n_sketch = n_samples // 3
                n_probe = n_samples - 2 * n_sketch
                S = op.random(n_sketch, seed, "rademacher")
                Q, _ = torch.linalg.qr(_blocked(op, S, block_size, bar, ckpt, "sketch"))
                HQ = _blocked(op, Q, block_size, bar, ckpt, "range")
                low_rank = (Q * HQ).sum()
                G = op.random(n_probe, seed + 1, "rademacher")
                G = G - Q @ (Q.T @ G)
                HG = _blocked(op, G, block_size, bar, ckpt, "residual")
                samples = (G * HG).sum(dim=0).cpu()
                value = low_rank.cpu() + samples.mean()
                se = samples.std(unbiased=True) / n_probe**0.5 if n_probe > 1 else torch.tensor(float("inf"))
        finally:
            op.release()
            if bar is not None:
                bar.close()
    return TraceResult(
        value=float(value),
        standard_error=float(se),
        samples=samples,
        method=method,
        backend="native",
        settings=settings,
        cost=t.cost,
    )
