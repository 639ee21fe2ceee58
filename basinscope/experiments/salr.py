"""The SALR paper's comparisons at equal gradient calls, on MNIST-1D: accuracy against budget, and Table II.

Paper: Yue, Nouiehed, Al Kontar, "SALR: Sharpness-Aware Learning Rate Scheduler for Improved Generalization",
§VI-A. Its networks are "trained with batch normalization and dropout of probability 0.5 after each layer"; the
network here is ``cnn1d_bn_dropout`` (the MNIST-1D CNN with both), with the plain ``cnn1d`` beside it in the full
size. Settings, budgets and their reasons: :mod:`basinscope.experiments._salr_setup`.

* ``salr-budget`` — SGD (decaying schedule over its budget) against SGD-SALR (Algorithm 3: c = 2, n₁ = n₂ = 5,
  γ = 0.005, the same η₀) at equal gradient calls, the probes' calls counted, at three budgets. SGD is trained
  once per budget (its schedule spans the budget); SGD-SALR once to the largest budget with its state kept at
  each smaller one (its rate does not depend on the budget, so that state is what a run with the smaller budget
  ends with). Claim per model and budget: test accuracy of SGD-SALR − SGD > 0 (Table I).
* ``salr-table2`` — the final solution's Ŝ (Definition 1 with full-training-set gradients, γ = 0.005,
  n₁ = n₂ = 5, no median) of SGD, SWA, Entropy-SGD, Entropy-SGD-SALR, SAM and SGD-SALR at the size's equal
  budget; claims: SGD-SALR's Ŝ below SGD's and below SWA's (Table II).

Training runs are shared by the two experiments and kept in ``<out_dir>/../salr-runs`` (one document and one
weights file per finished run, checkpoints of unfinished ones): a re-run reuses them and ends with the identical
result.

Example:
    >>> from basinscope.experiments import run_experiment
    >>> res = run_experiment("salr-budget", seeds=5, size="demo")  # doctest: +SKIP
    >>> [c.verdict for c in res.claims]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import _progress
from .._threads import torch_threads
from ..models import build_model
from ..objective import Objective
from ..sharpness import probe
from . import register, register_figures
from ._runs import RunStore, run_name
from ._salr_setup import (
    ETA_NOTE,
    OTHER_NOTE,
    PAPER,
    PAPER_TABLE1,
    PAPER_TABLE2,
    RELEASED_NOTE,
    SGD_NOTE,
    SIZE_SETTINGS,
    TABLE2_LABELS,
    SizeSettings,
    load_data,
    method_spec,
)
from .result import Claim, ExperimentResult, claim

__all__ = ["salr_budget", "salr_table2"]

BUDGET_LABELS = ("SGD", "SGD-SALR", "SGD-SALR (released)")
LADDERS = ("SGD-SALR", "SGD-SALR (released)")  # rates that do not depend on the budget: one run per seed
PAPER_GAIN = f"Table I, All-CNN-BN: SGD {PAPER_TABLE1['SGD']} %, SGD-SALR {PAPER_TABLE1['SGD-SALR']} % (+0.52 points)"


class _Runner:
    """The runs of one experiment call: data, store, seeds, the outer progress bar."""

    def __init__(
        self,
        size: str,
        out_dir: Path,
        seeds: Sequence[int],
        progress: bool,
        total: int,
        desc: str,
        settings: SizeSettings | None = None,
    ):
        self.s: SizeSettings = SIZE_SETTINGS[size] if settings is None else settings
        self.train, self.test, self.classes = load_data(self.s)
        self.store = RunStore(Path(out_dir).parent / "salr-runs")
        self.seeds = list(seeds)
        self.progress = progress
        self.bar = _progress.progress(total=total, desc=desc, unit="run", enabled=progress)

    def model(self, name: str, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)  # the same initial weights for every method of a seed (paired comparison)
        return build_model(name, num_classes=self.classes)

    def spec(self, model: str, label: str, budget: int, seed: int) -> dict[str, Any]:
        method, options = method_spec(label, budget, self.s)
        data = {"train": len(self.train[0]), "test": len(self.test[0])}
        return {"model": model, "label": label, "method": method, "options": options, "budget": budget,
                "batch_size": self.s.batch_size, "seed": seed, "data": data}  # fmt: skip

    def point(self, model: str, label: str, budget: int, seed: int) -> tuple[dict[str, Any], dict[str, Any], str]:
        """(document, spec, weights point) of ``label`` at ``budget``: SGD-SALR from the ladder, else one run."""
        make = lambda: self.model(model, seed)  # noqa: E731
        if label in LADDERS:
            spec = self.spec(model, label, max(self.s.budgets), seed)
            doc = self.store.ladder(spec, self.s.budgets, make, self.train, self.test, progress=self.progress)
            return doc["points"][str(budget)], spec, f"B{budget}"
        spec = self.spec(model, label, budget, seed)
        return self.store.single(spec, make, self.train, self.test, progress=self.progress), spec, "end"

    def close(self) -> None:
        self.bar.close()


def _accuracy(doc: dict[str, Any], classes: int) -> float:
    """Test accuracy in %; a diverged run counts as chance (100/classes)."""
    return 100.0 / classes if doc["diverged"] else 100.0 * doc["test_accuracy"]


def _mean(v: Sequence[float]) -> float:
    return float(np.mean(v))


def _check_size(size: str) -> SizeSettings:
    from .._checks import check_choice

    return SIZE_SETTINGS[check_choice("size", size, tuple(SIZE_SETTINGS))]


def _settings(s: SizeSettings, labels: Sequence[str], budgets: Sequence[int]) -> dict[str, Any]:
    return {
        "data": "MNIST-1D (standardized)"
        + ("" if s.train_size is None else f", first {s.train_size} train / {s.test_size} test examples"),
        "models": list(s.models),
        "batch_size": s.batch_size,
        "budgets": list(budgets),
        "budgets_why": s.why,
        "paper": dict(PAPER),
        "methods": {label: dict(zip(("method", "options"), method_spec(label, max(budgets), s))) for label in labels},
        "notes": [ETA_NOTE, SGD_NOTE, RELEASED_NOTE if "SGD-SALR (released)" in labels else OTHER_NOTE],
        "threads": 1,
    }


@register("salr-budget")
def salr_budget(*, seeds: Sequence[int], size: str, out_dir: Path, progress: bool) -> ExperimentResult:
    """SGD against SGD-SALR at equal gradient calls, at three budgets (SALR paper, Table I; see module doc)."""
    s = _check_size(size)
    t0 = time.perf_counter()
    total = len(s.models) * len(seeds) * (len(s.budgets) + len(LADDERS))
    numbers: dict[str, Any] = {}
    claims: list[Claim] = []
    # small networks: one thread is fastest and keeps a loaded machine usable
    with torch_threads(1), closing(_Runner(size, out_dir, seeds, progress, total, "salr-budget")) as r:
        for model in s.models:
            per = _collect(r, model)
            numbers[model] = per
            for label in LADDERS:
                for b in s.budgets:
                    claims.append(_gain_claim(per, model, label, b, r.classes))
            numbers[model]["convergence"] = {lab: _convergence(per[lab], s.budgets) for lab in LADDERS}
    settings = _settings(s, BUDGET_LABELS, s.budgets)
    return ExperimentResult(
        "salr-budget",
        "SALR paper, Table I: SGD-SALR against SGD at equal gradient calls, accuracy against budget (MNIST-1D)",
        settings,
        list(seeds),
        size,
        numbers,
        claims,
        time.perf_counter() - t0,
    )


def _collect(r: _Runner, model: str) -> dict[str, dict[str, dict[str, list]]]:
    """``{label: {str(budget): {key: [value per seed]}}}`` of SGD and both SGD-SALR variants at every budget of
    ``r.s`` (trained or reused), one progress step per run."""
    per: dict[str, dict[str, dict[str, list]]] = {lab: {} for lab in BUDGET_LABELS}
    for seed in r.seeds:
        for label in BUDGET_LABELS:
            for b in r.s.budgets:
                doc, _, _ = r.point(model, label, b, seed)
                row = per[label].setdefault(str(b), {k: [] for k in _ROW})
                for k in _ROW:
                    row[k].append(doc.get(k))
                if label not in LADDERS or b == max(r.s.budgets):
                    r.bar.update(1)
    return per


def _gain_claim(per: dict[str, Any], model: str, label: str, b: int, classes: int, paper: str = PAPER_GAIN) -> Claim:
    """Test accuracy of ``label`` − SGD's at budget ``b`` > 0, in points (Table I's comparison, or ``paper``'s)."""
    a = [_accuracy(d, classes) for d in _docs(per[label][str(b)])]
    g = [_accuracy(d, classes) for d in _docs(per["SGD"][str(b)])]
    div = sum(per[label][str(b)]["diverged"]) + sum(per["SGD"][str(b)]["diverged"])
    note = f"here: {label} {_mean(a):.2f} %, SGD {_mean(g):.2f} % (means over {len(a)} seeds)"
    if div:
        note += f"; {div} diverged run(s) counted at chance ({100 / classes:.0f} %)"
    return claim(
        f"{label} beats SGD at equal gradient calls ({model}, {b} calls)",
        paper,
        "test accuracy, % (difference in points)",
        (label, a),
        ("SGD", g),
        "greater",
        note=note,
    )


