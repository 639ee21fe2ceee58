"""salr-convergence (quick size): the convergence claims against a hand computation, ``converged_at`` from the
verdicts, runs shared with salr-budget, identical re-runs, figures, errors."""

from __future__ import annotations

import math

import pytest
import torch

from basinscope.experiments import FIGURES, ExperimentResult, run_experiment
from basinscope.experiments import _runs as runs_mod
from basinscope.experiments._salr_setup import CONVERGENCE_SETTINGS
from basinscope.experiments.result import claim
from basinscope.experiments.salr_convergence import CONVERGED_WITHIN, _converged_claim

T_975 = {1: 12.706204736174705, 2: 4.302652729749464}  # t_{0.975, n−1} for 2 and 3 seeds
MODEL = "cnn1d_bn_dropout"


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("conv")
    return out, run_experiment("salr-convergence", seeds=[0, 1, 2], size="quick", out_dir=out, progress=False)


def test_claims_cover_every_doubling_budget_and_trend(result):
    out, res = result
    assert ExperimentResult.load(out / "salr-convergence" / "result.json") == res
    budgets = CONVERGENCE_SETTINGS["quick"].budgets
    assert res.settings["budgets"] == list(budgets) and res.settings["converged_within_percent"] == CONVERGED_WITHIN
    assert res.settings["uniform_loss"] == pytest.approx(math.log(10))
    texts = [c.text for c in res.claims]
    for label in ("SGD-SALR", "SGD-SALR (released)"):
        for b in budgets[:-1]:
            assert sum(t.startswith(f"{label} has converged by {b:,} calls") for t in texts) == 1
        for b in budgets:
            assert f"{label} beats SGD at equal gradient calls ({MODEL}, {b} calls)" in texts
    assert sum("when its budget grows" in t for t in texts) == 3
    assert len(res.claims) == 2 * (len(budgets) - 1) + 2 * len(budgets) + 3


def test_convergence_claim_by_hand(result):
    _, res = result
    rows = res.numbers[MODEL]["SGD-SALR"]
    (c,) = [c for c in res.claims if c.text.startswith("SGD-SALR has converged by 48 calls")]
    l1, l2 = rows["48"]["train_loss"], rows["96"]["train_loss"]
    d = [100.0 * (y - x) / x for x, y in zip(l1, l2)]
    mean = sum(d) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / 2)
    half = T_975[2] * sd / math.sqrt(3)
    assert c.interval.mean == pytest.approx(mean, abs=1e-12) and c.interval.n == 3
    assert c.interval.low == pytest.approx(mean - half) and c.interval.high == pytest.approx(mean + half)
    lo, hi = mean - half, mean + half
    inside = lo >= -CONVERGED_WITHIN and hi <= CONVERGED_WITHIN
    outside = lo > CONVERGED_WITHIN or hi < -CONVERGED_WITHIN
    assert c.verdict == ("reproduces" if inside else "contradicts" if outside else "inconclusive")


def test_converged_at_is_the_first_reproducing_doubling(result):
    _, res = result
    budgets = CONVERGENCE_SETTINGS["quick"].budgets
    for label in ("SGD-SALR", "SGD-SALR (released)"):
        first = None
        for b in budgets[:-1]:
            (c,) = [c for c in res.claims if c.text.startswith(f"{label} has converged by {b:,} calls")]
            if c.verdict == "reproduces" and first is None:
                first = b
        assert res.numbers[MODEL]["converged_at"][label] == first


def test_converged_claim_verdicts_and_diverged_seeds():
    def rows(l1, l2, div2=(False, False, False)):
        return {"48": {"train_loss": l1, "diverged": [False] * 3}, "96": {"train_loss": l2, "diverged": list(div2)}}

    flat = _converged_claim(rows([1.0, 2.0, 4.0], [1.001, 2.0, 3.998]), MODEL, "X", 48, 96)
    assert flat.verdict == "reproduces"  # changes of +0.1, 0 and −0.05 %
    falling = _converged_claim(rows([1.0, 2.0, 4.0], [0.9, 1.8, 3.64]), MODEL, "X", 48, 96)
    assert falling.verdict == "contradicts" and falling.interval.mean == pytest.approx(-29.0 / 3)  # −10, −10, −9 %
    dropped = _converged_claim(rows([1.0, 2.0, 4.0], [1.0, 2.0, 1.0], (False, False, True)), MODEL, "X", 48, 96)
    assert dropped.interval.n == 2 and "1 seed(s) with a diverged run left out" in dropped.note
    assert _converged_claim(rows([1.0, 2.0, 4.0], [1.0, 2.0, 4.0], (True, True, False)), MODEL, "X", 48, 96) is None
    blown = _converged_claim(rows([1.0, 2.0, 4.0], [1.0, 2.0, 1e14]), MODEL, "X", 48, 96, uniform_loss=math.log(10))
    assert blown.interval.n == 3 and blown.verdict == "inconclusive"  # kept: the change is huge, nothing is decided
    assert "1 seed(s) blew up (a training loss above the uniform guess's 2.3, finite) and are kept" in blown.note
    # the same interval as claim() on the relative changes against zero
    ref = claim("t", "p", "m", ("a", [10.0, -5.0, -10.0 / 4]), ("b", [0.0] * 3), "equal", margin=1.0)
    mine = _converged_claim(rows([1.0, 2.0, 4.0], [1.1, 1.9, 3.9]), MODEL, "X", 48, 96)
    for f in ("mean", "low", "high"):
        assert getattr(mine.interval, f) == pytest.approx(getattr(ref.interval, f), abs=1e-12)
    assert mine.verdict == ref.verdict


def test_runs_are_shared_with_salr_budget_and_reruns_are_identical(result, monkeypatch):
    out, res = result
    sgd_before = res.numbers[MODEL]["SGD"]["96"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs_mod, "train", no_training)
    again = run_experiment("salr-convergence", seeds=[0, 1, 2], size="quick", out_dir=out, progress=False)
    assert again.numbers == res.numbers and again.claims == res.claims
    # SGD at 48 and 96 calls are the very runs salr-budget uses at the quick size (no training allowed here)
    with pytest.raises(AssertionError, match="trained again"):  # salr-budget's ladders (to 96) are its own runs
        run_experiment("salr-budget", seeds=[0, 1, 2], size="quick", out_dir=out, progress=False)
    monkeypatch.undo()
    budget = run_experiment("salr-budget", seeds=[0, 1, 2], size="quick", out_dir=out, progress=False)
    assert budget.numbers[MODEL]["SGD"]["96"] == sgd_before


def test_figures(result, tmp_path):
    _, res = result
    paths = FIGURES["salr-convergence"](res, tmp_path)
    assert {p.name for p in paths.values()} == {"salr_convergence_accuracy.png", "salr_convergence_train_loss.png"}
    assert all(p.stat().st_size > 10_000 for p in paths.values())


def test_bad_size_and_threads_restored(tmp_path):
    from basinscope.experiments.salr_convergence import salr_convergence

    before = torch.get_num_threads()
    with pytest.raises(ValueError, match=r"^size: expected one of"):
        salr_convergence(seeds=[0, 1], size="huge", out_dir=tmp_path / "x", progress=False)
    assert torch.get_num_threads() == before and not (tmp_path / "x").exists()
