"""The demo's report: the verdict table first (each paper claim, its number in the paper, the number here with
its 95 % interval over seeds, the verdict), then the figures, then the details folded in ``<details>`` blocks
(settings, per-seed numbers, the SWA samples, the Case I convergence check, the measurements, the cost).

Every number of the verdict table and of the experiment figures comes from the experiments'
:class:`~basinscope.experiments.ExperimentResult` objects; the demo adds only the measurements of the first
seed's solutions and the plane through three SWA samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..experiments.page import add_experiment_details, add_verdict_table
from ..report import Report, write_json
from .figures import METHOD_LABELS, bars_figure, label, scatter_plotly
from .summary import fmt, mean_sd

__all__ = ["write_report"]


def _accuracy_rows(res: Any) -> list[dict[str, Any]]:
    """Per SWA rate and method: test accuracy mean ± sd over seeds (%) and every seed's value."""
    rows = []
    for rate, methods in res.numbers["test_accuracy"].items():
        for method, values in methods.items():
            row: dict[str, Any] = {"SWA rate": rate, "method": METHOD_LABELS.get(method, method)}
            row["test accuracy, % (mean ± sd)"] = fmt(mean_sd(values), 1, 2)
            row.update({f"seed {s}": f"{v:.1f}" for s, v in zip(res.seeds, values)})
            rows.append(row)
    return rows


def _sample_rows(res: Any) -> list[dict[str, Any]]:
    """Per SWA rate and method: the final round's samples against the average (means over seeds, %)."""
    rows = []
    acc = res.numbers["test_accuracy"]
    for rate, methods in res.numbers["samples"].items():
        for method, st in methods.items():
            avg = acc[rate][method]
            rows.append(
                {
                    "SWA rate": rate,
                    "method": method.upper(),
                    "samples in the last round": st["count"][0],
                    "average, %": fmt(mean_sd(avg), 1, 2),
                    "samples' mean, %": fmt(mean_sd(st["mean"]), 1, 2),
                    "samples' sd, pp": fmt(mean_sd(st["sd"]), 1, 2),
                    "worst sample, %": fmt(mean_sd(st["worst"]), 1, 2),
                    "best sample, %": fmt(mean_sd(st["best"]), 1, 2),
                    "average − samples' mean, pp": fmt(mean_sd([a - m for a, m in zip(avg, st["mean"])]), 1, 2),
                }
            )
    return rows


_CONVERGENCE = {
    "train_loss_at_90": "train loss at 0.9 L",
    "train_loss_end": "train loss at L",
    "relative_change_last_10": "relative decrease over the last 0.1 L",
    "grad_norm_end": "‖∇f‖ at L",
    "train_accuracy_end": "train accuracy at L",
}


