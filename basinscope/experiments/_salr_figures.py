"""Figures of the SALR experiments (matplotlib, the shared style of :mod:`basinscope.style`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import style
from .result import ExperimentResult
from .stats import t_half_width

__all__ = ["accuracy_vs_budget", "mean_interval", "table2_bars", "train_loss_vs_budget"]

COLOURS = {"SGD": "#440154", "SGD-SALR": "#21918c", "SGD-SALR (released)": "#b5de2b"}  # viridis


def mean_interval(values: Sequence[float | None], level: float = 0.95) -> tuple[float, float]:
    """Mean of the finite ``values`` and the half-width of its Student t interval (``nan`` with fewer than 2)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size < 2:
        return (float(v.mean()) if v.size else float("nan")), float("nan")
    return float(v.mean()), t_half_width(v, level)


def _chance_filled(row: dict[str, list], classes: int = 10) -> list[float]:
    """Test accuracy in % per seed, a diverged run at chance."""
    return [100.0 / classes if d else 100.0 * a for a, d in zip(row["test_accuracy"], row["diverged"])]


def accuracy_vs_budget(
    result: ExperimentResult, folder: Path, filename: str = "salr_budget_accuracy.png"
) -> dict[str, Path]:
    """Per model: test accuracy (mean and 95 % interval over seeds) of every method against the budget, and below
    it the paired difference of each SALR variant − SGD with its 95 % interval (the claims whose text names the
    model as ``(model, ...``)."""
    budgets = result.settings["budgets"]
    models = result.settings["models"]
    fig, axes = style.new_figure(2, len(models), figsize=(4.6 * len(models), 6.0), squeeze=False)
    with style.context():
        for j, model in enumerate(models):
            top, bottom = axes[0][j], axes[1][j]
            for label, rows in result.numbers[model].items():
                if label in ("convergence", "converged_at"):
                    continue
                stats_ = [mean_interval(_chance_filled(rows[str(b)])) for b in budgets]
                m = [x for x, _ in stats_]
                h = [y for _, y in stats_]
                top.errorbar(budgets, m, yerr=h, marker="o", capsize=3, label=label, color=COLOURS.get(label))
            top.set_title(f"{model}: test accuracy at equal gradient calls")
            top.set_ylabel("test accuracy, % (mean, 95 % interval)")
            top.legend(loc="lower right")
            style.apply_scale(top, budgets, axis="x")
            for k, label in enumerate(sorted({c.a for c in result.claims if f"({model}," in c.text})):
                diffs = [c for c in result.claims if f"({model}," in c.text and c.a == label]
                xs = np.asarray(budgets[: len(diffs)], dtype=np.float64) * (1.0 + 0.015 * k)  # side by side
                mid = [c.interval.mean for c in diffs]
                err = [
                    [c.interval.mean - c.interval.low for c in diffs],
                    [c.interval.high - c.interval.mean for c in diffs],
                ]
                bottom.errorbar(xs, mid, yerr=err, marker="s", capsize=3, color=COLOURS.get(label), label=label)
            bottom.legend(loc="lower right")
            bottom.axhline(0.0, color="black", lw=0.8)
            bottom.set_ylabel("SALR − SGD, points (paired, 95 %)")
            bottom.set_xlabel("gradient calls (probe steps counted)")
            style.apply_scale(bottom, budgets, axis="x")
        style.finish(fig)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    style.save(fig, path)
    return {"SGD against SGD-SALR: test accuracy against gradient calls": path}


def table2_bars(result: ExperimentResult, folder: Path) -> dict[str, Path]:
    """Ŝ (×10⁻³) and test accuracy of every Table II method: mean and 95 % interval over seeds."""
    rows: dict[str, Any] = result.numbers["methods"]
    labels = list(rows)
    fig, (left, right) = style.new_figure(1, 2, figsize=(9.5, 3.6))
    with style.context():
        x = np.arange(len(labels))
        sharp = [mean_interval([None if v is None else 1e3 * v for v in rows[k]["sharpness"]]) for k in labels]
        acc = [mean_interval(_chance_filled(rows[k])) for k in labels]
        colours = [style_colour(i, len(labels)) for i in range(len(labels))]
        left.bar(x, [m for m, _ in sharp], yerr=[h for _, h in sharp], capsize=3, color=colours)
        left.set_ylabel("Ŝ of the final solution, ×10⁻³")
        _clip_outliers(left, x, sharp)
        right.bar(x, [m for m, _ in acc], yerr=[h for _, h in acc], capsize=3, color=colours)
        right.set_ylabel("test accuracy, %")
        lo = min(m - (h if math.isfinite(h) else 0) for m, h in acc)
        right.set_ylim(max(0.0, lo - 5.0), None)
        left.set_title(f"{result.numbers['model']}, {result.numbers['budget']} gradient calls (mean, 95 %)")
        style.finish(fig)
        for ax in (left, right):  # after finish: the method names, not plain numbers, label this axis
            ax.set_xticks(x, labels, rotation=30, ha="right")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "salr_table2.png"
    style.save(fig, path)
    return {"Table II: sharpness and accuracy of the final solutions": path}


