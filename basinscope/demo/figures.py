"""The demo report's labels and its own figures (the measurements of the first seed's solutions); the
experiments draw theirs (:func:`basinscope.experiments.make_figures`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["METHOD_LABELS", "bars_figure", "label", "scatter_plotly"]

METHOD_LABELS = {
    "sgd": "SGD",
    "sgd-continued": "SGD, same budget",
    "swa": "SWA",
    "dswa": "DSWA",
    "tswa": "TSWA",
}
_CASES = {"case2": "Case II", "case1": "Case I"}


def label(name: str) -> str:
    """``case2/dswa`` → ``Case II · DSWA``; other names as they are."""
    case, _, method = name.partition("/")
    if case in _CASES and method in METHOD_LABELS:
        return f"{_CASES[case]} · {METHOD_LABELS[method]}"
    return name


_KEYS = (
    ("test_accuracy", "test accuracy"),
    ("phi", "ϕ(ε)"),
    ("S", "S(ε)"),
    ("S_hat", "Ŝ(γ)"),
    ("lambda_max", "λ_max"),
    ("trace", "tr(H)"),
)


def bars_figure(solutions: dict[str, dict[str, Any]]):
    """One horizontal bar panel per measurement, one bar per solution (grey: SGD, blue: averaged)."""
    from .. import style

    names = list(solutions)
    fig, axes = style.new_figure(2, 3, figsize=(13, 2.2 + 0.55 * len(names)))
    colours = ["0.6" if "sgd" in n else "C0" for n in names]
    for ax, (key, title) in zip(axes.ravel(), _KEYS):
        vals = [solutions[n].get(key) for n in names]
        vals = [v if isinstance(v, (int, float)) and math.isfinite(v) else np.nan for v in vals]
        ax.barh(range(len(names)), vals, color=colours)
        ax.set_title(title)
    style.finish(fig)
    for i, ax in enumerate(axes.ravel()):  # solution names on y, set after finish() (which formats numbers)
        ax.set_yticks(range(len(names)), [label(n) for n in names] if i % 3 == 0 else [""] * len(names), fontsize=8)
        ax.invert_yaxis()
    return fig


def scatter_plotly(solutions: dict[str, dict[str, Any]]):
    """Test accuracy against λ_max, Ŝ(γ) and S(ε), one point per solution (hover for its name)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .. import style

    names = list(solutions)
    fig = make_subplots(rows=1, cols=3, subplot_titles=("λ_max", "Ŝ(γ)", "S(ε)"))
    for col, key in enumerate(("lambda_max", "S_hat", "S"), start=1):
        xs = [solutions[n][key] for n in names]
        ys = [solutions[n]["test_accuracy"] for n in names]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                text=[label(n) for n in names],
                marker={"size": 9},
                showlegend=False,
                hovertemplate="%{text}<br>%{x:.4g}<br>test accuracy %{y:.4f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=key, row=1, col=col)
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_layout(height=400, margin={"t": 40, "b": 40, "l": 50, "r": 20})
    return style.plotly_style(fig)
