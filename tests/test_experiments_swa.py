"""The SWA Revisited experiments in quick mode, end to end through ``basinscope reproduce``: results, claims
against hand computations, the same-budget baseline, resume, the page and the figures."""

from __future__ import annotations

import json
import math
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from basinscope.cli import main
from basinscope.experiments import ExperimentResult, paired_difference, spread_difference
from basinscope.experiments.swa_revisited import SETTINGS
from basinscope.report import referenced_paths

NAMES = ("swa-case2", "swa-case1", "swa-line")
SEEDS = 3


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    argv = ["reproduce", *NAMES, "--quick", "--seeds", str(SEEDS), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def _load(repro, name) -> ExperimentResult:
    return ExperimentResult.load(repro / name / "result.json")


def test_results_saved_with_claims_and_settings(repro):
    for name in NAMES:
        res = _load(repro, name)
        assert res.name == name and res.size == "quick" and res.seeds == [0, 1, 2]
        assert res.claims and all(c.verdict in ("reproduces", "contradicts", "inconclusive") for c in res.claims)
        assert all("not evidence" in c.note for c in res.claims)
        s = res.settings
        assert (s["momentum"], s["weight_decay"], s["lr_high"], s["lr_low"], s["batch_size"]) == (0, 0, 0.05, 0.01, 128)


@pytest.mark.parametrize("size", ["quick", "demo", "full"])
def test_settings_follow_the_paper(size):
    """§5: Fig. 9 schedule C_h = 0.05, C_l = 0.01; Case II L = 30 epochs; the SWA rate swept over at least C_l
    and C_h; n a multiple of 6 with n/k a multiple of c (whole cycles in every round); at demo and full size the
    SWA phase at C_h lasts at least 100 epochs and Case I's L is longer than Case II's."""
    s = SETTINGS[size]
    assert s["momentum"] == s["weight_decay"] == 0.0 and (s["lr_high"], s["lr_low"]) == (0.05, 0.01)
    rates = [r for r, _ in s["case2_swa"]]
    assert {0.01, 0.05} <= set(rates)
    for rate, n in (*s["case2_swa"], *s["case1_swa"]):
        assert n % 6 == 0 and all((n // k) % s["cycle"] == 0 for k in (1, 2, 3)), (rate, n)
    if size != "quick":
        assert s["case2_iterations"] == 30 * 32 and s["cycle"] == 32
        assert dict(s["case2_swa"])[0.05] >= 100 * 32
        assert s["case1_iterations"] > s["case2_iterations"]


def test_case2_claims_match_a_hand_computation(repro):
    res = _load(repro, "swa-case2")
    acc = res.numbers["test_accuracy"]["0.05"]
    by_text = {(c.a, c.b, c.note.split(";")[0]): c for c in res.claims}
    c = by_text[("DSWA", "SWA", "SWA phase at the constant rate 0.05, n = 96 iterations (3 epochs)")]
    d = np.array(acc["dswa"]) - np.array(acc["swa"])
    assert c.interval.mean == pytest.approx(d.mean(), abs=1e-9)
    ref = paired_difference(acc["dswa"], acc["swa"])
    assert (c.interval.low, c.interval.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    spread = next(c for c in res.claims if c.a == "sd(SWA)")
    assert spread.interval.mean == pytest.approx(
        np.std(acc["swa"], ddof=1) - np.std(acc["sgd-continued"], ddof=1), abs=1e-9
    )
    # every rate has the Tables 1-2 claims; the §3.2 claims only at the paper's rate C_h
    assert sum(c.a == "SWA" and c.b == "SGD" for c in res.claims) == 2
    assert sum(c.b == "worst SWA sample" for c in res.claims) == 1


def test_same_budget_sgd_is_the_swa_runs_last_iterate(repro):
    """SGD continued for n iterations at the SWA rate = the SWA run's last sample (first seed); each method's
    final average is its last round's average; n/c samples in all, k rounds."""
    res = _load(repro, "swa-case2")
    cycle = res.settings["cycle"]
    for rate, n in res.settings["case2_swa"]:
        key = f"{rate:g}"
        runs = res.numbers["first_seed_sample_accuracy"][key]
        assert runs["swa"]["accuracy"][-1] == pytest.approx(res.numbers["test_accuracy"][key]["sgd-continued"][0])
        for method, k in (("swa", 1), ("dswa", 2), ("tswa", 3)):
            assert len(runs[method]["accuracy"]) == n // cycle and sorted(set(runs[method]["rounds"])) == list(range(k))
            assert runs[method]["round_averages"][-1] == pytest.approx(res.numbers["test_accuracy"][key][method][0])


def test_case1_convergence_check_and_band(repro):
    res = _load(repro, "swa-case1")
    conv = res.numbers["convergence"]
    assert len(conv) == SEEDS and res.numbers["converged"] == [c["relative_change_last_10"] < 0.01 for c in conv]
    for c in conv:
        assert c["relative_change_last_10"] == pytest.approx(
            (c["train_loss_at_90"] - c["train_loss_end"]) / c["train_loss_at_90"]
        )
    assert all(c.expected == "equal" and "within ±1 point" in c.note for c in res.claims)


def test_line_end_points_are_the_solutions(repro):
    """The line's t = 0 and t = 1 are the SWA and DSWA/TSWA solutions of swa-case2 (shared runs)."""
    line, case2 = _load(repro, "swa-line"), _load(repro, "swa-case2")
    ts = np.asarray(line.settings["ts"])
    i0, i1 = int(np.argmin(np.abs(ts))), int(np.argmin(np.abs(ts - 1)))
    assert ts[i0] == 0.0 and ts[i1] == 1.0
    acc = case2.numbers["test_accuracy"]["0.05"]
    for end in ("dswa", "tswa"):
        for s, doc in enumerate(line.numbers["lines"][end]):
            assert 100 * (1 - doc["test_error"][i0]) == pytest.approx(acc["swa"][s], abs=1e-9)
            assert 100 * (1 - doc["test_error"][i1]) == pytest.approx(acc[end][s], abs=1e-9)
    flat = next(c for c in line.claims if c.a.startswith("rise beyond DSWA"))
    rise = [
        (d["train_loss"][-1] - d["train_loss"][i1]) - (d["train_loss"][0] - d["train_loss"][i0])
        for d in line.numbers["lines"]["dswa"]
    ]
    assert flat.interval.mean == pytest.approx(float(np.mean(rise)), abs=1e-12)


def test_rerun_is_identical_and_rewrites_no_run(repro):
    """Re-running reuses every kept run (no file rewritten) and gives the identical numbers and claims; a run
    whose record is lost is recomputed to the identical numbers."""
    before = {n: json.loads((repro / n / "result.json").read_text()) for n in NAMES}
    kept = sorted((repro / "swa-runs").rglob("*.pt")) + sorted((repro / "swa-runs" / "stages").glob("*.json"))
    assert len(kept) > 20
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    assert main(["reproduce", *NAMES, "--quick", "--seeds", str(SEEDS), "--out", str(repro), "-q"]) == 0
    assert {p: p.stat().st_mtime_ns for p in kept} == stamps
    lost = next(p for p in (repro / "swa-runs" / "stages").glob("seed1__L*-dswa-*.json"))
    lost.unlink()
    assert main(["reproduce", *NAMES, "--quick", "--seeds", str(SEEDS), "--out", str(repro), "-q"]) == 0
    for n in NAMES:
        after = json.loads((repro / n / "result.json").read_text())
        assert after["numbers"] == before[n]["numbers"] and after["claims"] == before[n]["claims"], n


def test_page_opens_with_the_verdict_table(repro):
    page = repro / "index.html"
    text = page.read_text()
    assert text.index("Paper claims and verdicts") < text.index("<table") < text.index("<figure")
    assert text.index("<figure") < text.index("settings, seeds, wall time</summary>")
    assert re.search(r'<td class="inconclusive text">inconclusive</td>|<td class="reproduces text">', text)
    refs = referenced_paths(page)
    assert sum(r.endswith(".png") for r in refs) == 4
    assert all((repro / r).is_file() for r in refs)


def test_spread_difference_matches_a_plain_loop():
    a, b = [70.1, 75.3, 72.2, 80.0, 69.9], [71.0, 71.5, 70.8, 72.2, 71.1]
    rng = np.random.default_rng(3)
    diffs = []
    for row in rng.integers(0, 5, size=(10_000, 5)):
        xa, xb = [a[i] for i in row], [b[i] for i in row]
        diffs.append(float(np.std(xa, ddof=1) - np.std(xb, ddof=1)))
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    iv = spread_difference(a, b, seed=3)
    assert iv.mean == pytest.approx(np.std(a, ddof=1) - np.std(b, ddof=1), abs=1e-12)
    assert (iv.low, iv.high) == pytest.approx((lo, hi), abs=1e-12)
    with pytest.raises(ValueError, match=r"^a: expected at least 3 paired values \(seeds\) for a spread, got '2'"):
        spread_difference([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"^b: expected one value per seed, as many as a \(3\), got '2 values'"):
        spread_difference([1.0, 2.0, 3.0], [1.0, 2.0])


def test_reproduce_list_and_bad_names(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--list"]) == 0
    assert list(tmp_path.iterdir()) == []  # --list only prints: no output folder is made
    listed = capsys.readouterr().out
    for name in NAMES:
        assert re.search(rf"^{name}\t", listed, flags=re.M)
    assert main(["reproduce", "nosuch", "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"basinscope: error: NAME: expected one of .*swa-case2.* or all, got nosuch", err), err
    assert main(["reproduce"]) == 2
    assert "expected experiment names" in capsys.readouterr().err
    assert main(["reproduce", "swa-line", "--seeds", "1"]) == 2


PLAIN = re.compile(r"^[−-]?\d+(\.\d+)?$")


@pytest.mark.parametrize("name", NAMES)
def test_figures_plain_ticks_and_labels_apart(repro, name):
    """Every numeric tick label is a plain number, no axis offset; method names on the categorical axis; the
    labels of the marked t = 0 and t = 1 lines do not overlap."""
    from matplotlib.text import Text

    from basinscope.experiments import swa_figures as sf

    res = _load(repro, name)
    makers = {"swa-case2": [sf.accuracy_figure, sf.samples_figure], "swa-case1": [sf.accuracy_figure]}
    for make in makers.get(name, [sf.line_figure]):
        fig = make(res)
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                texts = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
                assert texts and not axis.get_offset_text().get_text()
                if make is sf.accuracy_figure and axis is ax.xaxis:
                    assert texts == ["SGD", "SGD,\nsame budget", "SWA", "DSWA", "TSWA"]
                else:
                    assert all(PLAIN.match(t) for t in texts), (make.__name__, texts)
            boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]
            assert not any(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i + 1, len(boxes)))
        assert math.isfinite(fig.get_figwidth())


def test_interrupted_run_resumes_to_the_identical_result(tmp_path, monkeypatch):
    """A pre-SWA SGD run stopped after training (before its record is written) resumes from its runner checkpoint
    and the loss kept at 0.9·L: same record (convergence check included) and same weights as an uninterrupted run."""
    import torch

    from basinscope.experiments._swa_runs import Problem, pre_sgd, swa_run

    settings = dict(iterations=64, lr_high=0.05, lr_low=0.01)
    ref_doc, ref_w, _ = pre_sgd(Problem("cnn1d", tmp_path / "a", batch_size=128, progress=False), 1, **settings)
    prob = Problem("cnn1d", tmp_path / "b", batch_size=128, progress=False)
    real = Problem.evaluate

    def stop(self, params):
        raise KeyboardInterrupt

    monkeypatch.setattr(Problem, "evaluate", stop)
    with pytest.raises(KeyboardInterrupt):
        pre_sgd(prob, 1, **settings)
    assert list((tmp_path / "b" / "partial").glob("*.at90.json"))
    monkeypatch.setattr(Problem, "evaluate", real)
    doc, w, _ = pre_sgd(prob, 1, **settings)
    assert {k: v for k, v in doc.items() if k != "seconds"} == {k: v for k, v in ref_doc.items() if k != "seconds"}
    assert all(torch.equal(w[k], ref_w[k]) for k in ref_w)
    assert not list((tmp_path / "b" / "partial").iterdir())
    # an SWA run from it, stopped the same way, also resumes to the same average
    key = dict(settings)
    prob_a = Problem("cnn1d", tmp_path / "a", batch_size=128, progress=False)
    ref = swa_run(prob_a, 1, ref_w, key, method="dswa", n=32, cycle=16, rate=0.05)
    monkeypatch.setattr(Problem, "evaluate", stop)
    with pytest.raises(KeyboardInterrupt):
        swa_run(prob, 1, w, key, method="dswa", n=32, cycle=16, rate=0.05)
    monkeypatch.setattr(Problem, "evaluate", real)
    got = swa_run(prob, 1, w, key, method="dswa", n=32, cycle=16, rate=0.05)
    assert got[0]["sample_test_accuracy"] == ref[0]["sample_test_accuracy"]
    assert all(torch.equal(got[1]["average"][k], ref[1]["average"][k]) for k in ref[1]["average"])


def test_line_reports_where_the_training_loss_is_lowest(repro):
    line = _load(repro, "swa-line")
    ts = np.asarray(line.settings["ts"])
    for end, docs in line.numbers["lines"].items():
        want = [float(ts[int(np.argmin(d["train_loss"]))]) for d in docs]
        assert line.numbers["train_loss_minimum_t"][end] == want
        flat = next(c for c in line.claims if c.a.startswith(f"rise beyond {end.upper()}"))
        beyond = sum(t > 1 for t in want)
        assert (f"on {beyond} of {SEEDS} seeds" in flat.note) == (beyond > 0)
