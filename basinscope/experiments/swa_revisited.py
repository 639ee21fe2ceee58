"""SWA Revisited (Guo, Jin, Liu) on MNIST-1D: Case II (Tables 1–2), Case I, and the Fig. 7 line.

The paper's settings (§5), used as printed: SGD before SWA follows the Fig. 9 schedule (C_h = 0.05 for the first
half of L, a linear decrease until 0.9·L, then C_l = 0.01); Case II takes a short L ("a small value like 30"
epochs) so that SGD has not converged, Case I an L long enough to converge (checked, not assumed); the SWA phase
runs the CHC schedule of the SWA reference code — for the high-constant option a constant rate — with a sample
every epoch (c = one epoch); SWA, DSWA and TSWA spend the same number of iterations n; minibatch 128; no momentum
and no weight decay anywhere. The SWA-phase rate is swept (at least C_l and C_h): the paper's SWA phase runs at
the high constant rate, and on this problem the rate decides whether the methods separate at all.

Three experiments (each ``fn(*, seeds, size, out_dir, progress) -> ExperimentResult``):

* ``swa-case2``: SGD (Case II), SGD continued for the same n at the SWA rate (the SWA run's last iterate), SWA,
  DSWA, TSWA, per SWA rate; claims of Tables 1–2 (SWA > SGD, DSWA > SWA, TSWA > SWA, TSWA > DSWA) and of §3.2
  (the samples beat SGD; averaging adds to the samples; the average beats the worst sample; averaging reduces
  the spread over seeds).
* ``swa-case1``: the same after SGD to convergence, with the convergence check; claim: averaging changes
  little (§3.1: PreResNet-164 89.24 % → 89.17 %; Fig. 8: DSWA/TSWA no better than SWA).
* ``swa-line`` (in :mod:`.swa_line`): train loss and test error on the lines SWA → DSWA and SWA → TSWA (Fig. 7)
  of the Case II runs at C_h; claim: DSWA/TSWA "find flatter optima than SWA" (§4).

Training runs are kept in ``out_dir/../swa-runs`` (shared: ``swa-line`` reuses ``swa-case2``'s runs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress as progress_bar
from . import register
from ._swa_runs import METHODS, Problem, pre_sgd, swa_run
from .result import Claim, ExperimentResult, claim
from .stats import spread_difference, verdict

__all__ = ["SETTINGS", "swa_case1", "swa_case2"]

_COMMON = dict(model="cnn1d", batch_size=128, lr_high=0.05, lr_low=0.01, momentum=0.0, weight_decay=0.0)

#: size → settings. Iterations of minibatch SGD; MNIST-1D has 4,000 training examples, 32 iterations per epoch.
SETTINGS: dict[str, dict[str, Any]] = {
    "quick": dict(
        _COMMON,
        case2_iterations=64,
        case1_iterations=320,
        cycle=16,
        case2_swa=((0.01, 96), (0.05, 96)),
        case1_swa=((0.05, 96),),
        line_points=9,
    ),
    "demo": dict(
        _COMMON,
        case2_iterations=960,
        case1_iterations=4800,
        cycle=32,
        case2_swa=((0.01, 960), (0.05, 3264)),
        case1_swa=((0.05, 960),),
        line_points=21,
    ),
    "full": dict(
        _COMMON,
        case2_iterations=960,
        case1_iterations=9600,
        cycle=32,
        case2_swa=((0.01, 3840), (0.02, 3840), (0.05, 3840)),
        case1_swa=((0.01, 3840), (0.05, 3840)),
        line_points=41,
    ),
}

_NOT_EVIDENCE = "quick size: a smoke test, its numbers are not evidence"


def _rates(cfg: dict[str, Any], case: str) -> list[float]:
    """The SWA-phase rates of ``case`` (each with its own n in ``cfg[case + "_swa"]``)."""
    return [rate for rate, _ in cfg[f"{case}_swa"]]


def _rate_key(rate: float) -> str:
    return f"{rate:g}"


def _pct(values: Sequence[float]) -> list[float]:
    return [100.0 * v for v in values]


def _runs(
    case: str, seeds: Sequence[int], cfg: dict[str, Any], out_dir: Path, progress: bool
) -> tuple[Problem, dict[str, Any]]:
    """Pre-SGD of ``case`` and SWA/DSWA/TSWA at every rate, every seed: {seed: {"sgd": (doc, w), rate: {...}}}."""
    L = cfg[f"{case}_iterations"]
    phase = dict(cfg[f"{case}_swa"])  # SWA rate → n
    prob = Problem(cfg["model"], out_dir.parent / "swa-runs", batch_size=cfg["batch_size"], progress=progress)
    runs: dict[str, Any] = {}
    bar = progress_bar(total=len(seeds) * (1 + len(METHODS) * len(phase)), desc=f"SWA {case}", enabled=progress)
    try:
        for s in seeds:
            bar.set_postfix_str(f"seed {s}: SGD, L = {L}")
            doc, w, paths = pre_sgd(prob, s, iterations=L, lr_high=cfg["lr_high"], lr_low=cfg["lr_low"])
            bar.update(1)
            start_key = dict(iterations=L, lr_high=cfg["lr_high"], lr_low=cfg["lr_low"])
            runs[s] = {"sgd": (doc, w, paths), "start_key": start_key}
            for rate, n in phase.items():
                runs[s][rate] = {}
                for method in METHODS:
                    bar.set_postfix_str(f"seed {s}: {method.upper()} at {rate:g}")
                    runs[s][rate][method] = swa_run(
                        prob, s, w, start_key, method=method, n=n, cycle=cfg["cycle"], rate=rate
                    )
                    bar.update(1)
    finally:
        bar.close()
    return prob, runs


def _table(runs: dict[str, Any], seeds: Sequence[int], rates: Sequence[float], key: str) -> dict[str, Any]:
    """{rate: {method: [value per seed]}} of ``key`` (``sgd`` is the pre-SWA SGD; ``sgd-continued`` SWA's last
    iterate), accuracies in %."""
    scale = 100.0 if "accuracy" in key else 1.0
    out: dict[str, Any] = {}
    for rate in rates:
        row = {
            "sgd": [scale * runs[s]["sgd"][0][key] for s in seeds],
            "sgd-continued": [scale * runs[s][rate]["swa"][0]["last"][key] for s in seeds],
        }
        for method in METHODS:
            row[method] = [scale * runs[s][rate][method][0][key] for s in seeds]
        out[_rate_key(rate)] = row
    return out


def _samples(runs: dict[str, Any], seeds: Sequence[int], rates: Sequence[float]) -> dict[str, Any]:
    """Per rate and method, per seed: mean, sd, worst and best of the samples' test accuracies (%), and of the
    samples of the last round (those the final average is taken over)."""
    out: dict[str, Any] = {}
    for rate in rates:
        out[_rate_key(rate)] = {}
        for method, k in METHODS.items():
            stats: dict[str, list[float]] = {"mean": [], "sd": [], "worst": [], "best": [], "count": []}
            for s in seeds:
                doc = runs[s][rate][method][0]
                acc = (
                    np.array([a for a, r in zip(doc["sample_test_accuracy"], doc["sample_rounds"]) if r == k - 1]) * 100
                )
                stats["mean"].append(float(acc.mean()))
                stats["sd"].append(float(acc.std(ddof=1)) if acc.size > 1 else 0.0)
                stats["worst"].append(float(acc.min()))
                stats["best"].append(float(acc.max()))
                stats["count"].append(int(acc.size))
            out[_rate_key(rate)][method] = stats
    return out


def _checkpoints(runs: dict[str, Any], seed: int, rate: float, case: str, root: Path) -> dict[str, str]:
    """Seed ``seed``'s solutions at SWA rate ``rate``: name → weights file relative to ``root`` (the folder of
    every experiment's output; the demo measures these)."""
    out = {f"{case}/sgd": runs[seed]["sgd"][2]["final"]}
    swa_paths = runs[seed][rate]["swa"][2]
    out[f"{case}/sgd-continued"] = swa_paths["last"]
    for method in METHODS:
        out[f"{case}/{method}"] = runs[seed][rate][method][2]["average"]
    for i in range(3):
        out[f"{case}/swa-sample{i}"] = swa_paths[f"sample{i}"]
    return {k: Path(v).resolve().relative_to(root.resolve()).as_posix() for k, v in out.items()}