_ROW = ("test_accuracy", "train_loss", "iterations", "grad_calls", "diverged")


def _docs(row: dict[str, list]) -> list[dict[str, Any]]:
    """Per-seed documents back from a row of per-key lists."""
    return [dict(zip(row, vals)) for vals in zip(*row.values())]


def _convergence(salr: dict[str, dict[str, list]], budgets: Sequence[int]) -> dict[str, Any]:
    """SGD-SALR's full training loss at the last two budgets and its relative change (seeds that did not diverge)."""
    b1, b2 = str(budgets[-2]), str(budgets[-1])
    keep = [i for i, (x, y) in enumerate(zip(salr[b1]["diverged"], salr[b2]["diverged"])) if not (x or y)]
    if not keep:
        return {"seeds": 0}
    l1 = _mean([salr[b1]["train_loss"][i] for i in keep])
    l2 = _mean([salr[b2]["train_loss"][i] for i in keep])
    return {"seeds": len(keep), f"train_loss_at_{b1}": l1, f"train_loss_at_{b2}": l2, "relative_change": (l2 - l1) / l1}


def _sharpness(r: _Runner, model: str, spec: dict[str, Any], point: str) -> float:
    """Ŝ of Definition 1 at the run's saved weights, full training set, eval mode (stored beside the run)."""
    store = r.store._store(spec)  # the run's own stage store: same root and fingerprint as its weights
    key = f"{run_name(spec)}@{point}/sharpness_g{PAPER['gamma']}_n{PAPER['n_descent']}-{PAPER['n_ascent']}"
    doc = store.load(key)
    if doc is None:
        net = build_model(model, num_classes=r.classes)
        net.load_state_dict(r.store.weights(spec, point))
        x, y = r.train
        obj = Objective(net, F.cross_entropy, [(x[i : i + 1000], y[i : i + 1000]) for i in range(0, len(x), 1000)])
        res = probe(obj, PAPER["gamma"], PAPER["n_descent"], PAPER["n_ascent"])
        doc = {"value": float(res.value)}
        store.save(key, doc)
    return doc["value"]


