"""Bad input is refused with one-line messages naming the argument; the model is unchanged afterwards."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from basinscope.objective import Objective
from basinscope.surface import Surface2D, line, plane, random_directions, random_line, random_plane

from ._surface_dist_script import problem
from .conftest import assert_same_state, snapshot


def _shift(w, c):
    return {k: v + c for k, v in w.items()}


CASES = [
    ("duplicate w2", lambda w1, w2, w3: (w1, dict(w1), w3), r"w2: expected weights different from w1, got the same"),
    ("duplicate w3", lambda w1, w2, w3: (w1, w2, dict(w2)), r"w3: expected weights different from w2, got the same"),
    (
        "collinear",
        lambda w1, w2, w3: (w1, w2, {k: w1[k] + 2.5 * (w2[k] - w1[k]) for k in w1}),
        r"w3: expected a point off the line through w1 and w2, got collinear points",
    ),
    (
        "missing key",
        lambda w1, w2, w3: (w1, {k: v for k, v in w2.items() if k != "0.bias"}, w3),
        r"w2: expected the model's trainable parameter names, got missing keys '0.bias'",
    ),
    (
        "extra key",
        lambda w1, w2, w3: (w1, w2, {**w3, "other": torch.zeros(1)}),
        r"w3: expected the model's trainable parameter names, got extra keys 'other'",
    ),
    (
        "wrong shape",
        lambda w1, w2, w3: ({**w1, "0.bias": torch.zeros(7)}, w2, w3),
        r"w1\['0.bias'\]: expected shape \(6,\), got shape \(7,\)",
    ),
]


@pytest.mark.parametrize("make, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plane_bad_points(make, match):
    obj, _, w1, w2, w3 = problem()
    before = snapshot(obj.model)
    with pytest.raises(ValueError, match=match):
        plane(obj, *make(w1, w2, w3), resolution=3, progress=False)
    assert_same_state(before, snapshot(obj.model))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"resolution": 1}, ValueError, r"resolution: expected an integer >= 2, got 1"),
        ({"resolution": (3, 0)}, ValueError, r"resolution\[1\]: expected an integer >= 2, got 0"),
        ({"resolution": 2.5}, TypeError, r"resolution: expected an integer, got 2.5"),
        ({"margin": -0.1}, ValueError, r"margin: expected a finite number >= 0, got -0.1"),
        ({"labels": ("a", "b")}, ValueError, r"labels: expected three strings, got list of length 2"),
        ({"checkpoint_every": -1.0}, ValueError, r"checkpoint_every: expected a finite number >= 0"),
    ],
    ids=["resolution-1", "resolution-pair", "resolution-float", "margin", "labels", "checkpoint"],
)
def test_plane_bad_settings(kwargs, exc, match):
    obj, _, w1, w2, w3 = problem()
    with pytest.raises(exc, match=match):
        plane(obj, w1, w2, w3, progress=False, **kwargs)


def test_empty_and_non_finite_line_coordinates():
    obj, _, w1, w2, _ = problem()
    with pytest.raises(ValueError, match=r"ts: expected a non-empty 1-D sequence of numbers .*, got list of length 0"):
        line(obj, w1, w2, ts=[], progress=False)
    with pytest.raises(ValueError, match=r"ts: expected finite numbers, got 1 non-finite entries"):
        line(obj, w1, w2, ts=[0.0, float("nan")], progress=False)
    with pytest.raises(ValueError, match=r"ts: expected a non-empty 1-D sequence"):
        random_line(obj, ts=[[0.0, 1.0]], progress=False)


def test_non_finite_loss_is_reported_with_the_point():
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 1, dtype=torch.float64)
    obj = Objective(model, F.mse_loss, (x, y))
    start = obj.point()
    end = _shift(start, 1e200)  # (1e200)² overflows to inf
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"train_loss: expected a finite value at every grid point .*, got inf at 2 "):
        line(obj, start, end, ts=[0.0, 0.5, 1.0], progress=False)
    assert_same_state(before, snapshot(model))
    lenient = Objective(model, F.mse_loss, (x, y), check_finite=False)
    s = line(lenient, start, end, ts=[0.0, 0.5, 1.0], progress=False)
    assert s.train_loss[0] < 1e10 and s.train_loss[2] == float("inf")


def test_bad_objectives_and_directions():
    obj, _, w1, w2, w3 = problem()
    with pytest.raises(TypeError, match=r"obj: expected an Objective, got Linear"):
        plane(nn.Linear(2, 2), w1, w2, w3)
    other = Objective(nn.Linear(5, 3).double(), F.cross_entropy, (torch.randn(4, 5).double(), torch.zeros(4).long()))
    with pytest.raises(ValueError, match=r"test: expected an Objective over the same trainable parameter names as obj"):
        plane(obj, w1, w2, w3, test=other, resolution=3, progress=False)
    with pytest.raises(TypeError, match=r"like: expected an Objective or a non-empty dict\[str, Tensor\] of weights"):
        random_directions([1, 2])
    with pytest.raises(ValueError, match=r"normalize: expected one of 'filter', got 'layer'"):
        random_directions(w1, normalize="layer")
    with pytest.raises(ValueError, match=r"seed: expected an integer >= 0, got -1"):
        random_plane(obj, seed=-1, progress=False)
    with pytest.raises(ValueError, match=r"span: expected a finite number > 0, got 0"):
        random_plane(obj, span=0, progress=False)
    fn = Objective.from_function(lambda t: (t**2).sum(), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"bn_data: expected None for an objective built from a function, got True"):
        random_line(fn, bn_data=True, ts=[0.0], normalize=None, progress=False)


def test_result_accessors_reject_unknown(tmp_path):
    obj, _, w1, w2, w3 = problem()
    mean = {k: (w1[k] + w2[k] + w3[k]) / 3 for k in w1}
    s = plane(obj, w1, w2, w3, resolution=3, progress=False, marks={"mean": mean})
    # the average of the three points lies in the plane at the centroid of their coordinates
    assert s.points[3].tolist() == pytest.approx(s.points[:3].mean(axis=0).tolist(), abs=1e-12)
    assert s.settings["mark_offsets_from_plane"]["mean"] == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(
        ValueError, match=r"metric: expected one of the measured metrics 'train_loss', 'train_error', got"
    ):
        s.values("test_error")
    with pytest.raises(ValueError, match=r"metric: expected one of 'train_loss'"):
        s.values("loss")
    with pytest.raises(
        ValueError, match=r"label: expected a point evaluated on the grid, got 'mean', a projected mark"
    ):
        s.at_point("mean")
    with pytest.raises(ValueError, match=r"label: expected one of 'w1', 'w2', 'w3', 'mean', got 'w4'"):
        s.at_point("w4")
    line(obj, w1, w2, ts=[0.0], progress=False).save(tmp_path / "line")
    with pytest.raises(ValueError, match=r"path: expected a saved Surface2D, got a saved 'Surface1D'"):
        Surface2D.load(tmp_path / "line")
