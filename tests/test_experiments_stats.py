"""Paired confidence intervals and verdicts against hand computations and a plain bootstrap loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from basinscope.experiments import ExperimentResult, Interval, claim, paired_difference, verdict


def test_t_interval_by_hand():
    a, b = [0.90, 0.92, 0.91, 0.95, 0.93], [0.88, 0.90, 0.92, 0.91, 0.90]
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 4)
    half = 2.7764451051977987 * sd / math.sqrt(5)  # t_{0.975, 4}
    iv = paired_difference(a, b)
    assert iv.mean == pytest.approx(mean, abs=1e-15)
    assert iv.low == pytest.approx(mean - half, rel=1e-12) and iv.high == pytest.approx(mean + half, rel=1e-12)


def test_bootstrap_matches_plain_loop():
    a, b = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0], [2.0, 1.5, 2.0, 0.0, 4.0, 6.0]
    d = np.array(a) - np.array(b)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 6, size=(10_000, 6))
    means = [float(np.mean([d[j] for j in row])) for row in idx]
    lo, hi = np.quantile(means, [0.025, 0.975])
    iv = paired_difference(a, b, method="bootstrap", seed=7)
    assert iv.low == pytest.approx(lo, abs=1e-12) and iv.high == pytest.approx(hi, abs=1e-12)


@pytest.mark.parametrize(
    ("low", "high", "expected", "margin", "want"),
    [
        (0.1, 0.5, "greater", 0.0, "reproduces"),
        (-0.5, -0.1, "greater", 0.0, "contradicts"),
        (-0.1, 0.5, "greater", 0.0, "inconclusive"),
        (-0.5, -0.1, "less", 0.0, "reproduces"),
        (0.1, 0.5, "less", 0.0, "contradicts"),
        (-0.2, 0.2, "equal", 0.3, "reproduces"),
        (0.4, 0.6, "equal", 0.3, "contradicts"),
        (0.2, 0.6, "equal", 0.3, "inconclusive"),
    ],
    ids=lambda v: str(v),
)
def test_verdicts(low, high, expected, margin, want):
    assert verdict(Interval((low + high) / 2, low, high, 5), expected, margin=margin) == want


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"a": [1.0], "b": [1.0]}, "^a: expected at least 2"),
        ({"a": [1.0, 2.0], "b": [1.0]}, "^b: expected one value per seed"),
        ({"a": [1.0, float("nan")], "b": [1.0, 2.0]}, "^a: expected finite values"),
        ({"a": [1.0, 2.0], "b": [1.0, 2.0], "method": "z"}, "^method: expected one of"),
        ({"a": [1.0, 2.0], "b": [1.0, 2.0], "level": 1.5}, "^level: expected a float in"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(**kwargs)


def test_bad_verdict_input():
    with pytest.raises(ValueError, match=r"^expected: expected one of"):
        verdict(Interval(0, -1, 1, 3), "bigger")
    with pytest.raises(ValueError, match=r"^margin: expected a finite number"):
        verdict(Interval(0, -1, 1, 3), "equal", margin=-1)


def test_result_round_trip(tmp_path):
    c = claim("a beats b", "+1", "acc", ("a", [2.0, 3.0, 4.0]), ("b", [1.0, 1.5, 2.0]), "greater", note="n")
    res = ExperimentResult("x", "Table 1", {"lr": 0.1}, [0, 1, 2], "quick", {"a": [2.0, 3.0, 4.0]}, [c], 1.5)
    back = ExperimentResult.load(res.save(tmp_path / "r.json"))
    assert back == res
    (tmp_path / "bad.json").write_text('{"name": 1}')
    with pytest.raises(ValueError, match=r"^path: expected an experiment result"):
        ExperimentResult.load(tmp_path / "bad.json")


def test_run_experiment_registry(tmp_path, monkeypatch):
    from basinscope import experiments as ex

    calls = []

    def fake(*, seeds, size, out_dir, progress):
        calls.append((tuple(seeds), size, out_dir.name))
        return ExperimentResult("fake", "t", {}, list(seeds), size, {}, [], 0.0)

    monkeypatch.setitem(ex.EXPERIMENTS, "fake", fake)
    monkeypatch.setattr(ex, "_load_all", lambda: None)
    res = ex.run_experiment("fake", seeds=3, size="quick", out_dir=tmp_path, progress=False)
    assert calls == [((0, 1, 2), "quick", "fake")] and res.wall_s > 0
    assert ExperimentResult.load(tmp_path / "fake" / "result.json") == res
    with pytest.raises(ValueError, match=r"^size: expected one of"):
        ex.run_experiment("fake", size="huge", out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^seeds: expected distinct seeds"):
        ex.run_experiment("fake", seeds=[1, 1], out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^name: expected one of"):
        ex.run_experiment("nope", out_dir=tmp_path)
