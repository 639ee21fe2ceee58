"""``basinscope surface curve`` and ``surface plane|line --directions random|hessian|pca`` end to end (in-process,
tiny model and data), their resume, and their one-line errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from basinscope.cli import main
from basinscope.surface import CurveResult, Surface1D, Surface2D

from .test_cli import DATA, MODEL, make_bn_net, make_net

BN_MODEL = "tests.test_cli:make_bn_net"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _points(tmp_path, n: int, bn: bool = False) -> list[str]:
    """``n`` checkpoints: the factory's weights moved by seeded noise (the first unmoved)."""
    g = torch.Generator().manual_seed(11)
    paths = []
    for i in range(n):
        net = make_bn_net() if bn else make_net()
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.15 * i * torch.randn(p.shape, generator=g))
        path = tmp_path / f"p{i}.pt"
        torch.save(net.state_dict(), path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("bn", [False, True], ids=["mlp", "batchnorm"])
def test_curve_end_to_end_and_resume(capsys, tmp_path, bn):
    a, b = _points(tmp_path, 2, bn)
    out = tmp_path / "c"
    argv = ["surface", "curve", a, b, "--model", BN_MODEL if bn else MODEL, "--data", DATA, "--out", str(out)]
    argv += ["--steps", "12", "--fit-batch-size", "16", "--points", "5", "--json", "-q"]
    code, stdout, err = run(capsys, *argv)
    assert code == 0, err
    summary = json.loads(stdout)["summary"]
    assert set(summary["barrier"]) == {"curve", "line"} and summary["kind"] == "bezier"
    for name in ("curve.npz", "curve.json", "curve.png", "curve.html"):
        assert (out / name).stat().st_size > 0, name
    doc = json.loads((out / "curve.json").read_text())["fields"]
    assert len(doc["curve"]["train_loss"]) == 5 and len(doc["line"]["test_error"]) == 5
    assert doc["barrier"] == summary["barrier"] and doc["labels"] == ["p0", "p1"]
    assert doc["settings"]["bn_recompute"] == ("train" if bn else None)
    first = CurveResult.load(out / "curve")
    code, _, err = run(capsys, *argv)  # again: the fit and both paths come from out/store
    assert code == 0, err
    again = CurveResult.load(out / "curve")
    assert again.curve == first.curve and again.cost.gradients == 0 and again.cost.forwards == 0


@pytest.mark.parametrize(
    "kind, directions, extra",
    [
        ("line", "random", ["--points", "5"]),
        ("line", "hessian", ["--points", "5", "--range=-0.5:0.5"]),
        ("line", "pca", ["--points", "5"]),
        ("plane", "random", ["--resolution", "3"]),
        ("plane", "hessian", ["--resolution", "3", "--span", "0.3"]),
        ("plane", "pca", ["--resolution", "3"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_directions_end_to_end(capsys, tmp_path, kind, directions, extra):
    pts = _points(tmp_path, 4)
    out = tmp_path / "s"
    argv = ["surface", kind, pts[-1], "--directions", directions, "--model", MODEL, "--data", DATA]
    if directions == "pca":
        argv += ["--trajectory", *pts]
    code, stdout, err = run(capsys, *argv, *extra, "--out", str(out), "--json", "-q")
    assert code == 0, err
    summary = json.loads(stdout)["summary"]
    assert summary["kind"] == f"{directions}_{kind}"
    for name in ("surface.npz", "surface.json", "surface.png", "surface.html"):
        assert (out / name).stat().st_size > 0, name
    surf = (Surface2D if kind == "plane" else Surface1D).load(out / "surface")
    assert np.isfinite(surf.train_loss).all() and surf.test_error is not None
    if directions == "hessian":
        assert len(surf.settings["eigenvalues"]) == (2 if kind == "plane" else 1)
    if directions == "pca":
        assert len(surf.settings["explained_variance_ratio"]) == (2 if kind == "plane" else 1)
        if kind == "plane":
            assert surf.path.shape == (4, 2) and np.allclose(surf.path[-1], 0.0)


def _one_line_error(code: int, err: str, pattern: str) -> None:
    lines = [ln for ln in err.splitlines() if ln]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("basinscope: error: ") and re.search(pattern, lines[0]), err


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["plane", "{0}"], r"checkpoints: expected 3 checkpoint files for a plane through checkpoints, got 1"),
        (["line", "{0}", "{1}", "--directions", "hessian"], r"checkpoints: expected 1 checkpoint file for a line"),
        (["plane", "{0}", "--directions", "pca"], r"trajectory: expected the iterates of a run"),
        (["line", "{0}", "{1}", "--trajectory", "{0}", "{1}"], r"trajectory: expected the iterates of a run"),
        (["plane", "{0}", "--directions", "sideways"], r"invalid choice: 'sideways'"),
        (["curve", "{0}", "{1}", "--curve", "spline"], r"invalid choice: 'spline'"),
        (["curve", "{0}", "{1}", "--steps", "0"], r"--steps: expected a positive"),
        (["curve", "{0}", "{1}", "--momentum", "1"], r"momentum: expected a number in \[0, 1\)"),
        (["curve", "{0}", "{0}x"], r"checkpoint"),
    ],
    ids=[
        "plane-one",
        "line-two-directions",
        "pca-no-trajectory",
        "trajectory-no-pca",
        "directions",
        "curve-kind",
        "steps",
        "momentum",
        "missing",
    ],
)
def test_bad_arguments_give_one_line_errors(capsys, tmp_path, args, pattern):
    pts = _points(tmp_path, 2)
    argv = ["surface", *(a.format(*pts) for a in args), "--model", MODEL, "--data", DATA, "-q"]
    code, _, err = run(capsys, *argv, "--out", str(tmp_path / "o"))
    _one_line_error(code, err, pattern)
