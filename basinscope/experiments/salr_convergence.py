"""Where SGD-SALR converges: SGD against SGD-SALR at budgets doubling from the paper's, on MNIST-1D.

Paper: Yue, Nouiehed, Al Kontar, "SALR: Sharpness-Aware Learning Rate Scheduler for Improved Generalization".
§VI-A runs SGD-SALR for 40 epochs where SGD gets 200 (equal gradient calls); Table IV lengthens the ImageNet runs
(SGD-SALR 40, 100, 160 epochs against SGD 200, 500, 800) and reports that SGD loses accuracy as its budget grows
while SGD-SALR gains. ``salr-budget`` stops at the paper's 40 epochs, where SGD-SALR's training loss is still
falling on MNIST-1D; this experiment continues the ladder so the budget at which SGD-SALR's iterations converge
can be read off, and repeats the equal-call comparison there.

* Network ``cnn1d_bn_dropout`` (BatchNorm and dropout 0.5 after each hidden layer, as the paper's networks),
  every setting as in ``salr-budget`` (:mod:`basinscope.experiments._salr_setup`); budgets
  :data:`~basinscope.experiments._salr_setup.CONVERGENCE_SETTINGS` (full: 7,680 → 61,440 gradient calls, 40 →
  320 epochs of SGD-SALR).
* SGD is trained once per budget (its decaying schedule spans the budget); each SGD-SALR variant once to the
  largest budget with its state kept at each smaller one (its rate does not depend on the budget).
* Claims:

  - *converged by B*: SGD-SALR's full training loss changes by less than 1 % when the budget doubles from B —
    the paired relative change over seeds, (loss(2B) − loss(B)) / loss(B) in %, with its 95 % t interval,
    verdict "reproduces" when the interval lies inside ±1 %. ``numbers[model]["converged_at"]`` is the first
    such B per variant (``None``: not within the ladder).
  - *SGD-SALR beats SGD at equal calls* at every budget (Table IV), test accuracy, paired over seeds.
  - *more budget costs SGD accuracy* (last − first budget < 0) and *gives SGD-SALR accuracy* (> 0) (Table IV).

Training runs live in ``<out_dir>/../salr-runs``, shared with ``salr-budget`` and ``salr-table2`` (SGD at a
budget both use is trained once); a re-run reuses every finished run and ends with the identical result.

Example:
    >>> from basinscope.experiments import run_experiment
    >>> res = run_experiment("salr-convergence", seeds=5, size="full")  # doctest: +SKIP
    >>> res.numbers["cnn1d_bn_dropout"]["converged_at"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from .._checks import check_choice
from .._threads import torch_threads
from . import register, register_figures
from ._salr_setup import CONVERGENCE_SETTINGS, PAPER_TABLE4, SizeSettings
from .result import Claim, ExperimentResult, claim
from .salr import BUDGET_LABELS, LADDERS, _accuracy, _collect, _docs, _gain_claim, _mean, _Runner, _settings

__all__ = ["CONVERGED_WITHIN", "salr_convergence"]

#: The band, in % of the training loss, within which a doubling of the budget counts as "no further progress".
CONVERGED_WITHIN = 1.0

PAPER_RUN = "§VI-A: SGD-SALR is run for 40 epochs, SGD for 200, at equal gradient calls (Tables I–II)"
PAPER_TABLE4_TEXT = (
    f"Table IV, ImageNet ResNet152, equal calls: SGD {' / '.join(PAPER_TABLE4['SGD'])} % at 200 / 500 / 800 "
    f"epochs, SGD-SALR {' / '.join(PAPER_TABLE4['SGD-SALR'])} % at 40 / 100 / 160 epochs"
)


@register("salr-convergence")
def salr_convergence(*, seeds: Sequence[int], size: str, out_dir: Path, progress: bool) -> ExperimentResult:
    """SGD against SGD-SALR at budgets doubling from the paper's, and where SGD-SALR converges (module doc)."""
    s: SizeSettings = CONVERGENCE_SETTINGS[check_choice("size", size, tuple(CONVERGENCE_SETTINGS))]
    t0 = time.perf_counter()
    total = len(s.models) * len(seeds) * (len(s.budgets) + len(LADDERS))
    numbers: dict[str, Any] = {}
    claims: list[Claim] = []
    with (
        torch_threads(1),
        closing(_Runner(size, out_dir, seeds, progress, total, "salr-convergence", settings=s)) as r,
    ):
        for model in s.models:
            per = _collect(r, model)
            converged_at: dict[str, int | None] = {}
            for label in LADDERS:
                converged_at[label] = None
                for b1, b2 in zip(s.budgets[:-1], s.budgets[1:]):
                    c = _converged_claim(per[label], model, label, b1, b2, math.log(r.classes))
                    if c is not None:
                        claims.append(c)
                        if converged_at[label] is None and c.verdict == "reproduces":
                            converged_at[label] = b1
            for label in LADDERS:
                for b in s.budgets:
                    claims.append(_gain_claim(per, model, label, b, r.classes, PAPER_TABLE4_TEXT))
            first, last = str(s.budgets[0]), str(s.budgets[-1])
            claims.append(_trend_claim(per["SGD"], model, "SGD", first, last, "less", r.classes))
            for label in LADDERS:
                claims.append(_trend_claim(per[label], model, label, first, last, "greater", r.classes))
            numbers[model] = {**per, "converged_at": converged_at}
    settings = _settings(s, BUDGET_LABELS, s.budgets)
    settings["converged_within_percent"] = CONVERGED_WITHIN
    settings["uniform_loss"] = math.log(r.classes)  # a training loss above it: the run blew up
    return ExperimentResult(
        "salr-convergence",
        "SALR paper, §VI-A and Table IV: where SGD-SALR converges, and SGD against SGD-SALR at longer budgets "
        "(MNIST-1D)",
        settings,
        list(seeds),
        size,
        numbers,
        claims,
        time.perf_counter() - t0,
    )


