"""examples/mode_connectivity.py in its quick mode (examples are tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from basinscope.surface import CurveResult, Surface2D

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mode_connectivity.py"


def test_mode_connectivity_example_quick(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("mode_connectivity_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.main(["--quick", "--out", str(tmp_path)])
    for path in files.values():
        assert path.is_file() and path.stat().st_size > 5000, path
    for kind in ("bezier", "polychain"):
        res = CurveResult.load(tmp_path / kind)
        assert res.kind == kind and res.barrier["curve"]["train_loss"] < res.barrier["line"]["train_loss"]
    pca = Surface2D.load(tmp_path / "pca_plane")
    assert pca.path.shape == (8, 2) and np.isfinite(pca.train_loss).all()
    assert len(Surface2D.load(tmp_path / "hessian_plane").settings["eigenvalues"]) == 2
    out = capsys.readouterr().out
    assert "bezier: train-loss barrier" in out and "PCA plane" in out
