"""One figure style for every plot of the toolkit (matplotlib), imported only by plotting code.

Rules (each measured against what a reader sees):

* axes are linear with plain tick labels (``0.012``, not ``1.2×10⁻²``) unless the plotted values span more
  than a decade, and only then logarithmic (:func:`choose_scale`);
* surfaces use a perceptually uniform colormap (:data:`CMAP`, viridis; :data:`CMAP_DIVERGING` for signed
  values) and a logarithmic colour scale only where the values span decades, as Garipov et al. draw error
  planes (:func:`color_norm`);
* planes drawn in an orthonormal basis get equal aspect (:func:`plane_axes`);
* marked points are labelled with offsets that keep labels apart (:func:`label_points`).

Example:
    >>> choose_scale([2.29, 2.30, 2.31])
    'linear'
    >>> choose_scale([1e-3, 1.0])
    'log'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CMAP",
    "CMAP_DIVERGING",
    "RC",
    "apply_scale",
    "choose_scale",
    "color_norm",
    "label_points",
    "new_figure",
    "plain_ticks",
    "plane_axes",
]

CMAP = "viridis"
CMAP_DIVERGING = "RdBu_r"

#: rcParams applied to every figure (``with matplotlib.rc_context(RC)`` inside :func:`new_figure`).
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
    "image.cmap": CMAP,
}


def choose_scale(values: Any, *, decades: float = 1.0) -> str:
    """``"log"`` when the positive finite ``values`` span more than ``decades`` decades, else ``"linear"``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0 or (v <= 0).any():
        return "linear"
    return "log" if np.log10(v.max() / v.min()) > decades else "linear"


def plain_ticks(ax: Any, axis: str = "both") -> None:
    """Plain decimal tick labels on a linear axis (no offset, no scientific notation)."""
    from matplotlib.ticker import ScalarFormatter

    for name in ("x", "y") if axis == "both" else (axis,):
        a = getattr(ax, f"{name}axis")
        if a.get_scale() != "linear":
            continue
        fmt = ScalarFormatter(useOffset=False, useMathText=False)
        fmt.set_scientific(False)
        a.set_major_formatter(fmt)


def apply_scale(ax: Any, values: Any, axis: str = "y") -> str:
    """Set ``axis`` to :func:`choose_scale` of ``values``; linear axes get :func:`plain_ticks`. Returns it."""
    scale = choose_scale(values)
    getattr(ax, f"set_{axis}scale")(scale)
    if scale == "linear":
        plain_ticks(ax, axis)
    return scale


def color_norm(values: Any, *, decades: float = 1.0):
    """A ``LogNorm`` where the positive finite values span more than ``decades`` decades, else ``Normalize``."""
    from matplotlib.colors import LogNorm, Normalize

    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Normalize()
    if choose_scale(v, decades=decades) == "log":
        return LogNorm(vmin=float(v.min()), vmax=float(v.max()))
    return Normalize(vmin=float(v.min()), vmax=float(v.max()))


def plane_axes(ax: Any, *, orthonormal: bool) -> None:
    """Equal aspect for a plane drawn in an orthonormal basis (lengths on both axes mean the same)."""
    if orthonormal:
        ax.set_aspect("equal", adjustable="box")


def label_points(ax: Any, points: Mapping[str, Sequence[float]], *, step: float = 0.04) -> None:
    """Mark ``points`` (name → (x, y)) and label each, nudging labels apart so none overlap.

    Each label starts just above-right of its point; while its drawn box overlaps an earlier label's, it moves
    up by ``step`` (a fraction of the axes' height).
    """
    from matplotlib.text import Text

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    for name, (x, y) in points.items():
        ax.plot([x], [y], marker="o", color="white", markeredgecolor="black", markersize=6, zorder=5)
        dy = 0.0
        for _ in range(50):
            text = ax.annotate(
                name,
                (x, y),
                xytext=(6, 6 + dy * fig.bbox.height * ax.get_position().height * 72 / fig.dpi),
                textcoords="offset points",
                fontsize=8,
                zorder=6,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                arrowprops={"arrowstyle": "-", "lw": 0.5} if dy else None,
            )
            box = Text.get_window_extent(text, renderer)  # the label alone, not its leader line
            if not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            text.remove()
            dy += step


def new_figure(*args: Any, **kwargs: Any):
    """``plt.subplots(*args, **kwargs)`` under :data:`RC` (Agg when no display is set); returns (fig, axes)."""
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        import os

        if not os.environ.get("DISPLAY"):
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(*args, **kwargs)
    for ax in np.atleast_1d(axes).ravel():
        if ax.name == "rectilinear":
            plain_ticks(ax)
    return fig, axes
