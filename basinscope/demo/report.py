"""The demo's report: mean ± sd over seeds of every solution with the per-seed numbers, the Case I convergence
check, SWA/DSWA/TSWA against the same-budget SGD baseline, SGD-SALR against SGD at equal gradient calls, the
first seed's sharpness and curvature measurements, and the surfaces with their marked points evaluated."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..report import Report, write_json
from .figures import bars_figure, label, salr_figure, scatter_plotly, training_figure
from .summary import fmt, mean_sd

__all__ = ["write_report"]

_CASE_METHODS = ("sgd", "sgd-continued", "swa", "dswa", "tswa")


def _pct(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * v:.1f}"


def _seed_row(results: dict[str, Any], name: str) -> dict[str, Any]:
    """Mean ± sd and the per-seed test accuracies of one solution (in %)."""
    summ = results["summary"][name]
    row: dict[str, Any] = {
        "solution": label(name),
        "test accuracy, % (mean ± sd)": fmt(summ["test_accuracy"], 100, 2),
        "train loss (mean ± sd)": fmt(summ["train_loss"], 1, 4),
    }
    for key, docs in results["per_seed"].items():
        d = docs.get(name)
        row[key] = "—" if d is None else ("diverged" if "diverged" in d else _pct(d["test_accuracy"]))
    first = next(iter(results["per_seed"].values())).get(name, {})
    row["gradient calls"] = first.get("gradient_calls")
    return row


def _paired(results: dict[str, Any], a: str, b: str) -> str:
    """Mean ± sd over seeds of the per-seed difference acc(a) − acc(b), in percentage points."""
    diffs = []
    for docs in results["per_seed"].values():
        da, db = docs.get(a), docs.get(b)
        if da and db and "diverged" not in da and "diverged" not in db:
            diffs.append(100 * (da["test_accuracy"] - db["test_accuracy"]))
    st = mean_sd(diffs)
    if st["mean"] is None:
        return "n/a"
    return f"{st['mean']:+.2f}" + ("" if st["sd"] is None else f" ± {st['sd']:.2f}") + f" pp (n = {st['n']})"


def _sample_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per SWA run: the average's test accuracy against its samples' (mean/best/worst), over seeds, in %."""
    rows = []
    for case in ("case2", "case1"):
        for method in ("swa", "dswa", "tswa"):
            name = f"{case}/{method}"
            docs = [t[name] for t in results["training"].values() if name in t and "sample_test_accuracy" in t[name]]
            if not docs:
                continue
            accs = [d["sample_test_accuracy"] for d in docs]
            means = [sum(a) / len(a) for a in accs]
            avg = [
                results["per_seed"][k][name]["test_accuracy"]
                for k in results["training"]
                if name in results["training"][k]
            ]
            rounds = [d["round_average_test_accuracy"] for d in docs]
            rows.append(
                {
                    "run": label(name),
                    "average, %": fmt(results["summary"][name]["test_accuracy"], 100, 2),
                    "samples": len(accs[0]),
                    "samples' mean, %": fmt(mean_sd(means), 100, 2),
                    "best sample, %": fmt(mean_sd([max(a) for a in accs]), 100, 2),
                    "worst sample, %": fmt(mean_sd([min(a) for a in accs]), 100, 2),
                    "average − samples' mean, pp": fmt(mean_sd([x - m for x, m in zip(avg, means)]), 100, 2),
                    "round averages, % (mean over seeds)": ", ".join(
                        f"{100 * sum(r[i] for r in rounds) / len(rounds):.1f}" for i in range(len(rounds[0]))
                    ),
                }
            )
    return rows