def _note(size: str, rate: float, cfg: dict[str, Any], n: int) -> str:
    parts = [f"SWA phase at the constant rate {rate:g}, n = {n} iterations ({n // 32} epochs)"]
    if rate != cfg["lr_high"]:
        parts.append("not the paper's high constant rate C_h = 0.05: shown for the rate dependence")
    if size == "quick":
        parts.append(_NOT_EVIDENCE)
    return "; ".join(parts)


def _case2_claims(acc: dict, samples: dict, rate: float, size: str, cfg: dict[str, Any]) -> list[Claim]:
    """The paper's Case II claims at SWA rate ``rate``."""
    r = acc[_rate_key(rate)]
    sm = samples[_rate_key(rate)]["swa"]
    metric = "test accuracy, percentage points"
    note = _note(size, rate, cfg, dict(cfg["case2_swa"])[rate])
    out = [
        claim(
            f"Case II (SWA rate {rate:g}): SWA beats the SGD that ran before it",
            "+10.10 (Table 1: 57.06 → 67.16); +10.41, +7.62, +5.26 (Table 2)",
            metric,
            ("SWA", r["swa"]),
            ("SGD", r["sgd"]),
            "greater",
            note=note,
        ),
        claim(
            f"Case II (SWA rate {rate:g}): DSWA beats SWA at the same budget",
            "+2.42 (Table 1); +2.12, +1.02, +0.61 (Table 2)",
            metric,
            ("DSWA", r["dswa"]),
            ("SWA", r["swa"]),
            "greater",
            note=note,
        ),
        claim(
            f"Case II (SWA rate {rate:g}): TSWA beats SWA at the same budget",
            "+2.56, +1.13, +0.41 (Table 2)",
            metric,
            ("TSWA", r["tswa"]),
            ("SWA", r["swa"]),
            "greater",
            note=note,
        ),
        claim(
            f"Case II (SWA rate {rate:g}): TSWA beats DSWA (a third round adds more)",
            "+0.44, +0.11, −0.20 (Table 2)",
            metric,
            ("TSWA", r["tswa"]),
            ("DSWA", r["dswa"]),
            "greater",
            note=note,
        ),
    ]
    if rate != cfg["lr_high"]:
        return out
    out += [
        claim(
            "Case II: the SWA samples beat the SGD before SWA (the CHC schedule's share, §3.2)",
            "Fig. 4 (bars; no number printed)",
            metric,
            ("mean of SWA's samples", sm["mean"]),
            ("SGD", r["sgd"]),
            "greater",
            note=note,
        ),
        claim(
            "Case II: averaging adds to its samples (§3.2, Fig. 4)",
            "Fig. 4 (bars; no number printed)",
            metric,
            ("SWA", r["swa"]),
            ("mean of SWA's samples", sm["mean"]),
            "greater",
            note=note,
        ),
        claim(
            "Case II: the average beats SGD continued for the same n at the same rate",
            "§3.2: the WA operation 'provides an additional benefit' (no number printed)",
            metric,
            ("SWA", r["swa"]),
            ("SGD, same budget", r["sgd-continued"]),
            "greater",
            note=note + "; SGD, same budget = the SWA run's last iterate",
        ),
        claim(
            "The average is above the worst of its samples (§3.2: 'always')",
            "Figs. 3–5 (bars; no number printed)",
            metric,
            ("SWA", r["swa"]),
            ("worst SWA sample", sm["worst"]),
            "greater",
            note=note,
        ),
    ]
    if len(r["swa"]) < 3:  # a spread over 2 seeds has no interval worth the name
        return out
    iv = spread_difference(r["swa"], r["sgd-continued"])
    out.append(
        Claim(
            "Averaging reduces variance: the spread over seeds of SWA is below that of SGD continued (§3.2, §6)",
            "§3.2: WA 'functions similarly as tail-averaging, in decreasing the variance' (no number printed)",
            "sd over seeds of test accuracy, percentage points",
            "sd(SWA)",
            "sd(SGD, same budget)",
            iv,
            "less",
            verdict(iv, "less"),
            note + f"; {len(r['swa'])} seeds: paired bootstrap over seeds",
        )
    )
    return out


