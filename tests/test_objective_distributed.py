"""Data-parallel objective: 2-process gloo torchrun on uneven shards equals one process on all the data."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from basinscope.objective import Objective

from ._objective_dist_script import measure, problem

ROOT = Path(__file__).resolve().parents[1]


def torchrun(script: str, tmp_path: Path, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """Run ``tests/<script> tmp_path args...`` (or ``-m module args...`` when ``script`` is ``"-m"``) under
    ``torchrun --standalone`` in ``tmp_path``, failing with its output on error."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("WORLD_SIZE", None)
    program = ["-m", *args] if script == "-m" else [str(ROOT / "tests" / script), str(tmp_path), *args]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *program]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=rtol, atol=rtol * float(b.abs().max()), equal_nan=True)


def test_torchrun_two_uneven_shards_equal_one_process(tmp_path):
    torchrun("_objective_dist_script.py", tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    model, batches = problem()
    reference = measure(Objective(model, F.cross_entropy, batches), seed=3)
    for r, saved in enumerate(ranks):
        res = saved["results"]
        local = 17 if r == 0 else 23
        assert res["num_samples"].tolist() == [40.0, float(local)]
        for name, want in reference.items():
            assert _close(res[name], want, 1e-8), (r, name, res[name], want)
        tr, hvps, *rest = res["resumed"].tolist()
        assert math.isclose(tr, float(reference["trace"]), rel_tol=1e-8) and hvps == 6
        assert rest[4:] == [tr, 0.0, *rest[:3], 0.0]  # the second calls resumed from rank 0's files
        assert _close(torch.tensor(rest[:3], dtype=torch.float64), reference["eigenvalues"], 1e-8)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["eigen.pt", "rank0.pt", "rank1.pt", "trace.pt"]
    for name in reference:  # both ranks hold the very same numbers
        assert torch.equal(torch.nan_to_num(ranks[0]["results"][name]), torch.nan_to_num(ranks[1]["results"][name]))
    for saved in ranks:
        assert saved["refused"] == (
            "model: expected the same trainable parameter names and shapes on every rank, "
            "got rank 1: weight [2, 4] vs weight [3, 4] on rank 0"
        )


@pytest.fixture
def one_rank_group(tmp_path):
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()


def test_group_of_one_rank_equals_plain_objective(one_rank_group):
    model, batches = problem()
    dist = measure(Objective(model, F.cross_entropy, batches, distributed=True), seed=3)
    plain = measure(Objective(model, F.cross_entropy, batches), seed=3)
    for name, want in plain.items():
        assert torch.equal(torch.nan_to_num(dist[name]), torch.nan_to_num(want)), name


def test_group_of_one_rank_refuses_a_bad_shard_with_its_own_message(one_rank_group):
    model, _ = problem()
    with pytest.raises(ValueError, match=r"^data: expected at least one \(inputs, targets\) batch, got an empty"):
        Objective(model, F.cross_entropy, [], distributed=True)


def test_distributed_without_a_process_group_is_refused():
    model, batches = problem()
    assert not torch.distributed.is_initialized()
    with pytest.raises(ValueError, match=r"^distributed: expected an initialized torch.distributed process group"):
        Objective(model, F.cross_entropy, batches, distributed=True)
    with pytest.raises(TypeError, match=r"^distributed: expected True or False, got int"):
        Objective(model, F.cross_entropy, batches, distributed=1)


def test_not_distributed_never_communicates(monkeypatch):
    """distributed=False (the default) calls no torch.distributed function, even when a group would exist."""
    import basinscope._data_parallel as DP

    def boom(*a, **k):
        raise AssertionError("communication without distributed=True")

    for name in ("sum_", "broadcast_seed", "all_gather_objects"):
        monkeypatch.setattr(DP, name, boom)
    model, batches = problem()
    obj = Objective(model, F.cross_entropy, batches)
    assert not obj.distributed and obj.local_samples == obj.num_samples == 40
    measure(obj, seed=3)


def test_release_tears_down_only_a_group_set_up_by_active(tmp_path):
    from basinscope.surface import distributed as D

    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        D.release()  # the caller's own group stays for the caller
        assert torch.distributed.is_initialized()
        D._OWNED = True  # as active() marks a group it initialized from torchrun's environment
        D.release()
        assert not torch.distributed.is_initialized() and not D._OWNED
    finally:
        D._OWNED = False
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
