"""Drawing :class:`Surface1D` and :class:`Surface2D` (matplotlib or plotly, both imported lazily here only).

* 2-D, matplotlib: filled contours (viridis; log-spaced levels and a log colour scale only where the values span
  more than a decade) and the marked points — the style of Garipov et al. 2018 (Fig. 1) and the SWA-revisited
  paper (Fig. 6); or a 3-D surface (``kind="surface"``). The plane through three points is drawn with equal
  aspect (its basis is orthonormal), and so is a plane of two Hessian eigenvectors; a random plane is not (its
  directions are neither orthogonal nor unit), nor a PCA plane (see :data:`EQUAL_ASPECT_KINDS`).
* 2-D, plotly: an interactive 3-D surface beside a contour map (``kind="both"``), saved as one self-contained
  HTML file (plotly.js embedded: ``include_plotlyjs=True``, no CDN).
* 1-D: train loss (left axis) and test error (right axis) against t — the SWA-revisited paper's Figs. 7–8;
  an axis is logarithmic only where its curve spans more than a decade.

Every figure follows :mod:`basinscope.style` (plain tick labels, viridis, labels kept apart).

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

__all__ = ["EQUAL_ASPECT_KINDS", "plot_line", "plot_plane"]

#: planes drawn with equal aspect: those with orthonormal directions (Gram–Schmidt through three points, two Hessian
#: eigenvectors) — except a PCA plane, whose second direction often explains < 1 % of the trajectory's variance, so
#: that equal aspect flattens it to a line; it is drawn with free aspect and the shares on the axes (Li et al. 2018)
EQUAL_ASPECT_KINDS = ("plane", "hessian_plane")


def _axis_titles(result: Any) -> tuple[str, str]:
    ratio = result.settings.get("explained_variance_ratio") if result.kind == "pca_plane" else None
    if not ratio or len(ratio) < 2:
        return "α", "β"
    return (f"α (1st principal direction: {100 * ratio[0]:.2f} %)", f"β (2nd: {100 * ratio[1]:.2f} %)")


_NAMES = {
    "train_loss": "train loss",
    "train_error": "train error",
    "test_loss": "test loss",
    "test_error": "test error",
}


def _default_metric(result: Any, metric: str | None, prefer: tuple[str, ...]) -> str:
    if metric is not None:
        result.values(metric)  # validates
        return metric
    for m in prefer:
        if getattr(result, m) is not None:
            return m
    return "train_loss"


def _mpl_figure(ax: Any, projection: str | None = None):
    """``(figure, axes)``: the given ``ax`` and its figure, or a new figure in the house style."""
    from .. import style

    if ax is not None:
        return ax.figure, ax
    return style.new_figure(figsize=(6.4, 5.2), projection=projection)


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
    from .. import style

    check_choice("backend", backend, ("matplotlib", "plotly"))
    levels = check_int("levels", levels, minimum=2)
    metric = _default_metric(result, metric, ("test_error", "train_loss"))
    z = result.values(metric)
    a, b = np.asarray(result.alphas), np.asarray(result.betas)
    pts = np.zeros((0, 2)) if result.points is None else np.asarray(result.points, dtype=np.float64)
    name = _NAMES[metric]
    title = title if title is not None else f"{name} ({result.kind})"
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        fail("values", "at least one finite value to draw", "no finite values", raw=True)
    log = style.choose_scale(finite) == "log"  # log colours only where the values span decades (Garipov et al.)
    # the plane through three points has a Gram-Schmidt (orthonormal) basis; random filter-normalized directions
    # are neither orthogonal nor of unit length, so only the former is drawn with equal aspect
    orthonormal = result.kind in EQUAL_ASPECT_KINDS
    xtitle, ytitle = _axis_titles(result)
    path_xy = None if getattr(result, "path", None) is None else np.asarray(result.path, dtype=np.float64)
    if backend == "matplotlib":
        kind = check_choice("kind", kind or "contour", ("contour", "surface"))
        with style.context():
            norm = style.color_norm(finite)
            zc = np.clip(np.where(np.isfinite(z), z, norm.vmax), norm.vmin, norm.vmax)
            if kind == "contour":
                own_figure = ax is None
                fig, ax = _mpl_figure(ax)
                lv = style.levels(norm, levels)
                cs = ax.contourf(a, b, zc, levels=lv, norm=norm, cmap=style.CMAP, extend="neither")
                ax.contour(a, b, zc, levels=lv, colors="k", linewidths=0.3, alpha=0.5)
                if orthonormal and own_figure:
                    # equal aspect on a flat plane leaves a short plot beside a full-height colour bar: fit the
                    # figure's height to the plane's shape instead (plot area ~4.6 in wide)
                    ratio = float(np.ptp(b) / np.ptp(a)) if np.ptp(a) > 0 else 1.0
                    fig.set_size_inches(6.4, float(np.clip(1.3 + 4.6 * ratio, 2.4, 6.4)))
                style.colorbar(fig, cs, ax, label=name + (" (log scale)" if log else ""))
                if path_xy is not None:  # Li et al. 2018, Fig. 9: the trajectory over the contours
                    ax.plot(path_xy[:, 0], path_xy[:, 1], "-o", color="w", markersize=2.5, linewidth=1.0)
                    ax.plot(path_xy[:, 0], path_xy[:, 1], "-", color="k", linewidth=0.4)
                if len(pts):
                    style.label_points(ax, dict(zip(result.point_labels, map(tuple, pts))))
                style.plane_axes(ax, orthonormal=orthonormal)
                ax.grid(False)
            else:
                fig, ax = _mpl_figure(ax, projection="3d")
                aa, bb = np.meshgrid(a, b)
                surf = ax.plot_surface(aa, bb, zc, cmap=style.CMAP, norm=norm, linewidth=0, antialiased=True)
                style.colorbar(fig, surf, ax, shrink=0.6, pad=0.08, label=name + (" (log scale)" if log else ""))
                ax.set_zlabel(name)
            ax.set_xlabel(xtitle)
            ax.set_ylabel(ytitle)
            ax.set_title(title)
            style.finish(fig)
        if path is not None:
            style.save(fig, path, dpi=120)
        return fig

    kind = check_choice("kind", kind or "both", ("both", "surface", "contour"))
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = list(result.point_labels)
    on_grid = [(i, j, lab) for (i, j), lab in zip(result.point_indices, labels) if i >= 0]
    vmin, vmax = float(finite.min()), float(finite.max())
    if log:
        zcol = np.log10(np.clip(z, vmin, vmax))
        ticks = np.arange(np.ceil(np.log10(vmin)), np.floor(np.log10(vmax)) + 1)
        text = [f"{10**t:g}" for t in ticks]
        colorbar = {"title": f"{name} (log scale)", "tickvals": ticks.tolist(), "ticktext": text}
    else:
        zcol = np.clip(z, vmin, vmax)
        colorbar = {"title": name}
    surface = go.Surface(
        x=a, y=b, z=z, surfacecolor=zcol, colorscale=style.PLOTLY_COLORSCALE, colorbar={**colorbar, "x": -0.08}
    )
    markers3d = go.Scatter3d(
        x=[a[i] for i, _, _ in on_grid],
        y=[b[j] for _, j, _ in on_grid],
        z=[z[j, i] for i, j, _ in on_grid],
        mode="markers+text",
        text=[lab for _, _, lab in on_grid],
        marker={"size": 5, "color": "black"},
        showlegend=False,
    )
    lo, hi = float(np.nanmin(zcol)), float(np.nanmax(zcol))
    contour = go.Contour(
        x=a,
        y=b,
        z=zcol,
        colorscale=style.PLOTLY_COLORSCALE,
        contours={"start": lo, "end": hi, "size": (hi - lo) / levels or 1.0},
        colorbar=colorbar,
        showscale=kind == "contour",
    )
    markers2d = go.Scatter(
        x=pts[:, 0], y=pts[:, 1], mode="markers+text", text=labels, textposition=style.plotly_text_positions(pts),
        marker={"size": 9, "color": "white", "line": {"color": "black", "width": 1}}, showlegend=False,
    )  # fmt: skip
    path_trace = None
    if path_xy is not None:
        path_trace = go.Scatter(
            x=path_xy[:, 0], y=path_xy[:, 1], mode="lines+markers", name="trajectory",
            line={"color": "white", "width": 1.5}, marker={"size": 4, "color": "white"}, showlegend=False,
        )  # fmt: skip
    if kind == "both":
        fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "xy"}]], column_widths=[0.55, 0.45])
        fig.add_trace(surface, row=1, col=1)
        fig.add_trace(markers3d, row=1, col=1)
        fig.add_trace(contour, row=1, col=2)
        if path_trace is not None:
            fig.add_trace(path_trace, row=1, col=2)
        fig.add_trace(markers2d, row=1, col=2)
        fig.update_layout(width=1200, height=600)
    elif kind == "surface":
        fig = go.Figure([surface, markers3d])
    else:
        fig = go.Figure([contour] + ([path_trace] if path_trace is not None else []) + [markers2d])
    fig.update_layout(title=title, scene={"xaxis_title": "α", "yaxis_title": "β", "zaxis_title": name})
    if kind != "surface":
        fig.update_xaxes(title_text=xtitle)
        fig.update_yaxes(title_text=ytitle)
        if orthonormal:
            fig.update_yaxes(scaleanchor="x2" if kind == "both" else "x", scaleratio=1)
    style.plotly_style(fig)
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
    from .. import style

    if backend == "matplotlib":
        with style.context():
            fig, ax = _mpl_figure(ax)
            axes = [ax] + ([ax.twinx()] if len(curves) == 2 else [])
            for k, (axk, m) in enumerate(zip(axes, curves)):
                values = result.values(m)
                axk.plot(t, values, color=f"C{k}", marker="o", markersize=3, label=_NAMES[m])
                axk.set_ylabel(_NAMES[m], color=f"C{k}")
                style.apply_scale(axk, values)  # log only where the curve spans more than a decade
            if len(axes) == 2:
                axes[1].grid(False)
                axes[1].spines["right"].set_visible(True)
            style.label_lines(ax, pts, list(result.point_labels))
            ax.set_xlabel("t")
            ax.set_title(title)
            style.finish(fig)
        if path is not None:
            style.save(fig, path, dpi=120)
        return fig

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    log_axes = []
    for k, m in enumerate(curves):
        values = result.values(m)
        fig.add_trace(go.Scatter(x=t, y=values, mode="lines+markers", name=_NAMES[m]), secondary_y=k == 1)
        fig.update_yaxes(title_text=_NAMES[m], secondary_y=k == 1)
        if style.choose_scale(values) == "log":
            log_axes.append("yaxis2" if k == 1 else "yaxis")
    for x, lab in zip(pts, result.point_labels):
        fig.add_vline(x=float(x), line_dash="dot", annotation_text=lab)
    fig.update_layout(title=title, xaxis_title="t")
    style.plotly_style(fig, log_axes=log_axes)
    _save_plotly(fig, path)
    return fig
