"""Result objects save to npz + JSON and load back unchanged; validators' messages."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from landscape._checks import check_int, check_positive
from landscape.objective import Cost
from landscape.results import Result


@dataclasses.dataclass(frozen=True)
class _Demo(Result):
    value: float
    grid: np.ndarray
    curve: torch.Tensor
    point: dict
    points: list
    settings: dict
    cost: Cost
    note: str | None = None


def _demo():
    p = {"a.weight": torch.randn(2, 3, dtype=torch.float64), "a.bias": torch.zeros(2)}
    return _Demo(
        value=float("nan"),
        grid=np.linspace(0, 1, 5),
        curve=torch.arange(4.0),
        point=p,
        points=[p, {k: v + 1 for k, v in p.items()}],
        settings={"eps": 1e-3, "steps": [1, 2]},
        cost=Cost(forwards=3, gradients=2, seconds=0.5),
    )


def test_roundtrip(tmp_path):
    r = _demo()
    base = r.save(tmp_path / "sub" / "res.npz")
    assert (tmp_path / "sub" / "res.npz").is_file() and (tmp_path / "sub" / "res.json").is_file()
    back = _Demo.load(base)
    assert np.isnan(back.value)
    np.testing.assert_array_equal(back.grid, r.grid)
    assert torch.equal(back.curve, r.curve)
    assert list(back.point) == ["a.weight", "a.bias"]
    for k in r.point:
        assert torch.equal(back.point[k], r.point[k])
        assert torch.equal(back.points[1][k], r.points[1][k])
    assert back.settings == r.settings and back.cost == r.cost and back.note is None
    assert json.loads((tmp_path / "sub" / "res.json").read_text())["type"] == "_Demo"
    assert not list((tmp_path / "sub").glob("*.tmp"))


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: expected a saved result"):
        _Demo.load(tmp_path / "nothing")

    @dataclasses.dataclass(frozen=True)
    class Other(Result):
        x: int

    Other(x=1).save(tmp_path / "o")
    with pytest.raises(ValueError, match=r"path: expected a saved _Demo, got a saved 'Other'"):
        _Demo.load(tmp_path / "o")


def test_validator_messages():
    with pytest.raises(TypeError, match=r"k: expected an integer, got True"):
        check_int("k", True)
    with pytest.raises(ValueError, match=r"k: expected an integer >= 1, got 0"):
        check_int("k", 0, minimum=1)
    with pytest.raises(ValueError, match=r"gamma: expected a finite number > 0, got -1.0"):
        check_positive("gamma", -1.0)
    with pytest.raises(ValueError, match=r"gamma: expected a finite number > 0, got inf"):
        check_positive("gamma", float("inf"))
    assert check_positive("lr", 0, allow_zero=True) == 0.0
