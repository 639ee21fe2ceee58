"""The demo's report: tables of every solution's numbers, training/SALR/measurement figures, the surfaces."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..report import Report, write_json

__all__ = ["write_report"]

_LABELS = {
    "case2/sgd": "Case II · SGD",
    "case2/swa": "Case II · SWA",
    "case2/dswa": "Case II · DSWA",
    "case2/tswa": "Case II · TSWA",
    "case1/sgd": "Case I · SGD",
    "case1/swa": "Case I · SWA",
    "case1/dswa": "Case I · DSWA",
    "case1/tswa": "Case I · TSWA",
    "equal-budget/sgd": "SGD (equal calls)",
    "equal-budget/salr-sgd": "SGD-SALR (equal calls)",
}


def _label(name: str) -> str:
    return _LABELS.get(name, name)


def _training_figure(results: dict[str, Any]):
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


def _salr_figure(results: dict[str, Any]):
    import matplotlib.pyplot as plt

    hist = results["histories"]
    sgd, salr = hist["equal-budget/sgd"], hist["equal-budget/salr-sgd"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    axes[0].plot(sgd["grad_calls"], _smooth(sgd["loss"]), label="SGD", color="black")
    axes[0].plot(salr["grad_calls"], _smooth(salr["loss"]), label="SGD-SALR", color="tab:red")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("gradient calls")
    axes[0].set_ylabel("training minibatch loss (smoothed)")
    axes[0].set_title("equal gradient calls")
    axes[0].legend(fontsize=8)
    it = np.asarray(salr["iteration"])
    sharp = np.asarray(salr["sharpness"], dtype=np.float64)
    mask = np.isfinite(sharp)
    axes[1].plot(it[mask], sharp[mask], ".", ms=3, color="tab:purple")
    axes[1].set_xlabel("iteration")
    axes[1].set_ylabel("Ŝ_k (Algorithm 2)")
    axes[1].set_title("stochastic sharpness")
    axes[2].plot(it, salr["lr"], color="tab:red", label="SGD-SALR η_k")
    axes[2].plot(sgd["iteration"], sgd["lr"], color="black", label="SGD η")
    axes[2].set_xlabel("iteration")
    axes[2].set_ylabel("learning rate")
    axes[2].set_title("η_k = η₀ Ŝ_k / median(Ŝ)")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _bars_figure(solutions: dict[str, dict[str, Any]]):
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
        ax.set_yticklabels([_label(n) for n in names], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _scatter_plotly(solutions: dict[str, dict[str, Any]]):
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
                text=[_label(n) for n in names],
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


def write_report(out: Path, results: dict[str, Any], surfaces: dict[str, Any]) -> dict[str, Path]:
    """Write ``results.json`` and ``report.html`` (figures under ``figures/``) into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    json_path = write_json(out / "results.json", results)
    cfg = results["config"]
    m = results["machine"]
    subtitle = (
        f"model {cfg['model']} on MNIST-1D · seed {results['seed']} · {'quick' if results['quick'] else 'full'} run"
        f" · torch {m['torch']} on {m['threads']} CPU thread(s) · stages computed in "
        f"{sum(results['seconds'].values()):.0f} s, this run {results['wall_seconds']:.0f} s wall"
    )
    rep = Report(results["title"], out, subtitle=subtitle)
    sols = results["solutions"]

    rep.heading("Solutions")
    rep.text(
        "Every solution measured on the same training objective (the first "
        f"{min(cfg['measure_samples'], 4000)} training examples): ϕ(ε) is Keskar's sharpness (SALR paper eq. 1), "
        "S(ε) the two-sided sharpness max − min of the loss in the Euclidean ball of radius ε (eq. 2), Ŝ(γ) the "
        f"probe of Definition 1 (γ = {cfg['gamma']}, {cfg['probe_steps']} descent and ascent steps); λ_max is "
        "the top Hessian eigenvalue (Lanczos) and tr(H) the Hutchinson trace. SWA, DSWA and TSWA each ran "
        f"{cfg['swa_iterations']} iterations (k rounds of n/k, a sample every {cfg['swa_cycle']} iterations)."
    )
    rows = [{"solution": _label(n), **s} for n, s in sols.items()]
    rep.table(
        rows,
        columns=[
            "solution",
            "test_accuracy",
            "test_loss",
            "train_loss",
            "phi",
            "S",
            "S_hat",
            "lambda_max",
            "trace",
            "gradient_calls",
        ],
        headers={
            "test_accuracy": "test acc.",
            "test_loss": "test loss",
            "train_loss": "train loss",
            "phi": "ϕ(ε)",
            "S": "S(ε)",
            "S_hat": "Ŝ(γ)",
            "lambda_max": "λ_max",
            "trace": "tr(H)",
            "gradient_calls": "gradient calls",
        },
        caption=f"all solutions (ε = {cfg['epsilon']})",
    )
    rep.matplotlib(_bars_figure(sols), "solutions", caption="the numbers of the table, per solution")
    rep.plotly(_scatter_plotly(sols), caption="test accuracy against curvature and sharpness (hover for names)")

    rep.heading("Case I and Case II: SWA, DSWA, TSWA")
    rep.text(
        "SWA Revisited (Guo, Jin, Liu) distinguishes SGD stopped before convergence (Case II) from SGD run to "
        "convergence (Case I). From each SGD solution, SWA (Algorithm 1), DSWA (Algorithm 2) and TSWA "
        "(Algorithm 3) spend the same budget; DSWA and TSWA restart from the previous round's average."
    )
    for case, title in (("case2", "Case II"), ("case1", "Case I")):
        rep.table(
            [{"method": m.upper(), **sols[f"{case}/{m}"]} for m in ("sgd", "swa", "dswa", "tswa")],
            columns=["method", "test_accuracy", "train_loss", "S_hat", "lambda_max", "trace", "iterations"],
            headers={
                "test_accuracy": "test acc.",
                "train_loss": "train loss",
                "S_hat": "Ŝ(γ)",
                "lambda_max": "λ_max",
                "trace": "tr(H)",
            },
            caption=title,
        )
    rep.matplotlib(_training_figure(results), "training", caption="training loss of SGD and the averaging phases")

    rep.heading("SALR against SGD at equal gradient calls")
    s1, s2 = sols["equal-budget/sgd"], sols["equal-budget/salr-sgd"]
    rep.text(
        f"Both start from the same weights and spend {s1['gradient_calls']} gradient calls; SGD-SALR's sharpness "
        f"probes (every {cfg['salr_every']} iterations, {cfg['salr_steps']} descent and ascent steps of "
        f"γ = {cfg['salr_gamma']}) are counted, so it takes fewer optimizer steps "
        f"({s2['iterations']} against {s1['iterations']})."
    )
    rep.table(
        [{"method": "SGD", **s1}, {"method": "SGD-SALR", **s2}],
        columns=[
            "method",
            "test_accuracy",
            "train_loss",
            "S_hat",
            "lambda_max",
            "trace",
            "iterations",
            "gradient_calls",
        ],
        headers={
            "test_accuracy": "test acc.",
            "train_loss": "train loss",
            "S_hat": "Ŝ(γ)",
            "lambda_max": "λ_max",
            "trace": "tr(H)",
            "gradient_calls": "gradient calls",
        },
    )
    rep.matplotlib(
        _salr_figure(results),
        "salr",
        caption="loss at equal gradient calls; SALR's Ŝ_k and rate η_k (the panels of the SALR paper's Fig. 3)",
    )

    rep.heading("Test-error plane through three SWA samples")
    plane, line = surfaces["plane"], surfaces["line"]
    rep.text(
        "The plane through three samples of the Case I SWA run (SWA Revisited Fig. 6; Garipov et al. 2018): "
        f"{plane.shape[1]}×{plane.shape[0]} grid, test error at every node; the SWA average is marked by its "
        "projection onto the plane."
    )
    rep.matplotlib(
        plane.plot("matplotlib", metric="test_error", title="test error: plane through three SWA samples"),
        "plane",
        caption="test error on the plane",
    )
    rep.plotly(plane.plot("plotly", metric="test_error"), caption="the plane, interactive (drag to rotate)")

    rep.heading("SWA to DSWA line")
    rep.text(
        "θ(t) = (1 − t)·SWA + t·DSWA (Case I), t from −0.5 to 1.5: training loss and test error along the line "
        "(SWA Revisited Figs. 7–8)."
    )
    rep.matplotlib(
        line.plot("matplotlib", title="SWA → DSWA (Case I)"),
        "line",
        caption="train loss (left axis) and test error (right axis)",
    )
    rep.plotly(line.plot("plotly", title="SWA → DSWA (Case I)"), caption="the line, interactive")

    rep.heading("Cost")
    rep.table(
        [{"stage": k, "seconds": v} for k, v in results["seconds"].items()]
        + [{"stage": "total (wall)", "seconds": results["wall_seconds"]}],
        columns=["stage", "seconds"],
        caption="seconds per stage (reused stages show the time of the run that computed them)",
    )
    rep.heading("Settings")
    rep.table([{"setting": k, "value": v} for k, v in cfg.items()], columns=["setting", "value"])
    rep.link(json_path, "every number of this report: results.json")
    return {"report": rep.write(), "json": json_path}
