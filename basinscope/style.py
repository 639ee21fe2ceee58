"""One figure style for every plot of the toolkit (matplotlib and plotly), imported only by plotting code.

Rules (each checked against what a reader sees, and by ``tests/test_figures.py`` on every figure kind):

* axes are linear with plain tick labels (``0.012``, not ``1.2×10⁻²`` or an offset ``+2.29``) unless the plotted
  values span more than a decade, and only then logarithmic (:func:`choose_scale`, :func:`apply_scale`);
* surfaces use a perceptually uniform colormap (:data:`CMAP`, viridis; :data:`PLOTLY_COLORSCALE` for plotly)
  and a logarithmic colour scale only where the values span decades, as Garipov et al. draw error planes
  (:func:`color_norm`, :func:`levels`);
* planes drawn in an orthonormal basis get equal aspect (:func:`plane_axes`): the plane through three points
  (Gram–Schmidt basis) is orthonormal; two random filter-normalized directions are neither orthogonal nor of
  unit length, so their plane keeps free aspect;
* marked points are labelled with offsets that keep labels apart (:func:`label_points`, :func:`label_lines`).

A plotting function builds its figure with :func:`new_figure` (an Agg-backed ``Figure``: no pyplot state), draws
inside :func:`context` (the rcParams :data:`RC`), and calls :func:`finish` before returning, which gives every
linear axis plain tick labels — twin axes and colour bars included. :func:`save` writes it atomically. Plotly
figures get :func:`plotly_style`.

Example:
    >>> choose_scale([2.29, 2.30, 2.31])
    'linear'
    >>> choose_scale([1e-3, 1.0])
    'log'
    >>> with context():
    ...     fig, ax = new_figure()
    ...     _ = ax.plot([0, 1], [2.2906, 2.2911])
    ...     _ = finish(fig)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CMAP",
    "CMAP_DIVERGING",
    "PLOTLY_COLORSCALE",
    "RC",
    "apply_scale",
    "choose_scale",
    "color_norm",
    "colorbar",
    "context",
    "finish",
    "label_lines",
    "label_points",
    "levels",
    "new_figure",
    "plain_ticks",
    "plane_axes",
    "plotly_style",
    "plotly_text_positions",
    "save",
]

CMAP = "viridis"
CMAP_DIVERGING = "RdBu_r"
PLOTLY_COLORSCALE = "Viridis"

#: rcParams every figure is drawn under (:func:`context`).
RC: dict[str, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.formatter.useoffset": False,
    "axes.formatter.use_mathtext": False,
    "axes.formatter.limits": (-4, 5),
    "legend.frameon": False,
    "legend.fontsize": 8,
    "image.cmap": CMAP,
}


def choose_scale(values: Any, *, decades: float = 1.0) -> str:
    """``"log"`` when the positive finite ``values`` span more than ``decades`` decades, else ``"linear"``.

    Any value ≤ 0 keeps the axis linear (a log axis cannot show it).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0 or (v <= 0).any():
        return "linear"
    return "log" if np.log10(v.max() / v.min()) > decades else "linear"


@contextlib.contextmanager
def context() -> Iterator[None]:
    """The rcParams :data:`RC` for the block (fonts, grid, no offset or scientific tick labels)."""
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


def _plain_formatter():
    from matplotlib.ticker import ScalarFormatter

    fmt = ScalarFormatter(useOffset=False, useMathText=False)
    fmt.set_scientific(False)
    return fmt


def _log_label(value: float, _pos: Any = None) -> str:
    """A log-axis tick label: the plain number between 1e-4 and 1e5 (``0.01``, ``20``), ``10^k`` outside."""
    if value <= 0 or not np.isfinite(value):
        return ""
    if 1e-4 <= value < 1e5:
        return f"{value:.6g}"
    return f"$10^{{{round(np.log10(value))}}}$"


