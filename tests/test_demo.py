"""``landscape demo --quick`` end to end: report and JSON present, numbers finite, figures exist, HTML renders."""

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

from landscape.cli import main
from landscape.report import referenced_paths

SOLUTION_METRICS = ("test_accuracy", "phi", "S", "S_hat", "lambda_max", "trace")


ROOT = Path(__file__).resolve().parents[1]


def _readme_demo_command() -> list[str]:
    """The README's first command, from ``landscape demo`` on, as argv (its relative ``--out`` kept)."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Two commands", 1)[1]
    first = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)[0]
    demo = next(part.strip() for part in first.split("&&") if "landscape demo" in part)
    argv = shlex.split(demo)
    assert argv[0].endswith("landscape") and argv[1] == "demo", demo
    assert "--out" in argv and not Path(argv[argv.index("--out") + 1]).is_absolute(), demo
    beside = Path(sys.executable).parent / "landscape"
    exe = [str(beside)] if beside.exists() else [sys.executable, "-m", "landscape.cli"]
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


def test_equal_budgets_recorded(demo_dir):
    doc = json.loads((demo_dir / "results.json").read_text())
    sols = doc["solutions"]
    for case in ("case1", "case2"):
        iters = {m: sols[f"{case}/{m}"]["averaging_iterations"] for m in ("swa", "dswa", "tswa")}
        assert len(set(iters.values())) == 1, iters
    sgd, salr = sols["equal-budget/sgd"], sols["equal-budget/salr-sgd"]
    assert sgd["gradient_calls"] == salr["gradient_calls"]


def test_surfaces_in_json(demo_dir):
    doc = json.loads((demo_dir / "results.json").read_text())
    plane, line = doc["surfaces"]["plane"], doc["surfaces"]["line"]
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
    for heading in ("Solutions", "SALR", "plane", "line"):
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
