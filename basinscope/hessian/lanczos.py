"""The Lanczos process with full reorthogonalization, for several independent runs at once.

For a symmetric operator H and a unit start vector q₀, Lanczos (1950) builds an orthonormal basis
Q_m = [q₀ … q_{m−1}] of the Krylov space span{q₀, Hq₀, …, H^{m−1}q₀} in which H is tridiagonal,
Q_mᵀ H Q_m = T_m with diagonal α_j = q_jᵀHq_j and off-diagonal β_j = ‖w_j‖, where

    w_j = H q_j − α_j q_j − β_{j−1} q_{j−1},      q_{j+1} = w_j / β_j.

In floating point the q_j lose orthogonality as Ritz values converge (Paige 1976), which creates spurious
copies of eigenvalues; we therefore orthogonalize w_j against all previous q's, twice ("twice is enough",
Parlett 1998 §6.9; here by modified Gram–Schmidt). The eigenpairs (θ_i, s_i) of T_m give Ritz values θ_i and
Ritz vectors y_i = Q_m s_i with residual ‖H y_i − θ_i y_i‖ = β_{m−1}·|s_i[m−1]| (Golub & Van Loan, Matrix
Computations, §10.1).

Several runs (the columns of the start block) advance in lock step so that each step costs one data pass
for all of them (stochastic Lanczos quadrature, :mod:`basinscope.hessian.density`).

Memory. The basis is the only thing that grows: it is kept as one ``(runs, dim)`` tensor per step, allocated
when the step is reached, so a run that stops after m steps holds m + 1 vectors whatever ``max_steps`` is.
It is stored in ``basis_dtype`` (float64 by default; the eigenvalue functions pass the model's dtype): a
float32 basis halves the memory. The arithmetic stays float64 whatever the storage: H·q_j, w_j, the dot
products α_j and the reorthogonalization coefficients, β_j and the Ritz vectors are float64, each stored vector
being widened to float64 as it is used (and the product applied to the stored vector itself, so that no
float64 copy of it is alive while the product runs). A float32 basis rounds every q_j to float32 (relative
6e-8), so the computed Q is orthonormal only to about that; on the float64 test problem the converged Ritz values
were within 6e-9·max|λ| of the exact eigenvalues (tests/test_hessian_memory.py) — below the rounding of a
float32 model's own products, so nothing is lost for one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["LanczosRuns", "ritz"]


class LanczosRuns:
    """``r`` independent Lanczos processes on one operator, advanced together.

    Args:
        matmat: ``V (dim, c) -> H·V (dim, c)``. ``V`` holds basis vectors as stored, in ``basis_dtype``; the
            result is used in float64 (converted if need be).
        start: start vectors, shape ``(dim, r)`` (normalized here).
        max_steps: the largest Krylov dimension m.
        on_breakdown: when β_j ≈ 0 (an invariant subspace was found): ``"stop"`` ends that run (its
            quadrature is then exact), ``"restart"`` continues with a random vector orthogonal to the basis
            (β_j = 0, so T stays block diagonal and its eigenvalues stay exact eigenvalues of H).
        seed: for restart vectors.
        basis_dtype: storage of the basis vectors (module docstring): float64 (default) or float32. Memory:
            r·(steps run + 1)·dim numbers of this type, grown as the steps are run.
        name: the computation named in errors.

    Raises:
        ValueError: when a product H·q_j is not finite (checked on the α_j, β_j that every step already copies
            to the host: no extra synchronization).

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
        basis_dtype: torch.dtype = torch.float64,
        name: str = "lanczos",
    ) -> None:
        if basis_dtype not in (torch.float32, torch.float64):
            raise TypeError(f"basis_dtype: expected torch.float32 or torch.float64, got {basis_dtype}")
        self.matmat = matmat
        dim, r = start.shape
        self.dim, self.r, self.max_steps = dim, r, max_steps
        self.on_breakdown = on_breakdown
        self.basis_dtype = basis_dtype
        self.name = name
        self.device = start.device
        self._gen = torch.Generator().manual_seed(seed + 7919)
        first = start.to(torch.float64)
        self._basis: list[torch.Tensor] = [(first / torch.linalg.vector_norm(first, dim=0)).T.to(basis_dtype)]
        self.alpha = torch.zeros(r, max_steps, dtype=torch.float64)
        self.beta = torch.zeros(r, max_steps, dtype=torch.float64)
        self.steps = [0] * r
        self.active = [True] * r
        self._scale = 0.0

    # ------------------------------------------------------------------ the basis
    @property
    def basis_size(self) -> int:
        """How many basis vectors per run are stored (steps run + 1 at most; never ``max_steps`` ahead)."""
        return len(self._basis)

    @property
    def basis_bytes(self) -> int:
        """Bytes held by the stored basis."""
        return sum(q.numel() * q.element_size() for q in self._basis)

    def basis_vector(self, j: int, run: int | None = None) -> torch.Tensor:
        """q_j of every run ``(r, dim)``, or of one run ``(dim,)``, in ``basis_dtype`` (a view, not a copy)."""
        q = self._basis[j]
        return q if run is None else q[run]

    def ritz_vector(self, run: int, coefficients: torch.Tensor) -> torch.Tensor:
        """Q_m s for one run: the float64 combination Σ_j s_j q_j of its first ``len(s)`` basis vectors."""
        y = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for j, c in enumerate(coefficients.tolist()):
            y.add_(self._basis[j][run].to(torch.float64), alpha=c)
        return y

    def state_dict(self) -> dict:
        """The process state (basis so far, recurrences, step counts, restart generator) as CPU tensors."""
        return {
            # one (r, dim) tensor per step, as held: saving makes no stacked copy of the basis
            "basis": [q.cpu() for q in self._basis],
            "alpha": self.alpha.clone(),
            "beta": self.beta.clone(),
            "steps": torch.tensor(self.steps, dtype=torch.int64),
            "active": torch.tensor(self.active, dtype=torch.bool),
            "scale": torch.tensor(self._scale, dtype=torch.float64),
            "generator": self._gen.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (same operator, start block shape, ``max_steps`` and basis dtype)."""
        basis = list(state["basis"])
        shapes = {tuple(q.shape) for q in basis}
        dtypes = {q.dtype for q in basis}
        if (
            shapes != {(self.r, self.dim)}
            or dtypes != {self.basis_dtype}
            or not 1 <= len(basis) <= self.max_steps + 1
            or state["alpha"].shape != self.alpha.shape
        ):
            raise ValueError(
                f"checkpoint: expected Lanczos state of {self.r} runs x {self.max_steps} steps x dim {self.dim} "
                f"({self.basis_dtype}), got {len(basis)} basis vectors of shapes {sorted(shapes)} "
                f"({sorted(map(str, dtypes))}), alpha {tuple(state['alpha'].shape)}"
            )
        self._basis = [q.to(self.device) for q in basis]
        self.alpha.copy_(state["alpha"])
        self.beta.copy_(state["beta"])
        self.steps = [int(s) for s in state["steps"]]
        self.active = [bool(a) for a in state["active"]]
        self._scale = float(state["scale"])
        self._gen.set_state(state["generator"])

    @property
    def done(self) -> bool:
        return not any(self.active)

    # ------------------------------------------------------------------ one step
    def _wide(self, j: int, sel: list[int] | slice) -> torch.Tensor:
        """q_j of the selected runs in float64 (a view when the basis is float64 and all runs are selected)."""
        return self._basis[j][sel].to(torch.float64)

    def step(self) -> bool:
        """One Lanczos step for every active run (one product per run, all in one ``matmat`` call).

        Returns False when every run has finished (breakdown or ``max_steps``)."""
        idx = [i for i in range(self.r) if self.active[i]]
        if not idx:
            return False
        j = self.steps[idx[0]]  # active runs advance in lock step
        # index with a slice when every run is active: a view instead of a copy
        sel: list[int] | slice = slice(None) if len(idx) == self.r else idx
        # the product is applied to the stored vector itself: its float64 copy is made only after the product,
        # when the product's own temporaries are freed (the peak of a step is inside the product)
        stored = self._basis[j][sel]  # (c, dim) in basis_dtype
        w = self.matmat(stored.T).to(torch.float64).T.contiguous()  # (c, dim) float64 (no copy for one run)
        if w.untyped_storage().data_ptr() == stored.untyped_storage().data_ptr():
            w = w.clone()  # updated in place below: never through a view of the basis
        del stored
        q = self._wide(j, sel)  # (c, dim) float64
        a = _dots(q, w)
        w.addcmul_(q, a[:, None], value=-1.0)
        del q
        if j > 0:
            w.addcmul_(self._wide(j - 1, sel), self.beta[idx, j - 1].to(w.device)[:, None], value=-1.0)
        # full reorthogonalization, twice, one stored vector at a time (modified Gram-Schmidt): only one
        # widened copy of a basis vector exists at any time
        for _ in range(2):
            for i in range(j + 1):
                qi = self._wide(i, sel)
                w.addcmul_(qi, _dots(qi, w)[:, None], value=-1.0)
        b = torch.linalg.vector_norm(w, dim=1)
        a_host, b_host = a.cpu(), b.cpu()  # the one host transfer of a step
        if not (bool(torch.isfinite(a_host).all()) and bool(torch.isfinite(b_host).all())):
            raise ValueError(
                f"{self.name}: expected finite Hessian-vector products, got a non-finite one at Lanczos step "
                f"{j + 1} (the loss or the model produce NaN/inf at this point)"
            )
        self._scale = max(self._scale, float(a_host.abs().max()), float(b_host.max()))
        nxt: torch.Tensor | None = None
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
                for _ in range(2):
                    for k in range(j + 1):
                        qk = self._basis[k][i].to(torch.float64)
                        z.addcmul_(qk, qk @ z, value=-1.0)
                vec = z / torch.linalg.vector_norm(z)
                self.beta[i, j] = 0.0
            else:
                self.beta[i, j] = b_host[c]
                vec = w[c] / b[c]
            if nxt is None:  # allocated only when some run goes on: the basis grows with the steps run
                nxt = torch.zeros(self.r, self.dim, dtype=self.basis_dtype, device=self.device)
            nxt[i] = vec
        if nxt is not None:
            self._basis.append(nxt)
        return not self.done


def _dots(q: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products of two ``(c, dim)`` float64 matrices without a ``(c, dim)`` temporary."""
    return torch.bmm(q[:, None, :], w[:, :, None])[:, 0, 0]


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
