"""Resumable grids (store) and the torch.distributed split (2-process gloo torchrun equals 1 process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from basinscope.objective import Objective
from basinscope.surface import Surface1D, Surface2D, line, plane

from ._surface_dist_script import problem
from .conftest import assert_same_state, snapshot

ROOT = Path(__file__).resolve().parents[1]


class Flaky:
    """cross_entropy that raises after ``fail_after`` calls (simulates a process killed mid-grid)."""

    def __init__(self, fail_after: int | None = None):
        self.fail_after = fail_after
        self.calls = 0
        # the store's fingerprint names the loss function: present as the loss it computes
        self.__qualname__ = F.cross_entropy.__qualname__

    def __call__(self, out, y):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("killed")
        return F.cross_entropy(out, y)


def _with_loss(obj: Objective, loss_fn) -> Objective:
    return Objective(obj.model, loss_fn, obj.batches)


def _equal(a, b) -> None:
    for name in ("train_loss", "train_error", "test_loss", "test_error"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert np.array_equal(x, y), name


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    obj, test, w1, w2, w3 = problem()
    reference = plane(obj, w1, w2, w3, test=test, resolution=5, progress=False)
    n = reference.train_loss.size
    store = tmp_path / "store"
    flaky = Flaky(fail_after=2 * 9)  # two batches per point: dies during point 10
    before = snapshot(obj.model)
    with pytest.raises(KeyboardInterrupt):
        plane(_with_loss(obj, flaky), w1, w2, w3, test=test, resolution=5, progress=False, store=store,
              checkpoint_every=0)  # fmt: skip
    assert_same_state(before, snapshot(obj.model))
    manifest = json.loads((store / "manifest.json").read_text())
    with np.load(store / "part-0.npz") as z:
        assert z["done"].sum() == 9 and manifest["n_points"] == n
    again = Flaky()
    resumed = plane(_with_loss(obj, again), w1, w2, w3, test=test, resolution=5, progress=False, store=store)
    assert again.calls == 2 * (n - 9)  # only the missing points were evaluated
    _equal(resumed, reference)
    # a finished store: a rerun evaluates nothing and returns the same values
    third = Flaky()
    _equal(plane(_with_loss(obj, third), w1, w2, w3, test=test, resolution=5, progress=False, store=store), reference)
    assert third.calls == 0


def test_store_refuses_different_arguments(tmp_path):
    obj, test, w1, w2, w3 = problem()
    plane(obj, w1, w2, w3, resolution=3, progress=False, store=tmp_path)
    with pytest.raises(
        ValueError, match=r"store: expected a store made with the same arguments .* different arguments"
    ):
        plane(obj, w1, w2, w3, resolution=4, progress=False, store=tmp_path)
    w3b = {k: v + 1e-3 for k, v in w3.items()}
    with pytest.raises(ValueError, match=r"store: expected a store made with the same arguments"):
        plane(obj, w1, w2, w3b, resolution=3, progress=False, store=tmp_path)
    with pytest.raises(ValueError, match=r"store: expected a store made with the same arguments"):
        plane(obj, w1, w2, w3, resolution=3, test=test, progress=False, store=tmp_path)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match=r"store: expected a directory path, got the file"):
        plane(obj, w1, w2, w3, resolution=3, progress=False, store=f)


def test_line_resume(tmp_path):
    obj, test, w1, w2, _ = problem()
    ts = np.linspace(-1, 2, 13)
    reference = line(obj, w1, w2, ts=ts, test=test, progress=False)
    with pytest.raises(KeyboardInterrupt):
        line(_with_loss(obj, Flaky(fail_after=11)), w1, w2, ts=ts, test=test, progress=False,
             store=tmp_path, checkpoint_every=0)  # fmt: skip
    _equal(line(_with_loss(obj, Flaky()), w1, w2, ts=ts, test=test, progress=False, store=tmp_path), reference)


def _torchrun(tmp_path: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "_surface_dist_script.py"), str(tmp_path), *args]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_torchrun_two_processes_equal_one_process(tmp_path):
    _torchrun(tmp_path)
    assert (tmp_path / "world.txt").read_text() == "2"
    obj, test, w1, w2, w3 = problem()
    _equal(Surface2D.load(tmp_path / "plane"), plane(obj, w1, w2, w3, test=test, resolution=6, progress=False))
    one = line(obj, w1, w3, ts=[-0.5, 0.0, 0.25, 1.0, 1.5], test=test, progress=False)
    _equal(Surface1D.load(tmp_path / "line"), one)


@pytest.mark.slow
def test_torchrun_resumes_a_single_process_store(tmp_path):
    obj, test, w1, w2, w3 = problem()
    store = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        plane(_with_loss(obj, Flaky(fail_after=20)), w1, w2, w3, test=test, resolution=6, progress=False,
              store=store, checkpoint_every=0)  # fmt: skip
    _torchrun(tmp_path, str(store))
    _equal(Surface2D.load(tmp_path / "plane"), plane(obj, w1, w2, w3, test=test, resolution=6, progress=False))


def test_distributed_false_ignores_world_size(monkeypatch):
    obj, _, w1, w2, w3 = problem()
    monkeypatch.setenv("WORLD_SIZE", "2")
    s = plane(obj, w1, w2, w3, resolution=3, progress=False, distributed=False)
    assert np.isfinite(s.train_loss).all() and not torch.distributed.is_initialized()
