"""The Lanczos process with full reorthogonalization, for several independent runs at once.

For a symmetric operator H and a unit start vector q₀, Lanczos (1950) builds an orthonormal basis
Q_m = [q₀ … q_{m−1}] of the Krylov space span{q₀, Hq₀, …, H^{m−1}q₀} in which H is tridiagonal,
Q_mᵀ H Q_m = T_m with diagonal α_j = q_jᵀHq_j and off-diagonal β_j = ‖w_j‖, where

    w_j = H q_j − α_j q_j − β_{j−1} q_{j−1},      q_{j+1} = w_j / β_j.

In floating point the q_j lose orthogonality as Ritz values converge (Paige 1976), which creates spurious
copies of eigenvalues; we therefore orthogonalize w_j against all previous q's, twice ("twice is enough",
Parlett 1998 §6.9). The eigenpairs (θ_i, s_i) of T_m give Ritz values θ_i and Ritz vectors y_i = Q_m s_i with
residual ‖H y_i − θ_i y_i‖ = β_{m−1}·|s_i[m−1]| (Golub & Van Loan, Matrix Computations, §10.1).

Several runs (the columns of the start block) advance in lock step so that each step costs one data pass
for all of them (stochastic Lanczos quadrature, :mod:`landscape.hessian.density`). All recurrences are
float64.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["LanczosRuns", "ritz"]


class LanczosRuns:
    """``r`` independent Lanczos processes on one operator, advanced together.

    Args:
        matmat: ``V (dim, c) -> H·V (dim, c)`` in float64.
        start: start vectors, shape ``(dim, r)`` (normalized here).
        max_steps: the largest Krylov dimension m (memory: r·m·dim float64 values).
        on_breakdown: when β_j ≈ 0 (an invariant subspace was found): ``"stop"`` ends that run (its
            quadrature is then exact), ``"restart"`` continues with a random vector orthogonal to the basis
            (β_j = 0, so T stays block diagonal and its eigenvalues stay exact eigenvalues of H).
        seed: for restart vectors.

    Example:
        >>> A = torch.diag(torch.arange(1.0, 6.0, dtype=torch.float64))
        >>> runs = LanczosRuns(lambda V: A @ V, torch.ones(5, 1, dtype=torch.float64), max_steps=5)
        >>> while runs.step(): pass
        >>> [round(float(t), 10) for t in ritz(runs, 0)[0]]
        [1.0, 2.0, 3.0, 4.0, 5.0]
    """

    def __init__(
        self,
        matmat: Callable[[torch.Tensor], torch.Tensor],
        start: torch.Tensor,
        max_steps: int,
        *,
        on_breakdown: str = "stop",
        seed: int = 0,
    ) -> None:
        self.matmat = matmat
        dim, r = start.shape
        self.dim, self.r, self.max_steps = dim, r, max_steps
        self.on_breakdown = on_breakdown
        self._gen = torch.Generator().manual_seed(seed + 7919)
        dev = start.device
        self.basis = torch.zeros(r, max_steps + 1, dim, dtype=torch.float64, device=dev)
        self.basis[:, 0] = (start / torch.linalg.vector_norm(start, dim=0)).T
        self.alpha = torch.zeros(r, max_steps, dtype=torch.float64)
        self.beta = torch.zeros(r, max_steps, dtype=torch.float64)
        self.steps = [0] * r
        self.active = [True] * r
        self._scale = 0.0

    def state_dict(self) -> dict:
        """The process state (basis so far, recurrences, step counts, restart generator) as CPU tensors."""
        m = max(self.steps) + 1
        return {
            "basis": self.basis[:, : min(m, self.max_steps + 1)].cpu().clone(),
            "alpha": self.alpha.clone(),
            "beta": self.beta.clone(),
            "steps": torch.tensor(self.steps, dtype=torch.int64),
            "active": torch.tensor(self.active, dtype=torch.bool),
            "scale": torch.tensor(self._scale, dtype=torch.float64),
            "generator": self._gen.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (same operator, start block shape and ``max_steps``)."""
        basis = state["basis"]
        if basis.shape[0] != self.r or basis.shape[2] != self.dim or state["alpha"].shape != self.alpha.shape:
            raise ValueError(
                f"checkpoint: expected Lanczos state of {self.r} runs x {self.max_steps} steps x dim {self.dim}, "
                f"got basis {tuple(basis.shape)}, alpha {tuple(state['alpha'].shape)}"
            )
        self.basis[:, : basis.shape[1]] = basis.to(self.basis.device)
        self.alpha.copy_(state["alpha"])
        self.beta.copy_(state["beta"])
        self.steps = [int(s) for s in state["steps"]]
        self.active = [bool(a) for a in state["active"]]
        self._scale = float(state["scale"])
        self._gen.set_state(state["generator"])

    @property
    def done(self) -> bool:
        return not any(self.active)

    def step(self) -> bool:
        """One Lanczos step for every active run (one product per run, all in one ``matmat`` call).

        Returns False when every run has finished (breakdown or ``max_steps``)."""
        idx = [i for i in range(self.r) if self.active[i]]
        if not idx:
            return False
        j = self.steps[idx[0]]  # active runs advance in lock step
        # index with a slice when every run is active: a view instead of a copy of the whole basis
        sel: list[int] | slice = slice(None) if len(idx) == self.r else idx
        q = self.basis[sel, j]  # (c, dim)
        w = self.matmat(q.T.contiguous()).T.contiguous()  # (c, dim)
        a = (q * w).sum(dim=1)
        w = w - a[:, None] * q
        if j > 0:
            w = w - self.beta[idx, j - 1].to(w.device)[:, None] * self.basis[sel, j - 1]
        Q = self.basis[sel, : j + 1]  # (c, j+1, dim)
        for _ in range(2):
            coeff = torch.bmm(Q, w[:, :, None])
            w = w - torch.bmm(Q.transpose(1, 2), coeff)[:, :, 0]
        b = torch.linalg.vector_norm(w, dim=1)
        a_host, b_host = a.cpu(), b.cpu()
        self._scale = max(self._scale, float(a_host.abs().max()), float(b_host.max()))
        for c, i in enumerate(idx):
            self.alpha[i, j] = a_host[c]
            self.steps[i] = j + 1
            if j + 1 >= self.max_steps:
                self.active[i] = False
                self.beta[i, j] = b_host[c]
                continue
            if float(b_host[c]) <= 1e-10 * max(self._scale, 1e-300):
                if self.on_breakdown == "stop" or j + 1 >= self.dim:
                    self.active[i] = False
                    continue
                # continue in the orthogonal complement of the basis found so far
                z = torch.randn(self.dim, generator=self._gen, dtype=torch.float64).to(w.device)
                Qi = self.basis[i, : j + 1]
                for _ in range(2):
                    z = z - Qi.T @ (Qi @ z)
                self.basis[i, j + 1] = z / torch.linalg.vector_norm(z)
                self.beta[i, j] = 0.0
            else:
                self.beta[i, j] = b_host[c]
                self.basis[i, j + 1] = w[c] / b[c]
        return not self.done


def ritz(runs: LanczosRuns, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ritz values (ascending), the eigenvectors S of T and the residual norms β_{m−1}·|S[m−1, :]| of run i."""
    m = runs.steps[i]
    a = runs.alpha[i, :m]
    b = runs.beta[i, : m - 1]
    T = torch.diag(a) + torch.diag(b, 1) + torch.diag(b, -1)
    theta, S = torch.linalg.eigh(T)
    last_beta = runs.beta[i, m - 1] if m < runs.dim else torch.tensor(0.0, dtype=torch.float64)
    residual = (last_beta * S[m - 1, :]).abs()
    return theta, S, residual
