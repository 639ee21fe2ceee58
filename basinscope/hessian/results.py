"""Result objects of the Hessian spectra: eigenpairs, trace, spectral density.

Each carries the cost of its computation (``cost.hvps``: Hessian-vector products; ``cost.seconds``) and the
settings that produced it, and saves/loads with :class:`basinscope.results.Result`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..objective import Cost
from ..params import Params
from ..results import Result

__all__ = ["DensityResult", "EigenResult", "TraceResult"]


@dataclasses.dataclass(frozen=True)
class EigenResult(Result):
    """Extreme eigenpairs of the Hessian.

    Attributes:
        eigenvalues: k eigenvalues, ordered from the requested end (largest first for ``which="largest"``,
            most negative first for ``which="smallest"``).
        eigenvectors: unit eigenvectors as parameter dicts (over the selected ``layers``), same order.
        residuals: ‖H y − λ y‖ of each pair (Lanczos: from the recurrence; power: of the last iterate).
        error_estimates: estimated |λ − θ| of each eigenvalue: Lanczos min(r, r²/gap) (Parlett §11.7), power
            the residual (a bound); NaN where unknown (PyHessian backend).
        converged: whether every pair met the tolerance before ``max_iter``.
        iterations: Lanczos steps (Krylov dimension), or power iterations per eigenvalue.
        which, method, backend: what was computed and how.
        settings: the remaining arguments (tol, max_iter, seed, layers, graph).
        cost: what it spent (``cost.hvps``, ``cost.seconds``).
    """

    eigenvalues: list[float]
    eigenvectors: list[Params]
    residuals: list[float]
    converged: bool
    iterations: list[int]
    which: str
    method: str
    backend: str
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)
    error_estimates: list[float] = dataclasses.field(default_factory=list)

    def __getitem__(self, i: int) -> float:
        return self.eigenvalues[i]


@dataclasses.dataclass(frozen=True)
class TraceResult(Result):
    """A stochastic estimate of tr(H) with its standard error.

    Attributes:
        value: the estimate.
        standard_error: its estimated standard deviation (sample std of the probes / √n for Hutchinson;
            of the residual probes, scaled, for Hutch++).
        samples: the per-probe values zᵢᵀHzᵢ (Hutchinson) or (Hutch++) the residual probes' values.
        method, backend: what was computed and how.
        settings: n_samples, seed, layers, graph.
        cost: what it spent.
    """

    value: float
    standard_error: float
    samples: torch.Tensor
    method: str
    backend: str
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)

    def __float__(self) -> float:
        return float(self.value)


@dataclasses.dataclass(frozen=True)
class DensityResult(Result):
    """The spectral density of H by stochastic Lanczos quadrature, broadened by a Gaussian.

    Attributes:
        grid: the points x where the density is evaluated.
        density: ρ(x) on ``grid`` (integrates to 1 when the grid covers the nodes by a few σ).
        nodes: Ritz values θ_{r,i} of each run, shape ``(n_runs, n_iter)`` (NaN where a run stopped early).
        weights: quadrature weights τ_{r,i} = (first component of the i-th eigenvector of T_r)², same shape.
        sigma: the Gaussian's standard deviation.
        backend: ``"native"`` or ``"pyhessian"``.
        settings: n_runs, n_iter, seed, layers, graph.
        cost: what it spent.
    """

    grid: torch.Tensor
    density: torch.Tensor
    nodes: torch.Tensor
    weights: torch.Tensor
    sigma: float
    backend: str
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)

    def moment(self, p: int) -> float:
        """(1/R) Σ_r Σ_i τ_{r,i} θ_{r,i}^p, an estimate of tr(H^p)/n (exact per run for p ≤ 2·n_iter − 1)."""
        mask = ~torch.isnan(self.nodes)
        nodes = torch.where(mask, self.nodes, torch.zeros_like(self.nodes))
        return float((self.weights * nodes**p * mask).sum(dim=1).mean())

    def plot(
        self,
        backend: str = "matplotlib",
        ax: Any = None,
        path: str | None = None,
        *,
        log: bool | None = None,
        **kw: Any,
    ):
        """Draw ρ(x) against the eigenvalue (as Ghorbani et al. 2019, Fig. 1). Returns the figure.

        ``log``: a logarithmic density axis; ``None`` (default) chooses it where the drawn density spans more
        than a decade (:func:`basinscope.style.choose_scale`), which a Gaussian-smoothed spectrum nearly always
        does. The axis is cut at 10⁻¹² of the peak. ``path``: save a PNG/PDF (matplotlib) or self-contained
        HTML (plotly).
        """
        from .. import style

        x = self.grid.detach().cpu().numpy()
        y = self.density.detach().cpu().numpy()
        floor = float(y.max()) * 1e-12 if (y > 0).any() else 1e-12
        shown = y[y >= floor]
        log = style.choose_scale(shown) == "log" if log is None else bool(log)
        if backend == "plotly":
            import plotly.graph_objects as go

            fig = go.Figure(go.Scatter(x=x, y=y, mode="lines", **kw))
            fig.update_layout(xaxis_title="eigenvalue", yaxis_title="density")
            style.plotly_style(fig, log_axes=["yaxis"] if log else [])
            if path is not None:
                from ..results import atomic_output  # a link planted at ``path`` is replaced, not written through

                with atomic_output(path) as tmp:
                    fig.write_html(str(tmp), include_plotlyjs=True)
            return fig
        if backend != "matplotlib":
            raise ValueError(f"backend: expected one of 'matplotlib', 'plotly', got {backend!r}")
        with style.context():
            if ax is None:
                fig, ax = style.new_figure(figsize=(6, 4))
            else:
                fig = ax.figure
            ax.plot(x, y, **kw)
            if log:
                ax.set_yscale("log")
                ax.set_ylim(bottom=max(float(y[y > 0].min()) if (y > 0).any() else 1e-12, floor))
            ax.set_xlabel("eigenvalue")
            ax.set_ylabel("density")
            style.finish(fig)
        if path is not None:
            style.save(fig, path)
        return fig
