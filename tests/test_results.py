"""Result objects save to npz + JSON and load back unchanged; validators' messages."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from basinscope._checks import check_int, check_positive
from basinscope.objective import Cost
from basinscope.results import Result


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


# ---------------------------------------------------------------------------------------------- pair atomicity
def _other():
    p = {"a.weight": torch.ones(2, 3, dtype=torch.float64), "a.bias": torch.ones(2)}
    return _Demo(
        value=2.0,
        grid=np.arange(7.0),
        curve=torch.ones(3),
        point=p,
        points=[p],
        settings={"eps": 0.5},
        cost=Cost(forwards=1),
        note="new",
    )


def _assert_equal(a: _Demo, b: _Demo) -> None:
    np.testing.assert_array_equal(a.grid, b.grid)
    assert torch.equal(a.curve, b.curve) and a.settings == b.settings and a.note == b.note


def test_interrupted_between_the_two_renames_is_refused_on_load(tmp_path, monkeypatch):
    import basinscope.results as R

    old = _demo()
    old.save(tmp_path / "res")
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith(".npz"):
            raise KeyboardInterrupt("killed after the JSON was renamed")
        real(src, dst)

    monkeypatch.setattr(R.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        _other().save(tmp_path / "res")
    monkeypatch.undo()
    # the new JSON beside the old npz: a mix, refused with one line instead of loaded
    assert json.loads((tmp_path / "res.json").read_text())["fields"]["note"] == "new"
    with pytest.raises(ValueError, match=r"path: expected res\.npz written together with res\.json .*interrupted"):
        _Demo.load(tmp_path / "res")
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_interrupted_while_writing_leaves_the_old_result_intact(tmp_path, monkeypatch):
    import basinscope._atomic as R  # the atomic writers behind Result.save

    old = _demo()
    old.save(tmp_path / "res")
    real = R._temp_file
    calls = []

    def temp_file(path, data):
        calls.append(path)
        if len(calls) == 2:  # the JSON's temporary file is written, the npz's is not
            raise OSError("disk full")
        return real(path, data)

    monkeypatch.setattr(R, "_temp_file", temp_file)
    with pytest.raises(OSError, match="disk full"):
        _other().save(tmp_path / "res")
    monkeypatch.undo()
    _assert_equal(_Demo.load(tmp_path / "res"), old)
    assert not list(tmp_path.glob(".*tmp*"))


def test_npz_swapped_for_another_results_is_refused(tmp_path):
    _demo().save(tmp_path / "a")
    _other().save(tmp_path / "b")
    os.replace(tmp_path / "b.npz", tmp_path / "a.npz")
    with pytest.raises(ValueError, match=r"path: expected a\.npz written together with a\.json"):
        _Demo.load(tmp_path / "a")


def test_corrupt_files_give_one_line_errors(tmp_path):
    _demo().save(tmp_path / "a")
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"path: expected a saved result, got an unreadable a\.json"):
        _Demo.load(tmp_path / "a")
    _demo().save(tmp_path / "b")
    doc = json.loads((tmp_path / "b.json").read_text())
    del doc["npz_sha256"]  # as written before digests were stored
    (tmp_path / "b.json").write_text(json.dumps(doc))
    (tmp_path / "b.npz").write_bytes((tmp_path / "b.npz").read_bytes()[:50])
    with pytest.raises(ValueError, match=r"path: expected a readable b\.npz, got a corrupt file"):
        _Demo.load(tmp_path / "b")


def test_result_without_digest_still_loads(tmp_path):
    r = _demo()
    r.save(tmp_path / "a")
    doc = json.loads((tmp_path / "a.json").read_text())
    del doc["npz_sha256"]
    (tmp_path / "a.json").write_text(json.dumps(doc))
    _assert_equal(_Demo.load(tmp_path / "a"), r)


# ---------------------------------------------------------------------------------------------- symlinks
def test_save_replaces_a_planted_symlink_without_touching_its_target(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    for suffix in (".npz", ".json"):
        (out / f"res{suffix}").symlink_to(victim)
    r = _demo()
    r.save(out / "res")
    assert victim.read_text() == "precious"
    for suffix in (".npz", ".json"):
        assert not (out / f"res{suffix}").is_symlink()
    _assert_equal(_Demo.load(out / "res"), r)


def test_atomic_writers_do_not_follow_symlinks(tmp_path):
    from basinscope.results import atomic_output, atomic_write_bytes

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("a.bin", "b.png"):
        (tmp_path / name).symlink_to(victim)
    atomic_write_bytes(tmp_path / "a.bin", b"new")
    with atomic_output(tmp_path / "b.png") as tmp:
        assert tmp.suffix == ".png"  # writers that infer the format from the name still can
        tmp.write_bytes(b"png")
    assert victim.read_text() == "precious"
    assert (tmp_path / "a.bin").read_bytes() == b"new" and not (tmp_path / "a.bin").is_symlink()
    assert (tmp_path / "b.png").read_bytes() == b"png" and not (tmp_path / "b.png").is_symlink()
    mode = (tmp_path / "a.bin").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # as open() would create it, not mkstemp's 0600


def test_atomic_output_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from basinscope.results import atomic_output

    (tmp_path / "f.txt").write_text("old")
    with pytest.raises(RuntimeError, match="writer failed"), atomic_output(tmp_path / "f.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert (tmp_path / "f.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
