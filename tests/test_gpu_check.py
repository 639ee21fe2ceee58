"""The CUDA preparation, checked where there is no GPU: gpu_check.sh says so and exits 0, sync_check.py runs the
per-step paths on the CPU, the benchmarks take --device, and the test-device fixture refuses an absent GPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch

from .conftest import resolve_test_device

ROOT = Path(__file__).resolve().parents[1]
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")


def _sync_check():
    spec = importlib.util.spec_from_file_location("sync_check", ROOT / "benchmarks" / "sync_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@no_cuda
def test_gpu_check_without_cuda_says_so_and_exits_0(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out)], capture_output=True,
                          text=True, env=env, timeout=120, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("gpu_check: no CUDA device (torch "), proc.stdout
    assert "nothing to check here" in proc.stdout
    assert json.loads(out.read_text()) == {
        "cuda": False,
        "reason": f"torch {torch.__version__}, torch.cuda.is_available() is False",
    }


def test_sync_check_runs_every_path_on_the_cpu(tmp_path, capsys):
    sync = _sync_check()
    out = tmp_path / "sync.json"
    assert sync.main(["--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["cuda"] is False and result["ok"] is True
    assert set(result["checks"]) == {
        "sgd_step",
        "salr_step",
        "salr_released_step",
        "swa_step",
        "sam_step",
        "hvp",
        "lanczos",
        "surface_grid",
    }
    assert all(row["ok"] and row["seconds"] > 0 for row in result["checks"].values())
    printed = capsys.readouterr().out
    assert "synchronizations were not checked" in printed
    assert sum(line.startswith("sync_check ") for line in printed.splitlines()) == len(result["checks"])


def test_sync_check_names_the_innermost_basinscope_line_and_fails_unknown_ones():
    sync = _sync_check()
    frames = [
        traceback.FrameSummary("/x/benchmarks/sync_check.py", 10, "run"),
        traceback.FrameSummary("/x/basinscope/hessian/eigen.py", 120, "_lanczos"),
        traceback.FrameSummary("/x/basinscope/hessian/lanczos.py", 195, "step"),
        traceback.FrameSummary("/x/site-packages/torch/_tensor.py", 5, "__bool__"),
    ]
    assert sync._site(frames) == ("lanczos.py", "step", 195)
    assert ("lanczos.py", "step") in sync.DOCUMENTED
    assert ("objective.py", "loss") not in sync.DOCUMENTED  # an undocumented line fails the check


_HELP = """
import contextlib, io, runpy, sys
for script in sys.argv[1:]:
    sys.argv = [script, "--help"]
    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        runpy.run_path(script, run_name="__main__")
    print(script, "--device" in text.getvalue(), "--json" in text.getvalue())
"""


def test_benchmarks_take_a_device_and_a_json_path():
    scripts = [str(ROOT / "benchmarks" / s) for s in ("bench_hessian.py", "bench_surface.py", "bench_optim.py")]
    scripts.append(str(ROOT / "benchmarks" / "sync_check.py"))
    proc = subprocess.run([sys.executable, "-c", _HELP, *scripts], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:-1] == [f"{s} True True" for s in scripts], proc.stdout


@no_cuda
def test_test_device_fixture_refuses_an_absent_gpu():
    assert resolve_test_device(None) == torch.device("cpu")
    assert resolve_test_device("cpu") == torch.device("cpu")
    with pytest.raises(pytest.UsageError, match=r"'cuda' asked for, but torch.cuda.is_available\(\) is False"):
        resolve_test_device("cuda")
    with pytest.raises(pytest.UsageError, match=r"expected a torch device such as cpu or cuda, got 'gpu0'"):
        resolve_test_device("gpu0")
