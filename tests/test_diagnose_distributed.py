"""Under a 2-process gloo torchrun: ``basinscope diagnose`` (rank 0 writes the report of one process's numbers) and
the torchrun example of docs/objective.md."""

from __future__ import annotations

import json
import math

import pytest

from .test_cli import DATA, MODEL, _save_net, run
from .test_objective_distributed import torchrun

ARGS = ["--quick", "--json", "--resolution", "3", "--batch-size", "32", "--no-progress", "--seed", "2"]


def _numbers(tree, path=""):
    """Every number of a metrics tree by its path, timings left out."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            if k != "seconds":
                out.update(_numbers(v, f"{path}/{k}"))
        return out
    if isinstance(tree, list):
        return {k: v for i, x in enumerate(tree) for k, v in _numbers(x, f"{path}/{i}").items()}
    return {path: tree} if isinstance(tree, (int, float)) and not isinstance(tree, bool) else {}


@pytest.mark.slow
def test_diagnose_under_torchrun_equals_one_process(tmp_path, capsys, monkeypatch):
    ckpt = _save_net(tmp_path / "c.pt")
    proc = torchrun("-m", tmp_path, "basinscope.cli", "diagnose", ckpt, "--model", MODEL, "--data", DATA,
                    "--out", str(tmp_path / "two"), *ARGS)  # fmt: skip
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    two.pop("_conventions", None)
    assert json.loads(proc.stdout) == two  # only rank 0 printed, and what it wrote
    assert (tmp_path / "two" / "report.html").is_file()
    code, out, err = run(capsys, "diagnose", ckpt, "--model", MODEL, "--data", DATA, "--out", str(tmp_path / "one"),
                         *ARGS)  # fmt: skip
    assert code == 0, err
    one, got = _numbers(json.loads(out)), _numbers(two)
    assert one.keys() == got.keys() and one["/train/samples"] == 96
    # float32 model: sums over shards in another order agree to float32 rounding, amplified a little by the
    # iterative estimators
    for k, v in one.items():
        assert math.isclose(got[k], v, rel_tol=1e-4, abs_tol=1e-6), (k, got[k], v)


@pytest.mark.slow
def test_objective_page_torchrun_example_equals_one_process(tmp_path):
    import re
    from pathlib import Path

    import torch
    import torch.nn.functional as F

    from basinscope import Objective, hessian_trace, top_eigenvalues

    text = (Path(__file__).resolve().parents[1] / "docs" / "objective.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```py\n(# curvature\.py.*?)```", text, flags=re.DOTALL)
    (tmp_path / "curvature.py").write_text(block)
    proc = torchrun("-m", tmp_path, "curvature")
    line = proc.stdout.strip().splitlines()[-1]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(40, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    x, y = torch.randn(1000, 40), torch.randint(0, 10, (1000,))
    obj = Objective(model, F.cross_entropy, [(x[i : i + 128], y[i : i + 128]) for i in range(0, 1000, 128)])
    top, tr = top_eigenvalues(obj, k=3, seed=0), hessian_trace(obj, n_samples=50, seed=0)
    numbers = [float(v) for v in re.findall(r"-?\d+\.\d+(?:e-?\d+)?|\d+", line)]
    assert numbers[:2] == [1000, 512]
    for got, want in zip(numbers[2:], [*top.eigenvalues, tr.value]):
        assert math.isclose(got, want, rel_tol=1e-4), (line, top.eigenvalues, tr.value)
