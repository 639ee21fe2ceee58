"""``basinscope demo --quick`` end to end: report and JSON present, numbers finite, figures exist, HTML renders."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from basinscope.cli import main
from basinscope.report import referenced_paths

SOLUTION_METRICS = ("test_accuracy", "phi", "S", "S_hat", "lambda_max", "trace")


ROOT = Path(__file__).resolve().parents[1]


def _readme_demo_command() -> list[str]:
    """The README's first command, from ``basinscope demo`` on, as argv (its relative ``--out`` kept)."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Two commands", 1)[1]
    first = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)[0]
    demo = next(part.strip() for part in first.split("&&") if "basinscope demo" in part)
    argv = shlex.split(demo)
    assert argv[0].endswith("basinscope") and argv[1] == "demo", demo
    assert "--out" in argv and not Path(argv[argv.index("--out") + 1]).is_absolute(), demo
    beside = Path(sys.executable).parent / "basinscope"
    exe = [str(beside)] if beside.exists() else [sys.executable, "-m", "basinscope.cli"]
    return [*exe, *argv[1:]]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """The README's demo command run literally (relative ``--out``, from a fresh working directory) + --quick."""
    cwd = tmp_path_factory.mktemp("demo")
    argv = _readme_demo_command()
    out = cwd / argv[argv.index("--out") + 1]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [*argv, "--quick", "--no-progress", "--seed", "0"], cwd=cwd, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "report.html").is_file() and (out / "results.json").is_file()
    return out


def _numbers(value, path=""):
    """Every number in a JSON document with its path."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{path}/{i}")


def test_outputs_present(demo_dir):
    assert (demo_dir / "report.html").stat().st_size > 10_000
    assert (demo_dir / "results.json").stat().st_size > 1_000


def test_every_solution_measured_with_finite_numbers(demo_dir):
    doc = json.loads((demo_dir / "results.json").read_text())
    solutions = doc["solutions"]
    names = set(solutions)
    for case in ("case1", "case2"):
        for method in ("sgd", "swa", "dswa", "tswa"):
            assert f"{case}/{method}" in names, sorted(names)
    assert {"equal-budget/sgd", "equal-budget/salr-sgd"} <= names
    for name, sol in solutions.items():
        for key in SOLUTION_METRICS:
            value = sol[key]
            assert isinstance(value, float) and math.isfinite(value), (name, key, value)
        assert 0.0 <= sol["test_accuracy"] <= 1.0
        assert sol["S"] >= 0.0
        assert sol["trace"] != 0.0
    numbers = list(_numbers(doc))
    assert len(numbers) > 100
    bad = [(p, v) for p, v in numbers if not math.isfinite(v)]
    assert not bad, bad[:5]


def test_seeds_mean_sd_and_per_seed_accuracies(demo_dir):
    """Every solution has one evaluation per seed; the summary's mean and sample sd are those of the per-seed
    values; the report shows them with the test-set size."""
    doc = json.loads((demo_dir / "results.json").read_text())
    seeds = doc["seeds"]
    assert seeds == [0, 1, 2] and doc["test_samples"] == 1000
    names = set(doc["solutions"])
    assert {"case1/sgd-continued", "case2/sgd-continued", "equal-budget/salr-sgd"} <= names
    for name in names:
        vals = [doc["per_seed"][f"seed{s}"][name]["test_accuracy"] for s in seeds]
        stat = doc["summary"][name]["test_accuracy"]
        assert stat["values"] == vals and stat["n"] == 3
        assert stat["mean"] == pytest.approx(np.mean(vals), abs=1e-12)
        assert stat["sd"] == pytest.approx(np.std(vals, ddof=1), abs=1e-12)
    # the first seed's per-seed evaluation is the measured solution's
    for name in names:
        assert doc["per_seed"]["seed0"][name]["test_accuracy"] == doc["solutions"][name]["test_accuracy"]
    cfg = doc["config"]
    assert cfg["momentum"] == 0.0 and cfg["weight_decay"] == 0.0 and cfg["salr_every"] == 10
    text = (demo_dir / "report.html").read_text()
    assert "1000 MNIST-1D test examples" in text and "momentum 0.0 and weight decay 0.0" in text
    assert "seed0" in text and "seed2" in text and " ± " in text
    assert f"constant SWA rate {cfg['swa_lr']}" in text


def test_same_budget_sgd_baseline_is_the_swa_runs_last_iterate(demo_dir):
    """SGD continued for n iterations at the SWA rate = SWA's last sample (its last iterate), trained once."""
    from basinscope.checkpoint import load_state_dict

    doc = json.loads((demo_dir / "results.json").read_text())
    n = doc["config"]["swa_iterations"]
    for case in ("case1", "case2"):
        t = doc["training"]["seed0"][f"{case}/sgd-continued"]
        assert t["iterations"] == t["gradient_calls"] == n and t["lr"] == doc["config"]["swa_lr"]
        base = load_state_dict(demo_dir / "checkpoints" / f"seed0__{case}__sgd-continued.pt")
        swa = load_state_dict(demo_dir / "checkpoints" / f"seed0__{case}__swa.pt")
        assert base.keys() == swa.keys() and any(not torch.equal(base[k], swa[k]) for k in base)


