"""``basinscope demo --quick`` end to end: the report is built from the registered experiments (verdict table
first, figures, details folded), its numbers are the experiments', figures exist, the page renders in headless
Chromium at desktop and phone width without scrolling sideways."""

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

from basinscope.cli import main
from basinscope.report import referenced_paths

SOLUTION_METRICS = ("test_accuracy", "phi", "S", "S_hat", "lambda_max", "trace")
SWA_EXPERIMENTS = ("swa-case2", "swa-case1", "swa-line")


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
    for name in SWA_EXPERIMENTS:
        assert (demo_dir / "experiments" / name / "result.json").is_file()


def test_report_numbers_are_the_experiments(demo_dir):
    """Every claim in results.json is an experiment's, as saved by the experiment (quick size, seeds 0-2), and
    every claim row appears in the report's verdict table with its verdict."""
    from basinscope.experiments import ExperimentResult

    doc = json.loads((demo_dir / "results.json").read_text())
    assert doc["size"] == "quick" and doc["seeds"] == [0, 1, 2]
    text = (demo_dir / "report.html").read_text()
    claims = []
    for name in SWA_EXPERIMENTS:
        res = ExperimentResult.load(demo_dir / "experiments" / name / "result.json")
        assert res.size == "quick" and res.seeds == [0, 1, 2]
        assert doc["experiments"][name] == json.loads((demo_dir / "experiments" / name / "result.json").read_text())
        claims += res.to_dict()["claims"]
        for c in res.claims:
            assert c.interval.format() in text
    assert doc["claims"][: len(claims)] == claims
    assert text.count('class="inconclusive text">inconclusive<') + text.count('class="reproduces text">') + text.count(
        'class="contradicts text">'
    ) == len(doc["claims"])
    assert "Quick run: tiny budgets for tests" in text


def test_every_solution_measured_with_finite_numbers(demo_dir):
    """The first seed's solutions the experiments expose are measured; their test accuracy is the experiment's."""
    doc = json.loads((demo_dir / "results.json").read_text())
    solutions = doc["solutions"]
    for case in ("case1", "case2"):
        for method in ("sgd", "sgd-continued", "swa", "dswa", "tswa"):
            assert f"{case}/{method}" in solutions, sorted(solutions)
    for name, sol in solutions.items():
        for key in SOLUTION_METRICS:
            value = sol[key]
            assert isinstance(value, float) and math.isfinite(value), (name, key, value)
        assert sol["S"] >= 0.0 and sol["trace"] != 0.0
    case2 = doc["experiments"]["swa-case2"]["numbers"]["test_accuracy"]["0.05"]
    for method in ("sgd", "sgd-continued", "swa", "dswa", "tswa"):
        assert 100 * solutions[f"case2/{method}"]["test_accuracy"] == pytest.approx(case2[method][0], abs=1e-9)
    bad = [(p, v) for p, v in _numbers(doc) if not math.isfinite(v)]
    assert not bad, bad[:5]


def test_layout_verdicts_first_then_figures_then_folded_details(demo_dir):
    text = (demo_dir / "report.html").read_text()
    verdicts, figures, details = (text.index(h) for h in ("Paper claims and verdicts", ">Figures<", ">Details<"))
    assert verdicts < text.index("<table") < figures < text.index("<figure") < details
    after = text[details:]
    for folded in ("What was run", "Case I convergence check", "Sharpness and curvature", "marked points", "Cost"):
        assert re.search(rf"<summary>[^<]*{folded}", after), folded
    assert after.count("<details>") == after.count("</details>") >= 6
    # nothing but headings, figures and folded blocks after the verdict table: no long prose left open
    open_prose = re.sub(r"<details>.*?</details>", "", after, flags=re.S)
    assert "<p>" not in open_prose.replace('<p><a href="results.json">', "")


def test_marked_points_evaluated(demo_dir):
    """Every point marked on the plane is evaluated at its own weights; the samples lie on the plane (the plane's
    value equals the evaluation), the SWA average is off it by the reported distance."""
    doc = json.loads((demo_dir / "results.json").read_text())
    marked = {m["point"]: m for m in doc["plane"]["marked_points"]}
    assert set(marked) == {"sample 1", "sample 2", "sample 3", "SWA"}
    for i in (1, 2, 3):
        m = marked[f"sample {i}"]
        assert m["distance_from_plane"] == 0.0
        assert m["plane_train_loss"] == pytest.approx(m["train_loss"], rel=1e-5)
        assert m["plane_test_error"] == pytest.approx(m["test_error"], abs=1e-9)
    swa = marked["SWA"]
    assert swa["test_error"] == pytest.approx(1 - doc["solutions"]["case1/swa"]["test_accuracy"], abs=1e-9)
    assert swa["train_loss"] == pytest.approx(doc["solutions"]["case1/swa"]["train_loss"], rel=1e-9)
    grid = np.array(doc["plane"]["test_error"], dtype=float)
    assert grid.ndim == 2 and grid.shape[0] >= 3 and np.isfinite(grid).all()