def write_report(
    out: Path, doc: dict[str, Any], results: dict[str, Any], figures: dict[str, dict[str, Path]], plane: Any
) -> dict[str, Path]:
    """Write ``results.json`` and ``report.html`` (figures under ``figures/``) into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    json_path = write_json(out / "results.json", doc)
    m, seeds = doc["machine"], doc["seeds"]
    subtitle = (
        f"size {doc['size']} · seeds {', '.join(map(str, seeds))} · model {doc['config']['model']} on MNIST-1D "
        f"(4,000 training, 1,000 test examples) · torch {m['torch']} on {m['threads']} CPU thread(s) · {m['date']} "
        f"· this run {doc['wall_seconds']:.0f} s wall"
    )
    rep = Report(doc["title"], out, subtitle=subtitle)
    if doc["size"] == "quick":
        rep.text("Quick run: tiny budgets for tests. Its numbers and verdicts are not evidence of anything.")

    rep.heading("Paper claims and verdicts")
    add_verdict_table(rep, list(results.values()))
    for name, why in doc["skipped"].items():
        rep.text(f"Experiment {name} skipped: {why}.")

    rep.heading("Figures")
    for name, figs in figures.items():
        for caption, path in figs.items():
            rep.figure(path, caption=f"{name}: {caption}")
    sols = doc["solutions"]
    if sols:
        rep.matplotlib(
            bars_figure(sols), "solutions", caption=f"seed {seeds[0]}: test accuracy, sharpness and curvature"
        )
        rep.plotly(scatter_plotly(sols), caption="test accuracy against curvature and sharpness (hover for names)")
    if plane is not None:
        rep.matplotlib(
            plane.plot("matplotlib", metric="test_error", title="test error: plane through three SWA samples"),
            "plane",
            caption=f"seed {seeds[0]}, Case I SWA run: test error on the plane through three samples (Fig. 6)",
        )
        rep.plotly(plane.plot("plotly", metric="test_error"), caption="the plane, interactive (drag to rotate)")

    rep.heading("Details")
    rep.open_details("What was run")
    rep.text(
        f"Each experiment ran with {len(seeds)} seeds ({', '.join(map(str, seeds))}) at size '{doc['size']}' "
        "(basinscope reproduce NAME --size demo gives the same numbers; --size full the paper-scale budgets). "
        "SWA Revisited (Guo, Jin, Liu), §5: SGD before SWA follows the Fig. 9 schedule (C_h = 0.05 for the first "
        "half of L, linear decrease, C_l = 0.01 from 0.9 L); Case II stops early (L = 30 epochs), Case I runs long "
        "(convergence checked below); SWA, DSWA and TSWA spend the same n iterations at a constant SWA rate (the "
        "high-constant CHC option), a sample every epoch; no momentum, no weight decay, minibatch 128. 'SGD, same "
        "budget' is SGD continued from the same solution for the same n iterations at the SWA rate: the SWA run's "
        "last iterate. Accuracies are on the 1,000 MNIST-1D test examples (one example is 0.1 points)."
    )
    rep.close_details()
    for name, res in results.items():
        add_experiment_details(rep, res)
        if "test_accuracy" in res.numbers and "samples" in res.numbers:
            rep.open_details(f"{name}: test accuracy per method, SWA rate and seed; the samples against the average")
            rep.table(_accuracy_rows(res), caption=res.title)
            rep.table(_sample_rows(res), caption="the final round's samples against their average (means over seeds)")
            rep.text(
                "SWA Revisited §3.2 reads the averaging as variance reduction, like tail averaging: compare the "
                "average with the spread of its samples, and the sd over seeds of SWA with that of 'SGD, same budget'."
            )
            rep.close_details()
        if "convergence" in res.numbers and name.endswith("case1"):
            rep.open_details(f"{name}: Case I convergence check")
            rows = [
                {"seed": s, **{h: c[k] for k, h in _CONVERGENCE.items()}}
                for s, c in zip(res.seeds, res.numbers["convergence"])
            ]
            rep.table(rows, caption="full training set, at the end of the Case I SGD")
            rep.text(
                "Converged by the check when the full training loss falls by less than 1 % over the final constant "
                "C_l segment (the last 0.1 L). "
                + (
                    "Every seed passes."
                    if all(res.numbers["converged"])
                    else "Not "
                    "every seed passes: Case I's SGD is still improving, so Case I here is 'longer SGD', not converged "
                    "SGD; read the Case I verdicts with that."
                )
            )
            rep.close_details()
    if sols:
        rep.open_details(f"Sharpness and curvature of the first seed's solutions (seed {seeds[0]})")
        cfg = doc["config"]
        rep.text(
            f"Measured on the first {doc['measure_samples']} training examples: ϕ(ε) Keskar's sharpness (SALR paper "
            f"eq. 1), S(ε) two-sided sharpness (eq. 2), Ŝ(γ) the probe of Definition 1 (γ = {cfg['gamma']}, "
            f"{cfg['probe_steps']} steps each way), λ_max the top Hessian eigenvalue (Lanczos), tr(H) the Hutchinson "
            f"trace; ε = {cfg['epsilon']}. One seed: no spread."
        )
        cols = ["solution", "test_accuracy", "train_loss", "phi", "S", "S_hat", "lambda_max", "trace"]
        rep.table([{"solution": label(n), **s} for n, s in sols.items()], columns=cols)
        rep.close_details()
    if doc["plane"] is not None:
        rep.open_details("The plane's marked points, each evaluated at its own weights")
        rep.table(
            doc["plane"]["marked_points"],
            headers={
                "train_loss": "train loss (own weights)",
                "test_error": "test error (own weights)",
                "plane_train_loss": "train loss on the plane",
                "plane_test_error": "test error on the plane",
                "distance_from_plane": "distance from the plane",
            },
        )
        rep.text(
            "The samples lie on grid nodes; the SWA average is drawn at its projection onto the plane (its value on "
            "the plane by bilinear interpolation, beside its own)."
        )
        rep.close_details()
    rep.open_details("Cost")
    rep.table(
        [{"step": k, "seconds": v} for k, v in doc["seconds"].items()]
        + [{"step": "total (wall)", "seconds": doc["wall_seconds"]}],
        columns=["step", "seconds"],
        caption="seconds per step (a reused step shows the time it took now)",
    )
    rep.close_details()
    rep.link(json_path, "every number of this report: results.json")
    return {"report": rep.write(), "json": json_path}