def _log_ticks(a: Any) -> None:
    """Ticks at 1, 2, 5 × 10^k where the axis spans at most two decades, at 10^k beyond; plain labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = sorted(a.get_view_interval())
    span = np.log10(hi / lo) if lo > 0 and hi > 0 else 3.0
    a.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if span <= 2 else (1.0,)))
    a.set_major_formatter(FuncFormatter(_log_label))
    a.set_minor_formatter(NullFormatter())


def plain_ticks(ax: Any, axis: str = "both") -> None:
    """Plain decimal tick labels on the axes of ``ax`` (no offset, no scientific notation).

    ``axis``: ``"x"``, ``"y"``, ``"z"`` (3-D axes) or ``"both"`` (every axis ``ax`` has). A log axis gets ticks at
    1, 2, 5 × 10^k (two decades or fewer) or 10^k, labelled ``0.01``, ``0.02``, ... and ``10^k`` only beyond
    [1e-4, 1e5).
    """
    names = ("x", "y", "z") if axis == "both" else (axis,)
    for name in names:
        a = getattr(ax, f"{name}axis", None)
        if a is None:
            continue
        scale = a.get_scale()
        if scale == "linear":
            a.set_major_formatter(_plain_formatter())
        elif scale == "log":
            _log_ticks(a)


def apply_scale(ax: Any, values: Any, axis: str = "y") -> str:
    """Set ``axis`` to :func:`choose_scale` of ``values``; linear axes get :func:`plain_ticks`. Returns it."""
    scale = choose_scale(values)
    getattr(ax, f"set_{axis}scale")(scale)
    plain_ticks(ax, axis)
    return scale


def color_norm(values: Any, *, decades: float = 1.0):
    """A ``LogNorm`` where the positive finite values span more than ``decades`` decades, else ``Normalize``."""
    from matplotlib.colors import LogNorm, Normalize

    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Normalize()
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        lo, hi = lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)
    if choose_scale(v, decades=decades) == "log":
        return LogNorm(vmin=lo, vmax=hi)
    return Normalize(vmin=lo, vmax=hi)


def colorbar(fig: Any, mappable: Any, ax: Any, *, label: str, **kw: Any) -> Any:
    """``fig.colorbar`` with at most 7 plain-labelled ticks on a linear norm (a contour set's colour bar would
    otherwise label every level to six digits) and :func:`plain_ticks`' log ticks on a ``LogNorm``."""
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import MaxNLocator

    cb = fig.colorbar(mappable, ax=ax, label=label, **kw)
    if not isinstance(mappable.norm, LogNorm):
        cb.locator = MaxNLocator(nbins=6)
        cb.formatter = _plain_formatter()
        cb.update_ticks()
    plain_ticks(cb.ax)
    return cb


def levels(norm: Any, n: int) -> np.ndarray:
    """``n`` contour levels over ``norm``'s range: log-spaced for a ``LogNorm``, evenly spaced otherwise."""
    from matplotlib.colors import LogNorm

    if isinstance(norm, LogNorm):
        return np.geomspace(norm.vmin, norm.vmax, n)
    return np.linspace(norm.vmin, norm.vmax, n)


def plane_axes(ax: Any, *, orthonormal: bool) -> None:
    """Equal aspect for a plane drawn in an orthonormal basis (lengths on both axes mean the same)."""
    if orthonormal:
        ax.set_aspect("equal", adjustable="box")