@register("salr-table2")
def salr_table2(*, seeds: Sequence[int], size: str, out_dir: Path, progress: bool) -> ExperimentResult:
    """Ŝ of every method's final solution at equal gradient calls (SALR paper, Table II; see module doc)."""
    s = _check_size(size)
    t0 = time.perf_counter()
    model, b = s.models[0], s.table2_budget
    rows: dict[str, dict[str, list]] = {}
    total = len(TABLE2_LABELS) * len(seeds)
    with torch_threads(1), closing(_Runner(size, out_dir, seeds, progress, total, "salr-table2")) as r:
        for seed in r.seeds:
            for label in TABLE2_LABELS:
                doc, spec, point = r.point(model, label, b, seed)
                sharp = None if doc["diverged"] else _sharpness(r, model, spec, point)
                row = rows.setdefault(label, {"sharpness": [], "test_accuracy": [], "diverged": [], "iterations": []})
                row["sharpness"].append(sharp)
                row["test_accuracy"].append(doc.get("test_accuracy"))
                row["diverged"].append(doc["diverged"])
                row["iterations"].append(doc.get("iterations"))
                r.bar.update(1)
    claims = [c for c in (_sharp_claim(rows, "SGD", b), _sharp_claim(rows, "SWA", b)) if c is not None]
    numbers = {
        "model": model,
        "budget": b,
        "methods": rows,
        "paper_table2_x1e3": dict(PAPER_TABLE2),
        "paper_table1_accuracy": dict(PAPER_TABLE1),
    }
    settings = _settings(s, TABLE2_LABELS, [b])
    settings["sharpness"] = (
        f"Ŝ of Definition 1 at the final weights: {PAPER['n_descent']} normalized descent and {PAPER['n_ascent']} "
        f"ascent steps of γ = {PAPER['gamma']} with gradients of the whole training set, eval mode, not divided by "
        "the median (as Table II)"
    )
    return ExperimentResult(
        "salr-table2",
        "SALR paper, Table II: sharpness Ŝ of the final solutions at equal gradient calls (MNIST-1D)",
        settings,
        list(seeds),
        size,
        numbers,
        claims,
        time.perf_counter() - t0,
    )