@register("swa-case2")
def swa_case2(*, seeds: Sequence[int], size: str, out_dir: Path, progress: bool) -> ExperimentResult:
    """Case II of SWA Revisited (Tables 1–2, §3.2): SWA/DSWA/TSWA after SGD stopped before convergence."""
    cfg = SETTINGS[size]
    t0 = time.perf_counter()
    _, runs = _runs("case2", seeds, cfg, Path(out_dir), progress)
    rates = _rates(cfg, "case2")
    acc = _table(runs, seeds, rates, "test_accuracy")
    samples = _samples(runs, seeds, rates)
    claims = [c for rate in sorted(rates, reverse=True) for c in _case2_claims(acc, samples, rate, size, cfg)]
    first = seeds[0]
    numbers = {
        "test_accuracy": acc,
        "train_loss": _table(runs, seeds, rates, "train_loss"),
        "samples": samples,
        "first_seed_sample_accuracy": {
            _rate_key(r): {
                m: {
                    "accuracy": _pct(runs[first][r][m][0]["sample_test_accuracy"]),
                    "rounds": runs[first][r][m][0]["sample_rounds"],
                    "round_averages": _pct(runs[first][r][m][0]["round_average_test_accuracy"]),
                }
                for m in METHODS
            }
            for r in rates
        },
        "convergence": [runs[s]["sgd"][0]["convergence"] for s in seeds],
        "checkpoints": _checkpoints(runs, first, cfg["lr_high"], "case2", Path(out_dir).parent),
    }
    return ExperimentResult(
        name="swa-case2",
        title="SWA Revisited, Case II (Tables 1–2): SWA, DSWA, TSWA after SGD stopped before convergence",
        settings={**cfg, "epoch_iterations": 32, "data": "MNIST-1D (4,000 train, 1,000 test)"},
        seeds=list(seeds),
        size=size,
        numbers=numbers,
        claims=claims,
        wall_s=time.perf_counter() - t0,
    )