def _place_apart(ax: Any, texts: Sequence[Any], *, step_points: float) -> None:
    """Move each annotation in ``texts`` (in order) until its box overlaps no earlier one.

    Candidate offsets: as placed, then ``±step_points``, ``±2·step_points``, ... (``+`` first); the first that
    overlaps no earlier label and stays inside the axes wins (the first non-overlapping one if none stays
    inside). The figure's layout is settled first (constrained layout moves the axes), so pixel boxes are final.
    """
    from matplotlib.text import Text

    fig = ax.figure
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    placed: list[Any] = []
    for text in texts:
        x0, y0 = text.xyann
        fallback = None
        for k in range(80):
            dy = ((k + 1) // 2) * (1 if k % 2 else -1) * step_points
            text.xyann = (x0, y0 + dy)
            box = Text.get_window_extent(text, renderer)  # the label alone, not its leader line
            if any(box.overlaps(b) for b in placed):
                continue
            if fallback is None:
                fallback = dy
            if inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1:
                break
        else:
            dy = fallback if fallback is not None else 0.0
        text.xyann = (x0, y0 + dy)
        if dy and text.arrow_patch is not None:
            text.arrow_patch.set_visible(True)  # a moved label points back to where it belongs
        placed.append(Text.get_window_extent(text, renderer))


_LEADER = {"arrowstyle": "-", "lw": 0.5, "color": "0.3", "shrinkA": 0, "shrinkB": 3}


def _hidden_leader(text: Any) -> Any:
    text.arrow_patch.set_visible(False)
    return text


def label_points(ax: Any, points: Mapping[str, Sequence[float]], *, step: float = 9.0) -> list[Any]:
    """Mark ``points`` (name → (x, y) in data coordinates) and label each without overlapping labels.

    Each label starts just above-right of its point; where its box would overlap an earlier label's (or leave the
    axes), it moves up or down by multiples of ``step`` points (1/72 inch) and gets a leader line to its point.
    Returns the annotations.
    """
    texts = []
    for name, (x, y) in points.items():
        ax.plot([x], [y], marker="o", color="white", markeredgecolor="black", markersize=6, zorder=5, ls="")
        text = ax.annotate(
            name,
            (x, y),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
            zorder=6,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            arrowprops=_LEADER,
        )
        texts.append(_hidden_leader(text))
    _place_apart(ax, texts, step_points=step)
    return texts


def label_lines(ax: Any, xs: Sequence[float], names: Sequence[str], *, step: float = -10.0) -> list[Any]:
    """Dotted vertical lines at ``xs`` labelled ``names`` near the top of ``ax``, labels kept apart.

    A label that would overlap an earlier one moves down (or up) by multiples of ``-step`` points. Returns the
    annotations.
    """
    texts = []
    for x, name in zip(xs, names):
        ax.axvline(float(x), color="0.4", linestyle=":", linewidth=1)
        text = ax.annotate(
            name,
            (float(x), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
            arrowprops=_LEADER,
        )
        texts.append(_hidden_leader(text))
    _place_apart(ax, texts, step_points=step)
    return texts


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    projection: str | None = None,
    squeeze: bool = True,
    layout: str | None = "constrained",
):
    """A ``Figure`` on the Agg canvas (no pyplot state) with ``nrows × ncols`` axes under :data:`RC`.

    Returns ``(fig, axes)`` like ``plt.subplots`` (one Axes when ``squeeze`` and 1×1). Linear axes start with
    plain tick labels.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with context():
        fig = Figure(figsize=figsize, layout=layout)
        FigureCanvasAgg(fig)
        kw = {"projection": projection} if projection else {}
        axes = fig.subplots(nrows, ncols, squeeze=squeeze, subplot_kw=kw)
    for ax in np.atleast_1d(axes).ravel():
        plain_ticks(ax)
    return fig, axes


def finish(fig: Any) -> Any:
    """Plain tick labels on every linear axis of ``fig`` (twin axes and colour bars included); returns ``fig``.

    Called last by every plotting function: ``set_yscale``, ``twinx`` and ``colorbar`` install matplotlib's
    default formatters, which may write an offset or ``1e-3``-style labels.
    """
    for ax in fig.axes:
        plain_ticks(ax)
    return fig


def save(fig: Any, path: Any, *, dpi: int | None = None) -> None:
    """Write ``fig`` to ``path`` (format from the suffix) under :data:`RC`.

    A file path is written atomically and never through a symbolic link planted there; a file object as given.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or type(fig.canvas).__name__ == "FigureCanvasBase":
        FigureCanvasAgg(fig)
    with context():
        if isinstance(path, (str, os.PathLike)):
            from .results import atomic_output

            with atomic_output(path) as tmp:
                fig.savefig(tmp, dpi=dpi)
        else:
            fig.savefig(path, dpi=dpi)


def plotly_text_positions(points: Any, *, near: float = 0.06) -> list[str]:
    """Plotly ``textposition`` for each marked point (rows of ``points``: x, y): ``"top right"``, except that a
    point within ``near`` (a fraction of the points' extent) of an earlier one takes the next free corner, so
    the labels of close points (SWA beside DSWA) do not print over each other."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    corners = ["top right", "bottom right", "top left", "bottom left"]
    extent = np.ptp(p, axis=0) if len(p) else np.ones(2)
    extent = np.where(extent > 0, extent, 1.0)
    out: list[str] = []
    for i, xy in enumerate(p):
        close = [out[j] for j in range(i) if np.all(np.abs((p[j] - xy) / extent) <= near)]
        out.append(next((c for c in corners if c not in close), corners[len(close) % 4]))
    return out


def plotly_style(fig: Any, *, log_axes: Sequence[str] = ()) -> Any:
    """The house style on a plotly figure: white template, plain tick labels (no SI suffixes such as ``5m``
    for 0.005, no exponents) on every 2-D and 3-D axis, except ``log_axes`` (layout keys such as ``"yaxis"``),
    which get ``10^k`` labels. Returns ``fig``."""
    fig.update_layout(template="plotly_white", font={"size": 12})
    plain = {"exponentformat": "none", "separatethousands": False}
    fig.update_xaxes(**plain)
    fig.update_yaxes(**plain)
    fig.update_scenes(xaxis=plain, yaxis=plain, zaxis=plain)
    for key in log_axes:
        fig.layout[key].update(type="log", exponentformat="power")
    return fig