def _sharp_claim(rows: dict[str, dict[str, list]], other: str, budget: int) -> Claim | None:
    """SGD-SALR's Ŝ − ``other``'s Ŝ < 0 (×10⁻³), over the seeds where neither diverged; ``None`` under 2 seeds."""
    a_all, b_all = rows["SGD-SALR"]["sharpness"], rows[other]["sharpness"]
    pairs = [(x, y) for x, y in zip(a_all, b_all) if x is not None and y is not None]
    if len(pairs) < 2:
        return None
    a, b = [1e3 * x for x, _ in pairs], [1e3 * y for _, y in pairs]
    dropped = len(a_all) - len(pairs)
    note = f"here: SGD-SALR {_mean(a):.3f}, {other} {_mean(b):.3f} ×10⁻³ (means over {len(pairs)} seeds)"
    if dropped:
        note += f"; {dropped} seed(s) with a diverged run left out"
    return claim(
        f"SGD-SALR ends flatter than {other} at equal gradient calls ({budget} calls)",
        f"Table II, All-CNN-BN: {other} {PAPER_TABLE2[other]}, SGD-SALR {PAPER_TABLE2['SGD-SALR']} ×10⁻³",
        "Ŝ of the final solution, ×10⁻³",
        ("SGD-SALR", a),
        (other, b),
        "less",
        note=note,
    )


@register_figures("salr-budget")
def budget_figures(result: ExperimentResult, folder: Path) -> dict[str, Path]:
    """Test accuracy against the budget, mean with 95 % interval over seeds, one panel per model."""
    from ._salr_figures import accuracy_vs_budget

    return accuracy_vs_budget(result, Path(folder))


@register_figures("salr-table2")
def table2_figures(result: ExperimentResult, folder: Path) -> dict[str, Path]:
    """Ŝ and test accuracy of every method at the equal budget, mean with 95 % interval over seeds."""
    from ._salr_figures import table2_bars

    return table2_bars(result, Path(folder))
