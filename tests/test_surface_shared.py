"""The pieces the surface functions share: random slices through the common slice loop (same values and the same
store fingerprint as the grid loop called directly with the random slices' own key), the grid nodes, the BatchNorm
setting recorded in results, the label check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from basinscope.surface import evaluate_curve, line, random_directions, random_line, random_plane
from basinscope.surface._axes import grid_coords
from basinscope.surface.grid import bn_recompute_kind, evaluate_points

from ._surface_dist_script import problem


def _fingerprint(store) -> str:
    return json.loads((store / "manifest.json").read_text())["fingerprint"]


def test_random_line_equals_the_grid_loop_with_its_own_store_key(tmp_path):
    obj, test, w1, _, _ = problem()
    ts = np.array([-1.0, -0.25, 0.0, 0.5, 1.0])
    s = random_line(obj, seed=3, ts=ts, test=test, progress=False, store=tmp_path / "a", checkpoint_every=0)
    (d,) = random_directions(w1, 1, seed=3)
    ref, _, _ = evaluate_points(
        obj,
        w1,
        [d],
        ts[:, None],
        exact={2: w1},
        test=test,
        progress=False,
        store=tmp_path / "b",
        checkpoint_every=0,
        key={"kind": "random_line", "seed": 3, "normalize": "filter", "ignore": "biasbn"},
    )
    for name, values in ref.items():
        np.testing.assert_array_equal(getattr(s, name), values, err_msg=name)
    assert _fingerprint(tmp_path / "a") == _fingerprint(tmp_path / "b")
    assert s.settings == {"seed": 3, "normalize": "filter", "ignore": "biasbn", "test": True}
    assert s.kind == "random_line" and s.point_labels == ["θ"] and s.points.tolist() == [0.0]


def test_random_plane_equals_the_grid_loop_with_its_own_store_key(tmp_path):
    obj, _, w1, _, _ = problem()
    s = random_plane(obj, seed=2, span=(0.5, 1.0), resolution=(3, 5), progress=False, store=tmp_path / "a")
    d1, d2 = random_directions(w1, 2, seed=2)
    alphas, betas = np.array([-0.5, 0.0, 0.5]), np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    coords = np.array([[a, b] for b in betas for a in alphas])
    ref, _, _ = evaluate_points(
        obj,
        w1,
        [d1, d2],
        coords,
        exact={2 * 3 + 1: w1},
        progress=False,
        store=tmp_path / "b",
        key={"kind": "random_plane", "seed": 2, "normalize": "filter", "ignore": "biasbn"},
    )
    np.testing.assert_array_equal(s.alphas, alphas)
    np.testing.assert_array_equal(s.betas, betas)
    np.testing.assert_array_equal(s.train_loss, ref["train_loss"].reshape(5, 3))
    assert s.test_loss is None and ref["test_loss"] is None
    assert _fingerprint(tmp_path / "a") == _fingerprint(tmp_path / "b")
    assert s.point_indices == [[1, 2]] and s.at_point("θ") == float(obj.loss(w1))
    assert s.settings["span"] == [0.5, 1.0] and s.settings["resolution"] == [3, 5]


def test_grid_coords_runs_alpha_fastest():
    alphas, betas = np.array([-1.0, 0.0, 2.0]), np.array([0.5, 1.5])
    expected = [[a, b] for b in betas for a in alphas]
    assert grid_coords(alphas, betas).tolist() == expected


@pytest.mark.parametrize(
    "bn_data, kind",
    [(None, None), (False, None), (True, "train"), ([(np.zeros(1), np.zeros(1))], "data")],
    ids=["none", "false", "true", "data"],
)
def test_bn_recompute_kind(bn_data, kind):
    assert bn_recompute_kind(bn_data) == kind


def test_labels_of_lines_and_curves_are_two_strings():
    obj, _, w1, w2, w3 = problem()
    with pytest.raises(ValueError, match=r"^labels: expected two strings, got list of length 3$"):
        line(obj, w1, w2, labels=("a", "b", "c"), progress=False)
    with pytest.raises(ValueError, match=r"^labels: expected two strings, got list of length 1$"):
        evaluate_curve(obj, w1, w3, w2, labels=("a",), progress=False)
    s = line(obj, w1, w2, ts=[0.0, 1.0], labels=("p", "q"), progress=False)
    assert s.point_labels == ["p", "q"]