@register("swa-case1")
def swa_case1(*, seeds: Sequence[int], size: str, out_dir: Path, progress: bool) -> ExperimentResult:
    """Case I of SWA Revisited (§3.1, Fig. 8): SWA/DSWA/TSWA after SGD run to convergence (checked)."""
    cfg = SETTINGS[size]
    t0 = time.perf_counter()
    _, runs = _runs("case1", seeds, cfg, Path(out_dir), progress)
    rates = _rates(cfg, "case1")
    acc = _table(runs, seeds, rates, "test_accuracy")
    conv = [runs[s]["sgd"][0]["convergence"] for s in seeds]
    converged = [c["relative_change_last_10"] < 0.01 for c in conv]
    check = (
        "Case I SGD converged by the check on every seed"
        if all(converged)
        else f"Case I SGD NOT converged by the check on {converged.count(False)} of {len(seeds)} seeds"
    )
    claims = []
    for rate in sorted(rates, reverse=True):
        r = acc[_rate_key(rate)]
        note = f"{_note(size, rate, cfg, dict(cfg['case1_swa'])[rate])}; {check}; 'no change' = within ±1 point"
        claims += [
            claim(
                f"Case I (SWA rate {rate:g}): SWA changes little over converged SGD",
                "−0.07 (PreResNet-164, CIFAR-10: 89.24 → 89.17, §3.1); −0.1 and 0.0 (toy CNN, §3.1)",
                "test accuracy, percentage points",
                ("SWA", r["swa"]),
                ("SGD", r["sgd"]),
                "equal",
                margin=1.0,
                note=note,
            ),
            claim(
                f"Case I (SWA rate {rate:g}): DSWA no better than SWA",
                "Fig. 8 (line; no number printed)",
                "test accuracy, percentage points",
                ("DSWA", r["dswa"]),
                ("SWA", r["swa"]),
                "equal",
                margin=1.0,
                note=note,
            ),
        ]
    numbers = {
        "test_accuracy": acc,
        "train_loss": _table(runs, seeds, rates, "train_loss"),
        "samples": _samples(runs, seeds, rates),
        "convergence": conv,
        "converged": converged,
        "checkpoints": _checkpoints(runs, seeds[0], max(rates), "case1", Path(out_dir).parent),
    }
    return ExperimentResult(
        name="swa-case1",
        title="SWA Revisited, Case I (§3.1, Fig. 8): SWA, DSWA, TSWA after SGD run to convergence",
        settings={**cfg, "epoch_iterations": 32, "converged_if": "full training loss falls < 1 % over the last 0.1 L"},
        seeds=list(seeds),
        size=size,
        numbers=numbers,
        claims=claims,
        wall_s=time.perf_counter() - t0,
    )