def off_scale(stats: Sequence[tuple[float, float]], factor: float = 5.0) -> list[int]:
    """Indices of the bars whose top (mean + half-width) exceeds ``factor`` × the median top of all bars (a run
    that blew up, e.g. a collapsed Entropy-SGD-SALR seed with Ŝ = 20): drawn to scale they flatten the rest."""
    tops = [m + (h if math.isfinite(h) else 0.0) for m, h in stats]
    finite = [t for t in tops if math.isfinite(t)]
    if not finite:
        return []
    ref = float(np.median(np.abs(finite)))
    return [i for i, t in enumerate(tops) if math.isfinite(t) and ref > 0 and t > factor * ref]


def _clip_outliers(ax: Any, x: np.ndarray, stats: Sequence[tuple[float, float]]) -> None:
    """Limit ``ax`` to the bars that are not :func:`off_scale`; write each off-scale bar's value at the top."""
    out = off_scale(stats)
    inside = [(m, h if math.isfinite(h) else 0.0) for i, (m, h) in enumerate(stats) if i not in out]
    if not out or not inside:
        return
    top = 1.3 * max(m + h for m, h in inside)
    ax.set_ylim(min(0.0, min(m - h for m, h in inside)), top)
    for i in out:
        m, h = stats[i]
        ax.text(x[i], 0.97 * top, f"{m:.3g} ± {h:.3g}\n(off scale)", ha="center", va="top", fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0})  # fmt: skip


def style_colour(i: int, n: int) -> Any:
    """The ``i``-th of ``n`` colours of the shared colormap."""
    from matplotlib import colormaps

    return colormaps[style.CMAP](i / max(1, n - 1) * 0.9)


def train_loss_vs_budget(result: ExperimentResult, folder: Path) -> dict[str, Path]:
    """Per model: full training loss (mean and 95 % interval over the seeds that neither diverged nor blew up —
    a loss above ``settings["uniform_loss"]``, a uniform guess's; the legend counts those left out) of every
    method against the budget — where a curve flattens, that method has converged."""
    budgets = result.settings["budgets"]
    models = result.settings["models"]
    limit = result.settings.get("uniform_loss", math.inf)
    fig, axes = style.new_figure(1, len(models), figsize=(4.6 * len(models), 3.4), squeeze=False)
    with style.context():
        for j, model in enumerate(models):
            ax = axes[0][j]
            for label, rows in result.numbers[model].items():
                if label in ("convergence", "converged_at"):
                    continue
                kept = [
                    [v for v, d in zip(rows[str(b)]["train_loss"], rows[str(b)]["diverged"]) if not d and v <= limit]
                    for b in budgets
                ]
                stats_ = [mean_interval(v) for v in kept]
                out = sum(len(rows[str(b)]["train_loss"]) - len(v) for b, v in zip(budgets, kept))
                name = label if not out else f"{label} ({out} runs diverged or blew up, left out)"
                ax.errorbar(budgets, [m for m, _ in stats_], yerr=[h for _, h in stats_], marker="o", capsize=3,
                            label=name, color=COLOURS.get(label))  # fmt: skip
            ax.set_title(f"{model}: full training loss")
            ax.set_ylabel("training loss (mean, 95 % interval)")
            ax.set_xlabel("gradient calls (probe steps counted)")
            ax.legend(loc="upper right")
            style.apply_scale(ax, budgets, axis="x")
        style.finish(fig)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "salr_convergence_train_loss.png"
    style.save(fig, path)
    return {"SGD and SGD-SALR: training loss against gradient calls": path}