def test_every_swa_sample_evaluated(demo_dir):
    """The test accuracy of each SWA sample and round average is recorded; the last round's average is the run's
    solution, whose accuracy the per-seed evaluation gives."""
    doc = json.loads((demo_dir / "results.json").read_text())
    c = doc["config"]
    for seed in ("seed0", "seed1", "seed2"):
        for case in ("case1", "case2"):
            for method, k in (("swa", 1), ("dswa", 2), ("tswa", 3)):
                t = doc["training"][seed][f"{case}/{method}"]
                n = k * ((c["swa_iterations"] // k) // c["swa_cycle"])
                assert len(t["sample_test_accuracy"]) == len(t["sample_rounds"]) == t["samples"] == n
                assert sorted(set(t["sample_rounds"])) == list(range(k))
                assert len(t["round_average_test_accuracy"]) == k
                final = doc["per_seed"][seed][f"{case}/{method}"]["test_accuracy"]
                assert t["round_average_test_accuracy"][-1] == pytest.approx(final, abs=1e-12)
    assert "the samples against their average" in (demo_dir / "report.html").read_text()


def test_convergence_check_reported(demo_dir):
    doc = json.loads((demo_dir / "results.json").read_text())
    for seed in ("seed0", "seed1", "seed2"):
        for case in ("case1", "case2"):
            c = doc["convergence"][seed][case]
            assert c["grad_norm_end"] > 0 and c["train_loss_end"] > 0
            assert c["relative_change_last_10"] == pytest.approx(
                (c["train_loss_at_90"] - c["train_loss_end"]) / c["train_loss_at_90"]
            )
    text = (demo_dir / "report.html").read_text()
    assert "Case I convergence check" in text and "‖∇f‖ at L" in text


def test_marked_points_evaluated(demo_dir):
    """Every point marked on the plane is evaluated at its own weights; the samples lie on the plane (the plane's
    value equals the evaluation), the SWA average is off it by the reported distance."""
    doc = json.loads((demo_dir / "results.json").read_text())
    marked = {m["point"]: m for m in doc["surfaces"]["plane"]["marked_points"]}
    assert set(marked) == {"sample 1", "sample 2", "sample 3", "SWA"}
    for i in (1, 2, 3):
        m = marked[f"sample {i}"]
        assert m["distance_from_plane"] == 0.0
        assert m["plane_train_loss"] == pytest.approx(m["train_loss"], rel=1e-5)
        assert m["plane_test_error"] == pytest.approx(m["test_error"], abs=1e-9)
    swa = marked["SWA"]
    assert swa["test_error"] == pytest.approx(1 - doc["solutions"]["case1/swa"]["test_accuracy"], abs=1e-9)
    assert swa["train_loss"] == pytest.approx(doc["solutions"]["case1/swa"]["train_loss"], rel=1e-9)


def test_case2_lines_swa_to_dswa_and_tswa(demo_dir):
    doc = json.loads((demo_dir / "results.json").read_text())
    lines = doc["surfaces"]
    assert (lines["line_case2_dswa"]["start"], lines["line_case2_dswa"]["end"]) == ("case2/swa", "case2/dswa")
    assert (lines["line_case2_tswa"]["start"], lines["line_case2_tswa"]["end"]) == ("case2/swa", "case2/tswa")
    for name in ("line_case2_dswa", "line_case2_tswa", "line_case1_dswa"):
        ln = lines[name]
        ts = np.asarray(ln["ts"])
        i0, i1 = int(np.argmin(np.abs(ts))), int(np.argmin(np.abs(ts - 1)))
        start, end = doc["solutions"][ln["start"]], doc["solutions"][ln["end"]]
        # the line's end points are the solutions themselves
        assert ln["test_error"][i0] == pytest.approx(1 - start["test_accuracy"], abs=1e-9)
        assert ln["test_error"][i1] == pytest.approx(1 - end["test_accuracy"], abs=1e-9)


def test_equal_budgets_recorded(demo_dir):
    doc = json.loads((demo_dir / "results.json").read_text())
    sols = doc["solutions"]
    for case in ("case1", "case2"):
        iters = {m: sols[f"{case}/{m}"]["averaging_iterations"] for m in ("swa", "dswa", "tswa")}
        assert len(set(iters.values())) == 1, iters
    sgd, salr = sols["equal-budget/sgd"], sols["equal-budget/salr-sgd"]
    assert sgd["gradient_calls"] == salr["gradient_calls"] == doc["config"]["salr_gradient_calls"]
    assert salr["iterations"] < sgd["iterations"]  # the probes' gradient calls are counted


def test_surfaces_in_json(demo_dir):
    doc = json.loads((demo_dir / "results.json").read_text())
    plane, line = doc["surfaces"]["plane"], doc["surfaces"]["line_case1_dswa"]
    grid = np.array(plane["test_error"], dtype=float)
    assert grid.ndim == 2 and grid.shape[0] >= 3 and grid.shape[1] >= 3
    assert np.isfinite(grid).all() and ((grid >= 0) & (grid <= 1)).all()
    assert plane["point_labels"][:3] == ["sample 1", "sample 2", "sample 3"] and "SWA" in plane["point_labels"]
    assert len(line["ts"]) == len(line["train_loss"]) == len(line["test_error"]) >= 5


def test_every_referenced_figure_exists(demo_dir):
    refs = referenced_paths(demo_dir / "report.html")
    pngs = [r for r in refs if r.endswith(".png")]
    assert len(pngs) >= 5, refs
    for r in refs:
        path = demo_dir / r
        assert path.is_file() and path.stat().st_size > 0, r
    text = (demo_dir / "report.html").read_text()
    for heading in ("Case I and Case II", "convergence check", "SALR", "Sharpness and curvature", "plane", "Lines"):
        assert heading in text
    assert text.count('class="plotly-graph-div"') >= 2


def test_rerun_reuses_finished_stages(demo_dir):
    """A second run with the same out dir reuses every stage: no stage or checkpoint is rewritten, same numbers."""
    before = json.loads((demo_dir / "results.json").read_text())
    files = sorted([*(demo_dir / "stages").glob("*.json"), *(demo_dir / "checkpoints").glob("*.pt")])
    assert len(files) > 20
    stamps = {p: p.stat().st_mtime_ns for p in files}
    assert main(["demo", "--quick", "--out", str(demo_dir), "--no-progress", "--seed", "0"]) == 0
    after = json.loads((demo_dir / "results.json").read_text())
    assert after["solutions"] == before["solutions"]
    assert {p: p.stat().st_mtime_ns for p in files} == stamps


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium(demo_dir):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium/chrome browser found on PATH (install Debian's chromium to run this check)")
    shot = demo_dir / "screenshot.png"
    profile = tempfile.mkdtemp()
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-unsafe-swiftshader",
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=1200,2400",
        "--virtual-time-budget=8000",
        (demo_dir / "report.html").resolve().as_uri(),
    ]
    try:
        subprocess.run(cmd, capture_output=True, timeout=120, check=False, env={**os.environ, "HOME": profile})
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert shot.is_file(), "chromium wrote no screenshot"
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    assert img.shape[0] >= 1000
    # not blank: many distinct colours and a real spread of brightness (text, tables, figures)
    colours = np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50, len(colours)
    assert img.std() > 0.05