def test_every_referenced_figure_exists(demo_dir):
    refs = referenced_paths(demo_dir / "report.html")
    pngs = [r for r in refs if r.endswith(".png")]
    assert {"figures/swa-case2-accuracy.png", "figures/swa-line.png", "figures/plane.png"} <= set(pngs), refs
    for r in refs:
        path = demo_dir / r
        assert path.is_file() and path.stat().st_size > 0, r
    assert (demo_dir / "report.html").read_text().count('class="plotly-graph-div"') >= 2


def test_rerun_reuses_finished_stages(demo_dir):
    """A second run with the same out dir reuses every run and measurement: no file rewritten, same numbers."""
    before = json.loads((demo_dir / "results.json").read_text())
    files = sorted([*(demo_dir / "stages").glob("*.json"), *(demo_dir / "experiments").rglob("*.pt")])
    assert len(files) > 20
    stamps = {p: p.stat().st_mtime_ns for p in files}
    assert main(["demo", "--quick", "--out", str(demo_dir), "--no-progress", "--seed", "0"]) == 0
    after = json.loads((demo_dir / "results.json").read_text())
    assert after["solutions"] == before["solutions"] and after["claims"] == before["claims"]
    assert {p: p.stat().st_mtime_ns for p in files} == stamps


def test_unregistered_experiment_skipped_with_a_note(tmp_path):
    import dataclasses

    from basinscope.demo import DemoConfig, run_demo

    cfg = dataclasses.replace(DemoConfig.quick(), experiments=("no-such-experiment",))
    out = run_demo(tmp_path, config=cfg, progress=False)
    assert out["results"]["skipped"] == {
        "no-such-experiment": "not registered in this installation (see basinscope reproduce --list)"
    }
    assert "Experiment no-such-experiment skipped: not registered" in out["report"].read_text()
    assert out["results"]["solutions"] == {} and out["results"]["plane"] is None


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _browser(browser: str, url: str, *extra: str) -> subprocess.CompletedProcess:
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
        "--allow-file-access-from-files",  # the probe page reads the report's document in its frame
        f"--user-data-dir={profile}",
        "--virtual-time-budget=8000",
        *extra,
        url,
    ]
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=180, check=False, env={**os.environ, "HOME": profile}
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


_PROBE = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="report.html" style="width:{width}px;height:2400px;border:0"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{ setTimeout(function () {{
  var out = document.createElement("div"); out.id = "fit";
  try {{
    var d = document.getElementById("f").contentDocument, w = document.getElementById("f").contentWindow;
    out.textContent = "scrollWidth=" + d.documentElement.scrollWidth + " innerWidth=" + w.innerWidth;
  }} catch (e) {{ out.textContent = "error " + e; }}
  document.body.appendChild(out);
}}, 1500); }});
</script></body></html>"""


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_report_fits_the_width_in_headless_chromium(demo_dir, width):
    """At desktop width and at phone width (390 px, in a frame of that width: headless windows have a minimum
    width) the page body does not scroll sideways (wide tables scroll inside their own box), and a screenshot
    of that view is not blank."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium/chrome browser found on PATH (install Debian's chromium to run this check)")
    probe = demo_dir / f"probe-{width}.html"
    probe.write_text(_PROBE.format(width=width))
    dom = _browser(browser, probe.resolve().as_uri(), f"--window-size={max(width, 500)},2400", "--dump-dom")
    found = re.search(r'<div id="fit">scrollWidth=(\d+) innerWidth=(\d+)</div>', dom.stdout)
    assert found, dom.stdout[-500:] + dom.stderr[-500:]
    scroll, inner = map(int, found.groups())
    assert inner == width and scroll <= inner, (scroll, inner)
    shot = demo_dir / f"screenshot-{width}.png"
    _browser(browser, probe.resolve().as_uri(), f"--window-size={max(width, 500)},2400", f"--screenshot={shot}")
    assert shot.is_file(), "chromium wrote no screenshot"
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    colours = np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert img.shape[0] >= 1000 and len(colours) > 50 and img.std() > 0.05
