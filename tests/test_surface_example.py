"""The surface example runs in its quick mode and writes its plots."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from basinscope.surface import Surface1D, Surface2D

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "surface_plots.py"


def test_surface_example_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("surface_plots_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.main(["--quick", "--out", str(tmp_path)])
    for path in files.values():
        assert path.is_file() and path.stat().st_size > 5000, path
    s = Surface2D.load(tmp_path / "plane")
    assert s.point_labels == ["w1", "w2", "w3", "SWA"] and np.isfinite(s.test_error).all()
    assert Surface1D.load(tmp_path / "line").point_labels == ["SWA", "last SGD"]
