"""Result objects for loss surfaces: :class:`Surface1D` (a line) and :class:`Surface2D` (a plane).

Both are frozen dataclasses deriving from :class:`basinscope.results.Result`, so ``save(path)`` writes
``path.npz`` (the value arrays) and ``path.json`` (settings, labels, cost) atomically and ``load(path)`` reads
them back. Drawing lives in :mod:`basinscope.surface.plot`, imported lazily by ``.plot(...)``; nothing here
imports a plotting library.

Array layout: ``Surface2D.<metric>[j, i]`` is the value at ``(alphas[i], betas[j])`` — rows follow the
second axis, as ``numpy.meshgrid(alphas, betas)`` and ``matplotlib.pyplot.contour`` expect.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._checks import check_choice, fail
from ..objective import Cost
from ..results import Result

__all__ = ["METRICS", "Surface1D", "Surface2D"]

METRICS = ("train_loss", "train_error", "test_loss", "test_error")


def _metric(result: Any, metric: str) -> np.ndarray:
    check_choice("metric", metric, METRICS)
    values = getattr(result, metric)
    if values is None:
        present = [m for m in METRICS if getattr(result, m) is not None]
        fail("metric", "one of the measured metrics " + ", ".join(map(repr, present)), metric)
    return np.asarray(values, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class Surface1D(Result):
    """Train loss (and error) and test loss/error along a line θ(t) = (1 − t)·start + t·end.

    Attributes:
        ts: the line coordinates t, shape ``(n,)``.
        train_loss: f_train(θ(t)), shape ``(n,)``.
        train_error: train error rate (``None`` when the task is not classification).
        test_loss, test_error: the same on the test objective (``None`` without one).
        points: t of the marked points (``[0, 1]`` for start and end, ``[0]`` for a random line's centre).
        point_labels: their names.
        kind: ``"line"``, ``"random_line"``, ``"hessian_line"`` or ``"pca_line"``.
        settings: the arguments that produced the surface (JSON-ready).
        cost: forward passes and samples spent (train + test + BatchNorm recomputes).
        seconds: wall time of the evaluation.
    """

    ts: np.ndarray
    train_loss: np.ndarray
    train_error: np.ndarray | None = None
    test_loss: np.ndarray | None = None
    test_error: np.ndarray | None = None
    points: np.ndarray | None = None
    point_labels: list[str] = dataclasses.field(default_factory=list)
    kind: str = "line"
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)
    seconds: float = 0.0

    def values(self, metric: str) -> np.ndarray:
        """The array of one metric (``"train_loss"``, ``"train_error"``, ``"test_loss"``, ``"test_error"``)."""
        return _metric(self, metric)

    def plot(
        self,
        backend: str = "matplotlib",
        *,
        metric: str | None = None,
        ax: Any = None,
        path: str | None = None,
        title: str | None = None,
    ) -> Any:
        """Draw the line: by default train loss (left axis) and test error (right axis), the style of the
        SWA-revisited paper's Figs. 7–8; with ``metric=`` one curve. An axis is logarithmic only where its curve
        spans more than a decade, and every tick label is a plain number (:mod:`basinscope.style`).
        ``backend="plotly"`` returns a plotly figure (written as self-contained HTML when ``path`` ends in
        ``.html``). Returns the figure."""
        from . import plot

        return plot.plot_line(self, backend=backend, metric=metric, ax=ax, path=path, title=title)


@dataclasses.dataclass(frozen=True)
class Surface2D(Result):
    """Train loss (and error) and test loss/error on a grid θ(α, β) = origin + α·u + β·v.

    Attributes:
        alphas: first-axis coordinates, shape ``(nx,)`` (increasing; nodes are snapped so that the marked
            points lie exactly on grid nodes).
        betas: second-axis coordinates, shape ``(ny,)``.
        train_loss: shape ``(ny, nx)``, ``train_loss[j, i]`` at ``(alphas[i], betas[j])``.
        train_error, test_loss, test_error: same shape, or ``None`` when not measured.
        points: plane coordinates of the marked points, shape ``(k, 2)`` (w1, w2, w3 for :func:`plane`).
        point_labels: their names.
        point_indices: grid indices ``(i, j)`` of points evaluated exactly at their own weights (``-1`` for
            marks that were only projected, e.g. an average).
        kind: ``"plane"``, ``"random_plane"``, ``"hessian_plane"`` or ``"pca_plane"``.
        settings: the arguments that produced the surface (JSON-ready).
        cost: forward passes and samples spent.
        seconds: wall time of the evaluation.
        path: plane coordinates of a path drawn over the surface, shape ``(m, 2)`` (a PCA plane's training
            trajectory projected onto it), or ``None``.
    """

    alphas: np.ndarray
    betas: np.ndarray
    train_loss: np.ndarray
    train_error: np.ndarray | None = None
    test_loss: np.ndarray | None = None
    test_error: np.ndarray | None = None
    points: np.ndarray | None = None
    point_labels: list[str] = dataclasses.field(default_factory=list)
    point_indices: list[list[int]] = dataclasses.field(default_factory=list)
    kind: str = "plane"
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)
    seconds: float = 0.0
    path: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``, the shape of every metric array."""
        return (len(self.betas), len(self.alphas))

    def values(self, metric: str) -> np.ndarray:
        """The ``(ny, nx)`` array of one metric."""
        return _metric(self, metric)

    def at_point(self, label: str, metric: str = "train_loss") -> float:
        """The metric at a marked point that lies on a grid node (evaluated at its exact weights)."""
        if label not in self.point_labels:
            fail("label", "one of " + ", ".join(map(repr, self.point_labels)), label)
        i, j = self.point_indices[self.point_labels.index(label)]
        if i < 0:
            fail("label", "a point evaluated on the grid", f"{label!r}, a projected mark", raw=True)
        return float(self.values(metric)[j, i])

    def plot(
        self,
        backend: str = "matplotlib",
        *,
        metric: str | None = None,
        kind: str | None = None,
        ax: Any = None,
        path: str | None = None,
        levels: int = 20,
        title: str | None = None,
    ) -> Any:
        """Draw the surface.

        matplotlib (``kind="contour"``, default): filled viridis contours and the marked points (labels kept
        apart), the style of Garipov et al. 2018 and the SWA-revisited paper's Fig. 6 — log-spaced levels and a
        log colour scale where the values span more than a decade, even ones otherwise; equal aspect for the
        plane through three points (its basis is orthonormal), free aspect for a random plane (its
        filter-normalized directions are neither orthogonal nor of unit length); ``kind="surface"``: a 3-D
        surface. plotly (``kind="both"``, default): an interactive 3-D surface beside a contour map,
        written as a self-contained HTML file (plotly.js embedded) when ``path`` is given; ``"surface"`` or
        ``"contour"`` alone. ``metric`` defaults to ``"test_error"`` when measured, else ``"train_loss"``.
        Returns the figure.
        """
        from . import plot

        return plot.plot_plane(
            self, backend=backend, metric=metric, kind=kind, ax=ax, path=path, levels=levels, title=title
        )
