"""Drawing a :class:`~basinscope.surface.curve.CurveResult`: both paths against t, one panel per metric.

The layout of Garipov et al. 2018 (Fig. 2, right: train loss and test error along the curve and the line): the curve
solid, the line dashed, the barrier of each in the legend. matplotlib and plotly (a self-contained HTML page) are
imported lazily here only; every figure follows :mod:`basinscope.style` (an axis is logarithmic only where its
values span more than a decade; plain tick labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checks import check_choice, fail
from .plot import _NAMES, _save_plotly

__all__ = ["plot_curve"]

_PATHS = (("curve", "-", "solid"), ("line", "--", "dash"))


def _metrics(result: Any, metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        second = "test_error" if "test_error" in result.curve else "train_error"
        return ["train_loss"] + ([second] if second in result.curve else [])
    if isinstance(metrics, str) or not metrics:
        fail("metrics", "a non-empty list of metric names", metrics)
    for m in metrics:
        result.values("curve", m)  # validates
    return list(metrics)


def plot_curve(
    result: Any,
    *,
    backend: str = "matplotlib",
    metrics: Sequence[str] | None = None,
    path: Any = None,
    title: str | None = None,
) -> Any:
    """See :meth:`CurveResult.plot`."""
    from .. import style

    check_choice("backend", backend, ("matplotlib", "plotly"))
    metrics = _metrics(result, metrics)
    t = np.asarray(result.ts, dtype=np.float64)
    name = {"bezier": "Bézier curve", "polychain": "polygonal chain"}[result.kind]
    title = title if title is not None else f"{name} and line: {result.labels[0]} → {result.labels[1]}"
    if backend == "matplotlib":
        with style.context():
            fig, axes = style.new_figure(1, len(metrics), figsize=(4.6 * len(metrics), 3.8), squeeze=False)
            for ax, m in zip(axes[0], metrics):
                both = []
                for p, ls, _ in _PATHS:
                    v = result.values(p, m)
                    both.append(v)
                    label = f"{name if p == 'curve' else 'line'} (barrier {result.barrier[p][m]:.4g})"
                    ax.plot(t, v, ls, marker="o", markersize=3, color="C0" if p == "curve" else "C1", label=label)
                style.apply_scale(ax, np.concatenate(both))
                ax.set_xlabel("t")
                ax.set_ylabel(_NAMES[m])
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=1)  # below: never over the data
            fig.suptitle(title)
            style.finish(fig)
        if path is not None:
            style.save(fig, path, dpi=120)
        return fig

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[_NAMES[m] for m in metrics])
    log_axes = []
    for j, m in enumerate(metrics, start=1):
        both = []
        for p, _, dash in _PATHS:
            v = result.values(p, m)
            both.append(v)
            fig.add_trace(
                go.Scatter(
                    x=t,
                    y=v,
                    mode="lines+markers",
                    line={"dash": dash, "color": "#1f77b4" if p == "curve" else "#ff7f0e"},
                    name=f"{name if p == 'curve' else 'line'}: {_NAMES[m]} (barrier {result.barrier[p][m]:.4g})",
                ),
                row=1,
                col=j,
            )
        fig.update_xaxes(title_text="t", row=1, col=j)
        fig.update_yaxes(title_text=_NAMES[m], row=1, col=j)
        if style.choose_scale(np.concatenate(both)) == "log":
            log_axes.append("yaxis" if j == 1 else f"yaxis{j}")
    fig.update_layout(title=title, width=560 * len(metrics), height=460)
    style.plotly_style(fig, log_axes=log_axes)
    _save_plotly(fig, path)
    return fig
