"""SALR experiments (quick size): results save and load, re-runs and interrupted runs give identical numbers, the
claims' intervals match a hand computation, the ladder's states equal separate runs, Ŝ equals a plain loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from basinscope.experiments import FIGURES, ExperimentResult, run_experiment
from basinscope.experiments import _runs as runs_mod
from basinscope.experiments._runs import RunStore
from basinscope.experiments._salr_setup import PAPER, SIZE_SETTINGS, load_data, method_spec
from basinscope.models import build_model
from basinscope.optim import train

T_975_1 = 12.706204736174705  # t_{0.975, 1}: two seeds


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("salr")
    budget = run_experiment("salr-budget", seeds=[0, 1], size="quick", out_dir=out, progress=False)
    table2 = run_experiment("salr-table2", seeds=[0, 1], size="quick", out_dir=out, progress=False)
    return out, budget, table2


def test_results_save_and_load(results):
    out, budget, table2 = results
    for res in (budget, table2):
        back = ExperimentResult.load(out / res.name / "result.json")
        assert back == res and back.size == "quick" and back.seeds == [0, 1]
    s = SIZE_SETTINGS["quick"]
    assert len(budget.claims) == 2 * len(s.models) * len(s.budgets)  # two SALR variants
    assert [c.a for c in table2.claims] == ["SGD-SALR", "SGD-SALR"] and [c.b for c in table2.claims] == ["SGD", "SWA"]
    assert set(table2.numbers["methods"]) == {"SGD", "SWA", "Entropy-SGD", "Entropy-SGD-SALR", "SAM", "SGD-SALR"}


def test_equal_budgets_are_respected(results):
    budget = results[1]
    for model in SIZE_SETTINGS["quick"].models:
        for label in ("SGD", "SGD-SALR", "SGD-SALR (released)"):
            for b, row in budget.numbers[model][label].items():
                for calls, div in zip(row["grad_calls"], row["diverged"]):
                    assert div or calls <= int(b)
    # SGD spends one call per iteration; SGD-SALR 1 + 10 on every second one, so fewer iterations
    row = budget.numbers["cnn1d"]
    assert row["SGD"]["96"]["iterations"] == [96, 96]
    assert row["SGD-SALR"]["96"]["iterations"] == [16, 16] and row["SGD-SALR"]["96"]["grad_calls"] == [96, 96]


def test_claim_intervals_by_hand(results):
    _, budget, table2 = results
    c = budget.claims[0]
    rows = budget.numbers["cnn1d_bn_dropout"]
    a = [100 * v for v in rows["SGD-SALR"]["24"]["test_accuracy"]]
    b = [100 * v for v in rows["SGD"]["24"]["test_accuracy"]]
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / 2
    half = T_975_1 * abs(d[0] - d[1]) / math.sqrt(2) / math.sqrt(2)  # sd of two values = |d0 − d1| / √2
    assert c.interval.mean == pytest.approx(mean, abs=1e-12)
    assert c.interval.low == pytest.approx(mean - half, abs=1e-9) and c.interval.high == pytest.approx(mean + half)
    assert c.verdict == ("reproduces" if mean - half > 0 else "contradicts" if mean + half < 0 else "inconclusive")
    s = table2.numbers["methods"]
    d = [1e3 * (x - y) for x, y in zip(s["SGD-SALR"]["sharpness"], s["SGD"]["sharpness"])]
    half = T_975_1 * abs(d[0] - d[1]) / 2
    iv = table2.claims[0].interval
    assert iv.mean == pytest.approx(sum(d) / 2) and iv.high == pytest.approx(sum(d) / 2 + half)


def test_rerun_reuses_runs_and_gives_identical_numbers(results, monkeypatch):
    out, budget, table2 = results

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs_mod, "train", no_training)
    again = run_experiment("salr-budget", seeds=[0, 1], size="quick", out_dir=out, progress=False)
    assert again.numbers == budget.numbers and again.claims == budget.claims
    again2 = run_experiment("salr-table2", seeds=[0, 1], size="quick", out_dir=out, progress=False)
    assert again2.numbers == table2.numbers and again2.claims == table2.claims


def test_interrupted_ladder_resumes_to_identical_numbers(tmp_path, monkeypatch):
    s = SIZE_SETTINGS["quick"]
    train_xy, test_xy, _ = load_data(s)
    method, options = method_spec("SGD-SALR", max(s.budgets), s)
    spec = {"model": "cnn1d_bn_dropout", "label": "SGD-SALR", "method": method, "options": options,
            "budget": max(s.budgets), "batch_size": s.batch_size, "seed": 3, "data": {}}  # fmt: skip

    def make():
        torch.manual_seed(3)
        return build_model("cnn1d_bn_dropout")

    whole = RunStore(tmp_path / "whole").ladder(spec, s.budgets, make, train_xy, test_xy, progress=False)
    real = runs_mod.train

    def interrupted(*args, callback=None, **kwargs):
        def cb(it, info):
            callback(it, info)
            if it == 9:  # past the first budget (24 calls = 4 iterations) and a checkpoint (every 3)
                raise KeyboardInterrupt

        return real(*args, callback=cb, **kwargs)

    store = RunStore(tmp_path / "cut")
    store.checkpoint_every = 3
    monkeypatch.setattr(runs_mod, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.ladder(spec, s.budgets, make, train_xy, test_xy, progress=False)
    monkeypatch.setattr(runs_mod, "train", real)
    assert any((tmp_path / "cut" / "partial").rglob("train.pt"))
    resumed = store.ladder(spec, s.budgets, make, train_xy, test_xy, progress=False)
    assert resumed == whole
    for b in s.budgets:
        w1 = RunStore(tmp_path / "whole").weights(spec, f"B{b}")
        w2 = store.weights(spec, f"B{b}")
        assert all(torch.equal(w1[k], w2[k]) for k in w1)


@pytest.mark.parametrize("label", ["SGD-SALR", "SGD-SALR (released)"])
def test_ladder_state_equals_a_run_with_the_smaller_budget(tmp_path, label):
    s = SIZE_SETTINGS["quick"]
    train_xy, test_xy, _ = load_data(s)
    method, options = method_spec(label, max(s.budgets), s)
    spec = {"model": "cnn1d_bn_dropout", "label": label, "method": method, "options": options,
            "budget": max(s.budgets), "batch_size": s.batch_size, "seed": 5, "data": {}}  # fmt: skip

    def make():
        torch.manual_seed(5)
        return build_model("cnn1d_bn_dropout")

    store = RunStore(tmp_path)
    doc = store.ladder(spec, s.budgets, make, train_xy, test_xy, progress=False)
    b = s.budgets[1]
    net = make()
    res = train(method, net, train_xy, budget=b, batch_size=s.batch_size, seed=5, progress=False, **options)
    assert doc["points"][str(b)]["iterations"] == res.iterations
    saved = store.weights(spec, f"B{b}")
    for k, v in net.state_dict().items():
        assert torch.equal(saved[k], v), k


def test_table2_sharpness_equals_a_plain_loop(results):
    out, _, table2 = results
    s = SIZE_SETTINGS["quick"]
    train_xy, test_xy, classes = load_data(s)
    store = RunStore(out / "salr-runs")
    method, options = method_spec("SGD", s.table2_budget, s)
    spec = {"model": s.models[0], "label": "SGD", "method": method, "options": options,
            "budget": s.table2_budget, "batch_size": s.batch_size, "seed": 1,
            "data": {"train": len(train_xy[0]), "test": len(test_xy[0])}}  # fmt: skip
    net = build_model(s.models[0], num_classes=classes).double().eval()
    net.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in store.weights(spec).items()})
    x, y = train_xy[0].double(), train_xy[1]
    theta = {n: p.detach().clone() for n, p in net.named_parameters()}

    def f(p):
        return F.cross_entropy(torch.func.functional_call(net, p, (x,)), y)

    def walk(sign, steps):
        p = {k: v.clone() for k, v in theta.items()}
        for _ in range(steps):
            g = torch.func.grad(f)(p)
            norm = torch.sqrt(sum((v**2).sum() for v in g.values()))
            p = {k: p[k] + sign * PAPER["gamma"] * g[k] / norm for k in p}
        return f(p)

    want = float(walk(1.0, PAPER["n_ascent"]) - walk(-1.0, PAPER["n_descent"]))
    got = table2.numbers["methods"]["SGD"]["sharpness"][1]
    assert got == pytest.approx(want, rel=1e-4, abs=2e-6)


def test_figures(results, tmp_path):
    _, budget, table2 = results
    for res in (budget, table2):
        paths = FIGURES[res.name](res, tmp_path)
        assert paths and all(p.is_file() and p.stat().st_size > 10_000 for p in paths.values())


def test_bad_size(tmp_path):
    from basinscope.experiments.salr import salr_budget

    with pytest.raises(ValueError, match=r"^size: expected one of"):
        salr_budget(seeds=[0, 1], size="huge", out_dir=tmp_path / "x", progress=False)


@pytest.mark.parametrize("name", ["salr_budget", "salr_table2"])
def test_thread_count_restored_when_the_experiment_fails_to_start(name, tmp_path, monkeypatch):
    from basinscope.experiments import salr as salr_mod

    def refuse(*args, **kwargs):
        raise OSError("no data here")

    monkeypatch.setattr(salr_mod, "_Runner", refuse)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(OSError, match="no data here"):
            getattr(salr_mod, name)(seeds=[0, 1], size="quick", out_dir=tmp_path, progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_table2_figure_keeps_an_outlier_off_scale(results, tmp_path, monkeypatch):
    """A run that blew up (a collapsed Ŝ thousands of times the others) is written at the top, not drawn to scale."""
    import dataclasses

    import matplotlib

    from basinscope.experiments._salr_figures import off_scale, table2_bars

    assert off_scale([(30.0, 5.0), (45.0, 6.0), (6667.0, 28684.0), (27.0, 6.0)]) == [2]
    assert off_scale([(30.0, 5.0), (45.0, 6.0), (24.0, 26.0)]) == []  # wide but not far off: drawn as it is
    table2 = results[2]
    methods = {k: dict(v) for k, v in table2.numbers["methods"].items()}
    methods["SAM"]["sharpness"] = [20.0, *methods["SAM"]["sharpness"][1:]]  # 20, not ×10⁻³: blew up
    res = dataclasses.replace(table2, numbers={**table2.numbers, "methods": methods})
    drawn = []
    orig = matplotlib.axes.Axes.text
    monkeypatch.setattr(matplotlib.axes.Axes, "text", lambda self, *a, **k: drawn.append(a[2]) or orig(self, *a, **k))
    (path,) = table2_bars(res, tmp_path).values()
    assert path.is_file() and any("(off scale)" in t for t in drawn)