def _converged_claim(
    rows: dict[str, dict[str, list]], model: str, label: str, b1: int, b2: int, uniform_loss: float | None = None
) -> Claim | None:
    """``label``'s training loss changes by less than :data:`CONVERGED_WITHIN` % from ``b1`` to ``b2`` calls
    (paired relative change over the seeds where neither point diverged; ``None`` under 2 such seeds). Seeds whose
    loss exceeds ``uniform_loss`` (ln C, a uniform guess's) are kept and named in the note as blown up."""
    r1, r2 = rows[str(b1)], rows[str(b2)]
    keep = [i for i, (x, y) in enumerate(zip(r1["diverged"], r2["diverged"])) if not (x or y)]
    if len(keep) < 2:
        return None
    change = [100.0 * (r2["train_loss"][i] - r1["train_loss"][i]) / r1["train_loss"][i] for i in keep]
    note = (
        f"here: training loss {_mean([r1['train_loss'][i] for i in keep]):.4g} at {b1:,} calls, "
        f"{_mean([r2['train_loss'][i] for i in keep]):.4g} at {b2:,} (means over {len(keep)} seeds)"
    )
    if len(keep) < len(r1["diverged"]):
        note += f"; {len(r1['diverged']) - len(keep)} seed(s) with a diverged run left out"
    if uniform_loss is not None:
        blown = sum(1 for i in keep if max(r1["train_loss"][i], r2["train_loss"][i]) > uniform_loss)
        if blown:
            note += (
                f"; {blown} seed(s) blew up (a training loss above the uniform guess's {uniform_loss:.3g}, finite) "
                "and are kept"
            )
    return claim(
        f"{label} has converged by {b1:,} calls on {model}: its training loss changes by less than "
        f"{CONVERGED_WITHIN:g} % when the budget doubles",
        PAPER_RUN,
        "full training loss, relative change from B to 2B, %",
        (f"{label} at {b2:,}", change),
        (f"at {b1:,}", [0.0] * len(change)),
        "equal",
        margin=CONVERGED_WITHIN,
        note=note,
    )


def _trend_claim(
    rows: dict[str, dict[str, list]], model: str, label: str, first: str, last: str, expected: str, classes: int
) -> Claim:
    """Test accuracy of ``label`` at the ``last`` budget − at the ``first`` (paired over seeds)."""
    a = [_accuracy(d, classes) for d in _docs(rows[last])]
    b = [_accuracy(d, classes) for d in _docs(rows[first])]
    how = "loses" if expected == "less" else "gains"
    return claim(
        f"{label} {how} test accuracy when its budget grows from {int(first):,} to {int(last):,} calls on {model}",
        "Table IV: with more epochs SGD and SWA lose accuracy (overfitting); SAM, Entropy-SGD and SGD-SALR do not",
        "test accuracy, % (difference in points)",
        (f"{label} at {int(last):,}", a),
        (f"at {int(first):,}", b),
        expected,
        note=f"here: {label} {_mean(b):.2f} % at {int(first):,} calls, {_mean(a):.2f} % at {int(last):,}",
    )


@register_figures("salr-convergence")
def convergence_figures(result: ExperimentResult, folder: Path) -> dict[str, Path]:
    """Test accuracy and training loss of SGD and both SGD-SALR variants against the budget (mean, 95 %)."""
    from ._salr_figures import accuracy_vs_budget, train_loss_vs_budget

    out = accuracy_vs_budget(result, Path(folder), "salr_convergence_accuracy.png")
    out.update(train_loss_vs_budget(result, Path(folder)))
    return out