def write_report(out: Path, results: dict[str, Any], surfaces: dict[str, Any]) -> dict[str, Path]:
    """Write ``results.json`` and ``report.html`` (figures under ``figures/``) into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    json_path = write_json(out / "results.json", results)
    cfg = results["config"]
    m = results["machine"]
    seeds = results["seeds"]
    columns = [
        "solution",
        "test accuracy, % (mean ± sd)",
        *results["per_seed"],
        "train loss (mean ± sd)",
        "gradient calls",
    ]
    subtitle = (
        f"model {cfg['model']} on MNIST-1D ({results['train_samples']} training, {results['test_samples']} test "
        f"examples) · seeds {', '.join(map(str, seeds))} · {'quick' if results['quick'] else 'full'} run · torch "
        f"{m['torch']} on {m['threads']} CPU thread(s) · stages computed in {sum(results['seconds'].values()):.0f} s,"
        f" this run {results['wall_seconds']:.0f} s wall"
    )
    rep = Report(results["title"], out, subtitle=subtitle)
    n_test = results["test_samples"]

    rep.heading("Settings in brief")
    rep.text(
        f"Every training stage ran once per seed ({len(seeds)} seeds: {', '.join(map(str, seeds))}); accuracies are "
        f"on the {n_test} MNIST-1D test examples (one example is 0.1 percentage points), given as mean ± sample "
        "standard deviation over the seeds with every seed's value beside it. SGD everywhere (also inside SWA and "
        f"SGD-SALR) uses momentum {cfg['momentum']} and weight decay {cfg['weight_decay']}, batch size "
        f"{cfg['batch_size']} (SWA Revisited §5). Pre-SWA SGD follows the Fig. 9 schedule (C_h = {cfg['lr_high']} "
        f"for the first half of L, linear decrease, C_l = {cfg['lr_low']} from 90 % of L) with L = "
        f"{cfg['case2_iterations']} iterations in Case II and L = {cfg['case1_iterations']} in Case I. SWA, DSWA "
        f"and TSWA each spend n = {cfg['swa_iterations']} iterations at the constant SWA rate {cfg['swa_lr']} (the "
        f"high-constant CHC option), a sample every c = {cfg['swa_cycle']} iterations (one epoch)."
    )

    rep.heading("Case I and Case II: SWA, DSWA, TSWA")
    rep.text(
        "SWA Revisited (Guo, Jin, Liu) distinguishes SGD stopped before convergence (Case II) from SGD run to "
        "convergence (Case I). From each SGD solution SWA (Algorithm 1), DSWA (Algorithm 2) and TSWA (Algorithm 3) "
        "spend the same budget; DSWA and TSWA restart from the previous round's average. 'SGD, same budget' is SGD "
        f"continued from the same solution for the same {cfg['swa_iterations']} iterations at the same rate — the "
        "SWA run's last iterate — so any gain of SWA over it is the averaging's, not the extra iterations'."
    )
    for case, title in (("case2", "Case II (SGD stopped early)"), ("case1", "Case I (SGD to convergence)")):
        names = [f"{case}/{x}" for x in _CASE_METHODS if f"{case}/{x}" in results["summary"]]
        rep.table([_seed_row(results, n) for n in names], columns=columns, caption=title)
        rep.text(
            f"{title}, per-seed differences of test accuracy: SWA − SGD (same budget) "
            f"{_paired(results, f'{case}/swa', f'{case}/sgd-continued')}; DSWA − SWA "
            f"{_paired(results, f'{case}/dswa', f'{case}/swa')}; TSWA − DSWA "
            f"{_paired(results, f'{case}/tswa', f'{case}/dswa')}. The paper reports gains of DSWA/TSWA over SWA in "
            "Case II (Tables 1–2) and none in Case I (Fig. 8); read the signs and spreads above against that."
        )
    rep.table(_sample_rows(results), caption="every SWA sample evaluated: the samples against their average")
    rep.text(
        "Each SWA, DSWA and TSWA run collects a sample every c iterations; the table gives, per run, the test "
        "accuracy of the average (mean ± sd over seeds), the mean, best and worst of its samples' accuracies "
        "(each averaged over seeds) and the per-seed difference average − mean of the samples, and the accuracy "
        "of each round's average (DSWA and TSWA restart from these). SWA Revisited's reading is that the "
        "averaging mainly reduces variance: compare the average with its samples."
    )
    rep.matplotlib(training_figure(results), "training", caption=f"training loss, seed {seeds[0]}")

    rep.heading("Case I convergence check")
    rows = []
    for key, cases in results["convergence"].items():
        for case in ("case1", "case2"):
            c = cases[case]
            rows.append({"run": f"{label(case + '/sgd')} ({key})", **c})
    rep.table(
        rows,
        columns=[
            "run",
            "train_loss_at_90",
            "train_loss_end",
            "relative_change_last_10",
            "grad_norm_end",
            "train_accuracy_end",
            "minibatch_loss_previous_10",
            "minibatch_loss_last_10",
        ],
        headers={
            "train_loss_at_90": "train loss at 0.9 L",
            "train_loss_end": "train loss at L",
            "relative_change_last_10": "relative decrease over the last 0.1 L",
            "grad_norm_end": "‖∇f‖ at L",
            "train_accuracy_end": "train accuracy at L",
            "minibatch_loss_previous_10": "mean minibatch loss, 0.8–0.9 L",
            "minibatch_loss_last_10": "mean minibatch loss, 0.9–1 L",
        },
        caption="full training set (all training examples) loss and gradient norm; Case II for contrast",
    )
    conv = results["convergence"].values()
    rel1 = mean_sd([c["case1"]["relative_change_last_10"] for c in conv])
    g1, g2 = mean_sd([c["case1"]["grad_norm_end"] for c in conv]), mean_sd([c["case2"]["grad_norm_end"] for c in conv])
    acc1 = mean_sd([c["case1"]["train_accuracy_end"] for c in conv])
    rel2 = mean_sd([c["case2"]["relative_change_last_10"] for c in conv])
    acc2 = mean_sd([c["case2"]["train_accuracy_end"] for c in conv])
    verdict = (
        "by this check Case I has converged"
        if rel1["mean"] < 0.01
        else "by this check Case I has NOT fully converged: its loss is still falling at the end of the schedule"
    )
    rep.text(
        "The check: SGD has converged when the full training loss no longer decreases over the final constant-C_l "
        "segment (the last 0.1 L) — a relative decrease below 1 % — with a full-batch gradient small against Case "
        f"II's. Measured: Case I's loss fell by {fmt(rel1, 100, 1)} % over the last 0.1 L (mean ± sd over seeds), "
        f"train accuracy {fmt(acc1, 100, 2)} %, ‖∇f‖ = {fmt(g1, 1, 3)} against {fmt(g2, 1, 3)} in Case II: {verdict}. "
        f"Case II's loss fell by {fmt(rel2, 100, 1)} % over its last 0.1 L at train accuracy {fmt(acc2, 100, 2)} %: "
        "a small decrease over the final low-rate segment alone does not show convergence, the training accuracy "
        "and gradient norm have to be read with it."
    )

    rep.heading("SALR against SGD at equal gradient calls")
    salr_names = [n for n in results["summary"] if n.startswith("equal-budget/salr-sgd")]
    rep.text(
        f"All start from the same weights (per seed) and spend {cfg['salr_gradient_calls']} gradient calls: SGD at "
        f"the constant rate η = {cfg['salr_lr']}; SGD-SALR (Algorithm 3, momentum {cfg['momentum']}) with η₀ = "
        f"{cfg['salr_lr']}, a sharpness probe every c = {cfg['salr_every']} iterations with n₁ = n₂ = "
        f"{cfg['salr_steps']} steps of γ = {cfg['salr_gamma']} (Algorithm 2). The probes' gradient calls are "
        "counted, so SGD-SALR takes fewer optimizer steps. 'Unbounded' is Algorithm 1 exactly; a bound "
        "η_k ≤ r·η₀ is the runner's max_ratio option (DemoConfig.salr_max_ratios). The SALR paper reports SGD-SALR "
        "above SGD at equal gradient calls (Tables I–III). Per-seed differences SGD-SALR − SGD: "
        + "; ".join(f"{label(n)}: {_paired(results, n, 'equal-budget/sgd')}" for n in salr_names)
        + ". Largest rate of the first seed's runs: "
        + "; ".join(
            f"{label(n)}: {max(results['histories'][n]['lr']) / cfg['salr_lr']:.1f}·η₀"
            for n in salr_names
            if results["histories"].get(n, {}).get("lr")
        )
        + "."
    )
    diverged = {n: results["summary"][n]["diverged"] for n in salr_names if results["summary"][n]["diverged"]}
    if diverged:
        rep.text(
            "Diverged runs (the loss became non-finite; excluded from mean ± sd): "
            + "; ".join(f"{label(n)} on {', '.join(v)}" for n, v in diverged.items())
        )
    rep.table([_seed_row(results, n) for n in ["equal-budget/sgd", *salr_names]], columns=columns)
    rep.matplotlib(
        salr_figure(results),
        "salr",
        caption=f"seed {seeds[0]}: loss at equal gradient calls; SALR's Ŝ_k and rate η_k (SALR Fig. 3's panels)",
    )

    sols = results["solutions"]
    rep.heading("Sharpness and curvature of every solution (first seed)")
    rep.text(
        f"Seed {seeds[0]}'s solutions measured on the same training objective (the first "
        f"{results['measure_samples']} training examples): ϕ(ε) is Keskar's sharpness (SALR paper eq. 1), S(ε) the "
        "two-sided sharpness max − min of the loss in the Euclidean ball of radius ε (eq. 2), Ŝ(γ) the probe of "
        f"Definition 1 (γ = {cfg['gamma']}, {cfg['probe_steps']} descent and ascent steps); λ_max is the top "
        "Hessian eigenvalue (Lanczos) and tr(H) the Hutchinson trace. One seed only: these numbers carry no spread."
    )
    rep.table(
        [{"solution": label(n), **s} for n, s in sols.items()],
        columns=[
            "solution",
            "test_accuracy",
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
            "train_loss": "train loss",
            "phi": "ϕ(ε)",
            "S": "S(ε)",
            "S_hat": "Ŝ(γ)",
            "lambda_max": "λ_max",
            "trace": "tr(H)",
            "gradient_calls": "gradient calls",
        },
        caption=f"seed {seeds[0]} (ε = {cfg['epsilon']})",
    )
    rep.matplotlib(bars_figure(sols), "solutions", caption="the numbers of the table, per solution")
    rep.plotly(scatter_plotly(sols), caption="test accuracy against curvature and sharpness (hover for names)")

    rep.heading("Test-error plane through three SWA samples")
    plane = surfaces["plane"]
    marked = results["surfaces"]["plane"]["marked_points"]
    rep.text(
        f"The plane through three samples of seed {seeds[0]}'s Case I SWA run (SWA Revisited Fig. 6; Garipov et al. "
        f"2018): {plane.shape[1]}×{plane.shape[0]} grid, test error at every node. The samples lie on grid nodes; the "
        "SWA average is drawn at its projection onto the plane. Every marked point is evaluated at its own weights "
        "below, beside the plane's value at its place (bilinear interpolation) and its distance from the plane."
    )
    rep.table(
        marked,
        headers={
            "train_loss": "train loss (own weights)",
            "test_error": "test error (own weights)",
            "plane_train_loss": "train loss on the plane",
            "plane_test_error": "test error on the plane",
            "distance_from_plane": "distance from the plane",
        },
        caption="marked points",
    )
    rep.matplotlib(
        plane.plot("matplotlib", metric="test_error", title="test error: plane through three SWA samples"),
        "plane",
        caption="test error on the plane",
    )
    rep.plotly(plane.plot("plotly", metric="test_error"), caption="the plane, interactive (drag to rotate)")

    rep.heading("Lines between SWA and DSWA/TSWA")
    rep.text(
        "θ(t) = (1 − t)·SWA + t·DSWA (or TSWA), t from −0.5 to 1.5, seed "
        f"{seeds[0]}: training loss and test error along the line; Case II as SWA Revisited Fig. 7, Case I as Fig. 8. "
        "t = 0 and t = 1 are the solutions themselves (evaluated there)."
    )
    for name, j in results["surfaces"].items():
        if not name.startswith("line_"):
            continue
        line = surfaces[name]
        rep.matplotlib(
            line.plot("matplotlib", title=j["title"]), name, caption="train loss (left) and test error (right)"
        )
    first_line = next(n for n in results["surfaces"] if n.startswith("line_"))
    rep.plotly(
        surfaces[first_line].plot("plotly", title=results["surfaces"][first_line]["title"]),
        caption="the first line, interactive",
    )

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
