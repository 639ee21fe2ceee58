"""The demo report's labels and figures (training losses, the SALR panels, the measurements)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["bars_figure", "label", "salr_figure", "scatter_plotly", "training_figure"]

_LABELS = {
    "case2/sgd": "Case II · SGD",
    "case2/sgd-continued": "Case II · SGD, same budget",
    "case2/swa": "Case II · SWA",
    "case2/dswa": "Case II · DSWA",
    "case2/tswa": "Case II · TSWA",
    "case1/sgd": "Case I · SGD",
    "case1/sgd-continued": "Case I · SGD, same budget",
    "case1/swa": "Case I · SWA",
    "case1/dswa": "Case I · DSWA",
    "case1/tswa": "Case I · TSWA",
    "equal-budget/sgd": "SGD (equal calls)",
    "equal-budget/salr-sgd": "SGD-SALR, unbounded (equal calls)",
}


def label(name: str) -> str:
    if name.startswith("equal-budget/salr-sgd-max"):
        return f"SGD-SALR, η_k ≤ {name.rsplit('max', 1)[1]}·η₀ (equal calls)"
    return _LABELS.get(name, name)


def training_figure(results: dict[str, Any]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = results["histories"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, case in zip(axes, ("case2", "case1")):
        sgd = hist[f"{case}/sgd"]
        n0 = sgd["iteration"][-1] + 1 if sgd["iteration"] else 0
        ax.plot(sgd["iteration"], _smooth(sgd["loss"]), label="SGD", color="black")
        for method, colour in (("swa", "tab:blue"), ("dswa", "tab:orange"), ("tswa", "tab:green")):
            h = hist.get(f"{case}/{method}")
            if h:
                ax.plot(
                    [n0 + i for i in h["iteration"]], _smooth(h["loss"]), label=method.upper(), color=colour, alpha=0.8
                )
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("training minibatch loss (smoothed)")
        ax.set_title("Case II: SGD stopped early" if case == "case2" else "Case I: SGD to convergence")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _smooth(values: list[float], width: int = 15) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.size < width:
        return v
    kernel = np.ones(width) / width
    head = np.array([v[: i + 1].mean() for i in range(width - 1)])
    return np.concatenate([head, np.convolve(v, kernel, mode="valid")])


def salr_figure(results: dict[str, Any]):
    import matplotlib.pyplot as plt

    hist = results["histories"]
    sgd = hist["equal-budget/sgd"]
    salrs = [(n, h) for n, h in hist.items() if n.startswith("equal-budget/salr-sgd") and h]
    colours = ["tab:red", "tab:purple", "tab:orange", "tab:brown"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    axes[0].plot(sgd["grad_calls"], _smooth(sgd["loss"]), label="SGD", color="black")
    axes[2].plot(sgd["iteration"], sgd["lr"], color="black", label="SGD η")
    for (name, h), colour in zip(salrs, colours):
        name_ = label(name).replace(" (equal calls)", "")
        axes[0].plot(h["grad_calls"], _smooth(h["loss"]), label=name_, color=colour, alpha=0.8)
        it = np.asarray(h["iteration"])
        sharp = np.asarray(h["sharpness"], dtype=np.float64)
        mask = np.isfinite(sharp)
        axes[1].plot(it[mask], sharp[mask], ".", ms=3, color=colour, label=name_)
        axes[2].plot(it, h["lr"], color=colour, label=name_, alpha=0.8)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("gradient calls")
    axes[0].set_ylabel("training minibatch loss (smoothed)")
    axes[0].set_title("equal gradient calls")
    axes[1].set_xlabel("iteration")
    axes[1].set_ylabel("Ŝ_k (Algorithm 2)")
    axes[1].set_title("stochastic sharpness")
    axes[2].set_xlabel("iteration")
    axes[2].set_ylabel("learning rate")
    axes[2].set_yscale("log")
    axes[2].set_title("η_k = η₀ Ŝ_k / median(Ŝ)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def bars_figure(solutions: dict[str, dict[str, Any]]):
    import matplotlib.pyplot as plt

    names = list(solutions)
    keys = [
        ("test_accuracy", "test accuracy"),
        ("phi", "ϕ(ε)"),
        ("S", "S(ε)"),
        ("S_hat", "Ŝ(γ)"),
        ("lambda_max", "λ_max"),
        ("trace", "tr(H)"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    colours = [
        "tab:gray" if "sgd" in n and "salr" not in n else "tab:red" if "salr" in n else "tab:blue" for n in names
    ]
    for ax, (key, title) in zip(axes.ravel(), keys):
        vals = [solutions[n][key] for n in names]
        vals = [v if isinstance(v, (int, float)) and math.isfinite(v) else np.nan for v in vals]
        ax.barh(range(len(names)), vals, color=colours)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels([label(n) for n in names], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title)
    fig.tight_layout()
    return fig


def scatter_plotly(solutions: dict[str, dict[str, Any]]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(solutions)
    fig = make_subplots(rows=1, cols=3, subplot_titles=("λ_max", "Ŝ(γ)", "S(ε)"))
    for col, key in enumerate(("lambda_max", "S_hat", "S"), start=1):
        fig.add_trace(
            go.Scatter(
                x=[solutions[n][key] for n in names],
                y=[solutions[n]["test_accuracy"] for n in names],
                mode="markers+text",
                text=[label(n) for n in names],
                textposition="top center",
                textfont={"size": 9},
                marker={"size": 9},
                showlegend=False,
                hovertemplate="%{text}<br>%{x:.4g}<br>test accuracy %{y:.4f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=key, row=1, col=col)
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_layout(height=430, margin={"t": 40, "b": 40})
    return fig
