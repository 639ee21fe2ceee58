"""Result objects of the 1-D demos, with ``.plot(backend="matplotlib"|"plotly", ax=None, path=None)``.

Plotting libraries are imported inside the renderer only. Matplotlib figures are built on the Agg canvas
(no pyplot state) and saved as PNG; plotly figures are written as self-contained HTML
(``include_plotlyjs=True``: no CDN).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from .._checks import check_choice, fail
from ..objective import Cost
from ..results import Result, atomic_output

__all__ = ["EscapeResult", "SALRTrace", "SharpnessProfile", "render"]

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def render(panels: list[dict[str, Any]], backend: str, ax: Any = None, path: str | os.PathLike | None = None):
    """Draw panels side by side. A panel: ``title, xlabel, ylabel, lines`` and optionally ``ylabel2, lines2``
    (right-hand axis) and ``spans`` ((lo, hi) shaded x-intervals). A line: ``x, y, label`` and optionally
    ``markers`` (bool), ``colour``. Returns the figure; writes PNG (matplotlib) or HTML (plotly) to ``path``."""
    backend = check_choice("backend", backend, ("matplotlib", "plotly"))
    if backend == "matplotlib":
        return _render_mpl(panels, ax, path)
    if ax is not None:
        fail("ax", "None for backend='plotly'", ax)
    return _render_plotly(panels, path)


def _render_mpl(panels, ax, path):
    from .. import style

    with style.context():
        if ax is None:
            fig, axes = style.new_figure(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
            axes = list(axes[0])
        else:
            axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
            if len(axes) != len(panels):
                fail("ax", f"{len(panels)} matplotlib Axes (one per panel)", f"{len(axes)}", raw=True)
            fig = axes[0].figure
        for a, panel in zip(axes, panels):
            for lo, hi in panel.get("spans", []):
                a.axvspan(lo, hi, color="0.85", zorder=0)
            handles = []
            for i, line in enumerate(panel["lines"]):
                kw = {"marker": "o", "markersize": 3, "linestyle": "-" if line.get("joined") else ""}
                kw = kw if line.get("markers") else {}
                colour = line.get("colour", _COLOURS[i])
                handles += a.plot(line["x"], line["y"], label=line["label"], color=colour, **kw)
            a.set_title(panel["title"])
            a.set_xlabel(panel["xlabel"])
            a.set_ylabel(panel["ylabel"])
            if panel.get("lines2"):
                b = a.twinx()
                b.grid(False)
                b.spines["right"].set_visible(True)
                for j, line in enumerate(panel["lines2"]):
                    colour = line.get("colour", _COLOURS[len(panel["lines"]) + j])
                    handles += b.plot(line["x"], line["y"], label=line["label"], color=colour, linestyle="--")
                b.set_ylabel(panel["ylabel2"])
            a.legend(handles=handles)
        style.finish(fig)
    if path is not None:
        style.save(fig, path, dpi=110)  # atomically, never through a link planted at path
    return fig


def _render_plotly(panels, path):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    specs = [[{"secondary_y": bool(p.get("lines2"))} for p in panels]]
    fig = make_subplots(rows=1, cols=len(panels), specs=specs, subplot_titles=[p["title"] for p in panels])
    for c, panel in enumerate(panels, start=1):
        for lo, hi in panel.get("spans", []):
            fig.add_vrect(x0=lo, x1=hi, fillcolor="lightgrey", opacity=0.5, line_width=0, row=1, col=c)
        groups = [(panel["lines"], False), (panel.get("lines2", []), True)]
        k = 0
        for lines, secondary in groups:
            for line in lines:
                mode = "lines+markers" if line.get("markers") and line.get("joined") else "lines"
                mode = "markers" if line.get("markers") and not line.get("joined") else mode
                trace = go.Scatter(
                    x=np.asarray(line["x"]).tolist(),
                    y=np.asarray(line["y"]).tolist(),
                    name=line["label"],
                    mode=mode,
                    line={
                        "color": line.get("colour", _COLOURS[k % len(_COLOURS)]),
                        "dash": "dash" if secondary else None,
                    },
                )
                fig.add_trace(trace, row=1, col=c, secondary_y=secondary if panel.get("lines2") else None)
                k += 1
        fig.update_xaxes(title_text=panel["xlabel"], row=1, col=c)
        fig.update_yaxes(
            title_text=panel["ylabel"], row=1, col=c, **({"secondary_y": False} if panel.get("lines2") else {})
        )
        if panel.get("lines2"):
            fig.update_yaxes(title_text=panel["ylabel2"], row=1, col=c, secondary_y=True)
    fig.update_layout(width=520 * len(panels), height=430)
    from .. import style

    style.plotly_style(fig)
    if path is not None:
        with atomic_output(path) as tmp:
            fig.write_html(str(tmp), include_plotlyjs=True, full_html=True)
    return fig


@dataclasses.dataclass(frozen=True)
class SharpnessProfile(Result):
    """ϕ, S and Ŝ across θ (SALR paper, Fig. 2). Arrays are aligned with ``thetas``."""

    thetas: np.ndarray
    f: np.ndarray
    phi: np.ndarray
    two_sided: np.ndarray
    probe: np.ndarray
    grid: np.ndarray
    grid_f: np.ndarray
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)

    def plot(self, backend: str = "matplotlib", ax: Any = None, path: str | os.PathLike | None = None):
        """Left: f(θ). Right: ϕ(ε,θ), S(ε,θ), Ŝ(θ) (the paper's Fig. 2)."""
        eps = self.settings.get("epsilon")
        panels = [
            {
                "title": "f(θ)",
                "xlabel": "θ",
                "ylabel": "f",
                "lines": [{"x": self.grid, "y": self.grid_f, "label": "f", "colour": "black"}],
            },
            {
                "title": f"sharpness (ε = {eps}, γ = {self.settings.get('gamma'):.3g})",
                "xlabel": "θ",
                "ylabel": "sharpness",
                "lines": [
                    {"x": self.thetas, "y": self.phi, "label": "ϕ(ε, θ)  (eq. 1)"},
                    {"x": self.thetas, "y": self.two_sided, "label": "S(ε, θ)  (eq. 2)"},
                    {"x": self.thetas, "y": self.probe, "label": "Ŝ(θ)  (Definition 1)"},
                ],
            },
        ]
        return render(panels, backend, ax, path)


@dataclasses.dataclass(frozen=True)
class EscapeResult(Result):
    """Trajectories of GD and GD-SALR around a sharp minimum (see :func:`~basinscope.toy.demos.escape_demo`).

    ``paths[i]`` holds θ_0..θ_K of method ``names[i]``, ``lrs[i]`` the learning rates η_k, ``sharpness[i]``
    the measured Ŝ_k (NaN for GD). ``minimum``/``radius`` give the ball B_δ(θ*).
    """

    names: list[str]
    paths: np.ndarray
    lrs: np.ndarray
    sharpness: np.ndarray
    minimum: float
    radius: float
    grid: np.ndarray
    grid_f: np.ndarray
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def _index(self, name: str) -> int:
        check_choice("name", name, self.names)
        return self.names.index(name)

    def final(self, name: str) -> float:
        """θ_K of method ``name``."""
        return float(self.paths[self._index(name)][-1])

    def visited(self, name: str) -> bool:
        """Whether method ``name`` was inside B_δ(θ*) at some iterate."""
        return bool((np.abs(self.paths[self._index(name)] - self.minimum) <= self.radius).any())

    def escaped(self, name: str) -> bool:
        """Whether method ``name`` ended outside B_δ(θ*) (read with :meth:`visited`: it was there before)."""
        return bool(abs(self.final(name) - self.minimum) > self.radius)

    def plot(self, backend: str = "matplotlib", ax: Any = None, path: str | os.PathLike | None = None):
        """Left: f with the iterates of each method. Right: θ_k against k, B_δ(θ*) shaded."""
        k = np.arange(self.paths.shape[1])
        lo, hi = self.minimum - self.radius, self.minimum + self.radius
        iterates = []
        for i, name in enumerate(self.names):
            fx = np.interp(self.paths[i], self.grid, self.grid_f)
            iterates.append({"x": self.paths[i], "y": fx, "label": name, "markers": True, "colour": _COLOURS[i + 1]})
        panels = [
            {
                "title": "iterates on f",
                "xlabel": "θ",
                "ylabel": "f(θ)",
                "spans": [(lo, hi)],
                "lines": [{"x": self.grid, "y": self.grid_f, "label": "f", "colour": "black"}, *iterates],
            },
            {
                "title": f"θ_k (shaded: B_δ(θ*), δ = {self.radius})",
                "xlabel": "iteration k",
                "ylabel": "θ_k",
                "lines": [
                    {"x": k, "y": self.paths[i], "label": n, "markers": True, "joined": True, "colour": _COLOURS[i + 1]}
                    for i, n in enumerate(self.names)
                ],
            },
        ]
        fig = render(panels, backend, ax, None)
        if backend == "matplotlib":
            from .. import style

            fig.axes[1].axhspan(lo, hi, color="0.85", zorder=0)
            if path is not None:
                style.save(fig, path, dpi=110)  # never through a link planted at path
        else:
            fig.add_hrect(y0=lo, y1=hi, fillcolor="lightgrey", opacity=0.5, line_width=0, row=1, col=2)
            if path is not None:
                with atomic_output(path) as tmp:
                    fig.write_html(str(tmp), include_plotlyjs=True, full_html=True)
        return fig


@dataclasses.dataclass(frozen=True)
class SALRTrace(Result):
    """GD-SALR iterates θ_0..θ_K with the sharpness Ŝ_k and learning rate η_k (SALR paper, Fig. 3, right)."""

    path: np.ndarray
    lrs: np.ndarray
    sharpness: np.ndarray
    grid: np.ndarray
    grid_f: np.ndarray
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def plot(self, backend: str = "matplotlib", ax: Any = None, path: str | os.PathLike | None = None):
        """Left: the iterates on f. Right: Ŝ_k (left axis) and η_k (right axis) against k."""
        k = np.arange(self.lrs.size)
        fx = np.interp(self.path, self.grid, self.grid_f)
        panels = [
            {
                "title": "GD-SALR iterates on f",
                "xlabel": "θ",
                "ylabel": "f(θ)",
                "lines": [
                    {"x": self.grid, "y": self.grid_f, "label": "f", "colour": "black"},
                    {"x": self.path, "y": fx, "label": "θ_k", "markers": True, "colour": _COLOURS[1]},
                ],
            },
            {
                "title": "sharpness and learning rate",
                "xlabel": "iteration k",
                "ylabel": "Ŝ_k",
                "lines": [{"x": k, "y": self.sharpness, "label": "Ŝ_k", "colour": _COLOURS[0]}],
                "ylabel2": "η_k",
                "lines2": [{"x": k, "y": self.lrs, "label": "η_k", "colour": _COLOURS[1]}],
            },
        ]
        return render(panels, backend, ax, path)
