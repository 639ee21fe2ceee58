"""Drawing :class:`Surface1D` and :class:`Surface2D` (matplotlib or plotly, both imported lazily here only).

* 2-D, matplotlib: filled contours with log-spaced levels and the marked points — the style of Garipov et al.
  2018 (Fig. 1) and the SWA-revisited paper (Fig. 6); or a 3-D surface (``kind="surface"``).
* 2-D, plotly: an interactive 3-D surface beside a contour map (``kind="both"``), saved as one self-contained
  HTML file (plotly.js embedded: ``include_plotlyjs=True``, no CDN).
* 1-D: train loss (left axis, log scale) and test error (right axis) against t — the SWA-revisited paper's
  Figs. 7–8.

Files are written when ``path`` is given: ``.png``/``.pdf``/``.svg`` for matplotlib, ``.html`` (or an image
format through kaleido) for plotly.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._checks import check_choice, check_int, fail
from ..results import atomic_output

__all__ = ["log_levels", "plot_line", "plot_plane"]

_NAMES = {
    "train_loss": "train loss",
    "train_error": "train error",
    "test_loss": "test loss",
    "test_error": "test error",
}


def log_levels(values: np.ndarray, n: int) -> tuple[np.ndarray, float, float]:
    """``n`` log-spaced contour levels between the smallest positive and the largest finite value."""
    z = np.asarray(values, dtype=np.float64)
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        fail("values", "at least one finite value to draw", "no finite values", raw=True)
    vmax = float(finite.max())
    positive = finite[finite > 0]
    vmin = float(positive.min()) if positive.size else 1e-12
    if vmax <= 0:
        vmax = 1.0
    if vmin >= vmax:
        vmin, vmax = vmin * 0.999, vmax * 1.001
    return np.geomspace(vmin, vmax, n), vmin, vmax


def _default_metric(result: Any, metric: str | None, prefer: tuple[str, ...]) -> str:
    if metric is not None:
        result.values(metric)  # validates
        return metric
    for m in prefer:
        if getattr(result, m) is not None:
            return m
    return "train_loss"


def _mpl_figure(ax: Any, projection: str | None = None):
    from matplotlib.figure import Figure

    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=(6.4, 5.2), layout="constrained")
    return fig, fig.add_subplot(projection=projection)


def _save_mpl(fig: Any, path: Any) -> None:
    if path is not None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        if fig.canvas is None or type(fig.canvas).__name__ == "FigureCanvasBase":
            FigureCanvasAgg(fig)
        with _output(path) as target:
            fig.savefig(target, dpi=120)


def _save_plotly(fig: Any, path: Any) -> None:
    if path is None:
        return
    with _output(path) as target:
        if str(path).lower().endswith((".html", ".htm")):
            fig.write_html(str(target), include_plotlyjs=True, full_html=True)
        else:
            fig.write_image(str(target))


@contextlib.contextmanager
def _output(path: Any) -> Iterator[Any]:
    """File paths are written atomically (never through a symbolic link); file objects as given."""
    if isinstance(path, (str, os.PathLike)):
        with atomic_output(path) as tmp:
            yield tmp
    else:
        yield path


def plot_plane(
    result: Any,
    *,
    backend: str = "matplotlib",
    metric: str | None = None,
    kind: str | None = None,
    ax: Any = None,
    path: Any = None,
    levels: int = 20,
    title: str | None = None,
) -> Any:
    """See :meth:`Surface2D.plot`."""
    check_choice("backend", backend, ("matplotlib", "plotly"))
    levels = check_int("levels", levels, minimum=2)
    metric = _default_metric(result, metric, ("test_error", "train_loss"))
    z = result.values(metric)
    a, b = np.asarray(result.alphas), np.asarray(result.betas)
    pts = np.zeros((0, 2)) if result.points is None else np.asarray(result.points, dtype=np.float64)
    name = _NAMES[metric]
    title = title if title is not None else f"{name} ({result.kind})"
    lv, vmin, vmax = log_levels(z, levels)
    if backend == "matplotlib":
        kind = check_choice("kind", kind or "contour", ("contour", "surface"))
        from matplotlib.colors import LogNorm

        if kind == "contour":
            fig, ax = _mpl_figure(ax)
            zc = np.clip(np.where(np.isfinite(z), z, vmax), vmin, vmax)
            cs = ax.contourf(a, b, zc, levels=lv, norm=LogNorm(vmin, vmax), cmap="jet_r", extend="both")
            ax.contour(a, b, zc, levels=lv, colors="k", linewidths=0.4, alpha=0.6)
            fig.colorbar(cs, ax=ax, label=name, format="%.3g")
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], marker="o", s=50, c="white", edgecolors="k", zorder=3)
                for (x, y), lab in zip(pts, result.point_labels):
                    ax.annotate(lab, (x, y), xytext=(5, 5), textcoords="offset points", fontsize=11, zorder=4)
            if result.kind == "plane":
                ax.set_aspect("equal", adjustable="box")
        else:
            fig, ax = _mpl_figure(ax, projection="3d")
            aa, bb = np.meshgrid(a, b)
            ax.plot_surface(aa, bb, z, cmap="jet_r", norm=LogNorm(vmin, vmax), linewidth=0, antialiased=True)
            ax.set_zlabel(name)
        ax.set_xlabel("α")
        ax.set_ylabel("β")
        ax.set_title(title)
        _save_mpl(fig, path)
        return fig

    kind = check_choice("kind", kind or "both", ("both", "surface", "contour"))
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = list(result.point_labels)
    on_grid = [(i, j, lab) for (i, j), lab in zip(result.point_indices, labels) if i >= 0]
    surface = go.Surface(x=a, y=b, z=z, colorscale="Jet", reversescale=True, colorbar={"title": name, "x": -0.08})
    markers3d = go.Scatter3d(
        x=[a[i] for i, _, _ in on_grid],
        y=[b[j] for _, j, _ in on_grid],
        z=[z[j, i] for i, j, _ in on_grid],
        mode="markers+text",
        text=[lab for _, _, lab in on_grid],
        marker={"size": 5, "color": "black"},
        showlegend=False,
    )
    contour = go.Contour(
        x=a,
        y=b,
        z=np.log10(np.clip(z, vmin, vmax)),
        colorscale="Jet",
        reversescale=True,
        contours={"start": np.log10(vmin), "end": np.log10(vmax), "size": (np.log10(vmax) - np.log10(vmin)) / levels},
        colorbar={"title": f"log10 {name}"},
    )
    markers2d = go.Scatter(
        x=pts[:, 0], y=pts[:, 1], mode="markers+text", text=labels, textposition="top right",
        marker={"size": 9, "color": "white", "line": {"color": "black", "width": 1}}, showlegend=False,
    )  # fmt: skip
    if kind == "both":
        fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "xy"}]], column_widths=[0.55, 0.45])
        fig.add_trace(surface, row=1, col=1)
        fig.add_trace(markers3d, row=1, col=1)
        fig.add_trace(contour, row=1, col=2)
        fig.add_trace(markers2d, row=1, col=2)
        fig.update_layout(width=1200, height=600)
    elif kind == "surface":
        fig = go.Figure([surface, markers3d])
    else:
        fig = go.Figure([contour, markers2d])
    fig.update_layout(title=title, scene={"xaxis_title": "α", "yaxis_title": "β", "zaxis_title": name})
    _save_plotly(fig, path)
    return fig


def plot_line(
    result: Any,
    *,
    backend: str = "matplotlib",
    metric: str | None = None,
    ax: Any = None,
    path: Any = None,
    title: str | None = None,
) -> Any:
    """See :meth:`Surface1D.plot`."""
    check_choice("backend", backend, ("matplotlib", "plotly"))
    t = np.asarray(result.ts)
    if metric is not None:
        curves = [metric]
        result.values(metric)
    else:
        second = "test_error" if result.test_error is not None else "train_error"
        curves = ["train_loss"] + ([second] if getattr(result, second) is not None else [])
    pts = [] if result.points is None else list(np.asarray(result.points, dtype=np.float64))
    title = title if title is not None else result.kind
    if backend == "matplotlib":
        fig, ax = _mpl_figure(ax)
        axes = [ax] + ([ax.twinx()] if len(curves) == 2 else [])
        for k, (axk, m) in enumerate(zip(axes, curves)):
            axk.plot(t, result.values(m), color=f"C{k}", marker="o", markersize=3, label=_NAMES[m])
            axk.set_ylabel(_NAMES[m], color=f"C{k}")
            if m.endswith("loss") and np.all(result.values(m)[np.isfinite(result.values(m))] > 0):
                axk.set_yscale("log")
        for x, lab in zip(pts, result.point_labels):
            ax.axvline(x, color="gray", linestyle=":", linewidth=1)
            ax.annotate(lab, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -12), textcoords="offset points")
        ax.set_xlabel("t")
        ax.set_title(title)
        _save_mpl(fig, path)
        return fig

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for k, m in enumerate(curves):
        fig.add_trace(go.Scatter(x=t, y=result.values(m), mode="lines+markers", name=_NAMES[m]), secondary_y=k == 1)
        fig.update_yaxes(title_text=_NAMES[m], secondary_y=k == 1)
    for x, lab in zip(pts, result.point_labels):
        fig.add_vline(x=float(x), line_dash="dot", annotation_text=lab)
    fig.update_layout(title=title, xaxis_title="t")
    _save_plotly(fig, path)
    return fig
