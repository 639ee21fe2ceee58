"""Figures of the SWA Revisited experiments (drawn from an :class:`ExperimentResult` alone, in the shared style).

* ``swa-case2`` / ``swa-case1``: test accuracy of every method at every SWA rate — each seed a dot, the mean with
  its 95 % t interval over seeds; Case II also: the first seed's samples against their averages (Fig. 4's view).
* ``swa-line``: train loss and test error along SWA → DSWA and SWA → TSWA (Fig. 7), every seed and the mean.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import register_figures
from .result import ExperimentResult
from .stats import t_half_width

__all__ = ["accuracy_figure", "line_figure", "samples_figure"]

_LABELS = {"sgd": "SGD", "sgd-continued": "SGD,\nsame budget", "swa": "SWA", "dswa": "DSWA", "tswa": "TSWA"}


def accuracy_figure(result: ExperimentResult):
    """One panel per SWA rate: test accuracy (%) of each method, every seed and the mean ± 95 % interval."""
    from .. import style

    table = result.numbers["test_accuracy"]
    rates = list(table)
    phase = result.settings.get("case1_swa" if result.name == "swa-case1" else "case2_swa", [])
    n_of = {f"{r:g}": n for r, n in phase}
    fig, axes = style.new_figure(1, len(rates), figsize=(4.2 * len(rates), 3.8), squeeze=False)
    for ax, rate in zip(axes[0], rates):
        methods = list(table[rate])
        for i, m in enumerate(methods):
            v = np.asarray(table[rate][m], dtype=np.float64)
            jitter = np.linspace(-0.12, 0.12, v.size) if v.size > 1 else np.zeros(1)
            ax.plot(i + jitter, v, "o", ms=3.5, color="0.55", zorder=2)
            half = t_half_width(v) if v.size > 1 else 0.0
            ax.errorbar([i], [v.mean()], yerr=[half], fmt="s", ms=6, color="C0", capsize=4, zorder=3)
        ax.set_title(f"SWA phase at rate {rate}" + (f", n = {n_of[rate]}" if rate in n_of else ""))
        ax.set_ylabel("test accuracy, %")
    style.finish(fig)
    for ax, rate in zip(axes[0], rates):  # method names on x, set after finish() (which formats numbers)
        methods = list(table[rate])
        ax.set_xticks(range(len(methods)), [_LABELS.get(m, m) for m in methods], fontsize=8)
    return fig


def samples_figure(result: ExperimentResult):
    """First seed at the highest SWA rate: every sample's test accuracy, the round averages and the SGD before."""
    from .. import style

    per_rate = result.numbers["first_seed_sample_accuracy"]
    rate = max(per_rate, key=float)
    runs = per_rate[rate]
    seed = result.seeds[0]
    sgd = result.numbers["test_accuracy"][rate]["sgd"][0]
    fig, axes = style.new_figure(1, len(runs), figsize=(4.2 * len(runs), 3.6), squeeze=False)
    for ax, (method, run) in zip(axes[0], runs.items()):
        acc, rounds = np.asarray(run["accuracy"]), np.asarray(run["rounds"])
        ax.plot(np.arange(1, acc.size + 1), acc, ".", ms=4, color="C0", label="samples")
        for r, avg in enumerate(run["round_averages"]):
            idx = np.nonzero(rounds == r)[0] + 1
            ax.hlines(avg, idx[0], idx[-1], color="C1", lw=2, label="round average" if r == 0 else None)
        ax.axhline(sgd, color="0.3", lw=1, ls=":", label="SGD before SWA")
        ax.set_xlabel("sample (one per epoch)")
        ax.set_ylabel("test accuracy, %")
        ax.set_title(f"{_LABELS[method]}, rate {rate}, seed {seed}")
        ax.legend(fontsize=7, loc="lower right")
    return style.finish(fig)


def line_figure(result: ExperimentResult):
    """Fig. 7: train loss and test error on θ(t) = (1 − t)·SWA + t·end, every seed (thin) and the mean (thick)."""
    from .. import style

    lines = result.numbers["lines"]
    fig, axes = style.new_figure(2, len(lines), figsize=(4.6 * len(lines), 6.4), squeeze=False)
    for col, (end, docs) in enumerate(lines.items()):
        ts = np.asarray(docs[0]["ts"])
        for row, (key, ylabel, scale) in enumerate(
            (("train_loss", "train loss", 1.0), ("test_error", "test error, %", 100.0))
        ):
            ax = axes[row][col]
            vals = np.asarray([d[key] for d in docs], dtype=np.float64) * scale
            for v in vals:
                ax.plot(ts, v, color="0.7", lw=0.8)
            ax.plot(ts, vals.mean(axis=0), color="C0", lw=2)
            style.apply_scale(ax, vals)
            style.label_lines(ax, [0.0, 1.0], ["SWA", end.upper()])
            ax.set_xlabel(f"t (0: SWA, 1: {end.upper()})")
            ax.set_ylabel(ylabel)
            ax.set_title(f"SWA → {end.upper()}: {ylabel.split(',')[0]} ({len(vals)} seeds, mean in blue)", fontsize=9)
    return style.finish(fig)


def _save(fig: Any, folder: Path, name: str) -> Path:
    from .. import style

    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    style.save(fig, path, dpi=110)
    return path


@register_figures("swa-case2")
def _case2(result: ExperimentResult, folder: Path) -> dict[str, Path]:
    return {
        "Case II: test accuracy per method and SWA rate (dots: seeds; squares: mean ± 95 % interval)": _save(
            accuracy_figure(result), folder, "swa-case2-accuracy"
        ),
        "Case II: every SWA sample's test accuracy against the averages (first seed, highest rate)": _save(
            samples_figure(result), folder, "swa-case2-samples"
        ),
    }


@register_figures("swa-case1")
def _case1(result: ExperimentResult, folder: Path) -> dict[str, Path]:
    return {
        "Case I: test accuracy per method and SWA rate (dots: seeds; squares: mean ± 95 % interval)": _save(
            accuracy_figure(result), folder, "swa-case1-accuracy"
        )
    }


@register_figures("swa-line")
def _line(result: ExperimentResult, folder: Path) -> dict[str, Path]:
    return {
        "Fig. 7: train loss and test error on the lines SWA → DSWA and SWA → TSWA (grey: seeds; blue: mean)": _save(
            line_figure(result), folder, "swa-line"
        )
    }
