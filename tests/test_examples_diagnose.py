"""examples/diagnose_checkpoint.py in its quick mode (examples are tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from basinscope.report import referenced_paths

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "diagnose_checkpoint.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, env=env)


def test_quick_mode_trains_and_diagnoses(tmp_path):
    proc = _run("--quick", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "trained.pt").is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["sharpness"]["S"] >= 0 and len(metrics["hessian"]["top_eigenvalues"]) == 3
    refs = referenced_paths(tmp_path / "report.html")
    assert refs and all((tmp_path / r).is_file() for r in refs)
    assert "report:" in proc.stdout


def test_given_checkpoint_is_diagnosed_and_bad_one_refused(tmp_path):
    from basinscope.models import build_model

    torch.manual_seed(3)
    good = tmp_path / "given.pt"
    torch.save(build_model("cnn1d").state_dict(), good)
    proc = _run(str(good), "--quick", "--out", str(tmp_path / "a"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "a" / "trained.pt").exists()
    bad = tmp_path / "mlp.pt"
    torch.save(build_model("mlp").state_dict(), bad)
    proc = _run(str(bad), "--quick", "--out", str(tmp_path / "b"))
    assert proc.returncode != 0
    assert "checkpoint: expected the keys of CNN1D's state_dict" in proc.stderr


@pytest.mark.parametrize("flag", ["--help"])
def test_help(flag):
    proc = _run(flag)
    assert proc.returncode == 0 and "--quick" in proc.stdout
