"""``basinscope diagnose`` under a 2-process gloo torchrun: rank 0 writes the report of one process's numbers."""

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
