"""backend="pyhessian" side by side with the native estimators; the scoped torch.eig shim leaves nothing behind."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

from basinscope.hessian import density, top_eigenvalues, trace
from basinscope.hessian._pyhessian import torch_eig_shim
from basinscope.objective import Objective

from .conftest import assert_same_state, snapshot
from .test_hessian_helpers import data, dense_hessian, objective, tiny_bn_mlp

pytest.importorskip("pyhessian")
ph = importlib.import_module("pyhessian.hessian")


@pytest.fixture(scope="module")
def problem():
    model = tiny_bn_mlp()
    x, y = data()
    H = dense_hessian(model, x, y)
    return model, x, y, H


def _globals():
    return (
        vars(torch).get("eig"),
        ph.hessian_vector_product,
        ph.orthnormal,
        torch.get_default_dtype(),
        torch.get_rng_state(),
    )


def _assert_nothing_left(before):
    after = _globals()
    assert after[0] is before[0], "torch.eig left patched"
    assert after[1] is before[1] and after[2] is before[2], "pyhessian functions left patched"
    assert after[3] == before[3], "default dtype changed"
    assert torch.equal(after[4], before[4]), "global RNG advanced"


@pytest.mark.parametrize("n_batches", [1, 2], ids=["batch", "dataloader"])
def test_eigenvalues_agree_with_native_and_dense(problem, n_batches):
    model, x, y, H = problem
    ev = torch.linalg.eigvalsh(H)
    ref = ev[ev.abs().argsort(descending=True)][:2]
    obj = objective(model, x, y, n_batches=n_batches)
    before = _globals()
    state = snapshot(model)
    ours = top_eigenvalues(obj, k=2, method="power")
    theirs = top_eigenvalues(obj, k=2, method="power", backend="pyhessian")
    _assert_nothing_left(before)
    assert_same_state(state, snapshot(model))
    # within PyHessian's own stopping tolerance (relative change 1e-3 between iterations ~ 1e-2 in value)
    torch.testing.assert_close(torch.tensor(theirs.eigenvalues, dtype=torch.float64), ref, rtol=2e-2, atol=0)
    torch.testing.assert_close(torch.tensor(ours.eigenvalues), torch.tensor(theirs.eigenvalues), rtol=2e-2, atol=0)
    assert theirs.cost.hvps == sum(theirs.iterations) > 0
    assert list(theirs.eigenvectors[0]) == obj.names


def test_trace_agrees_statistically(problem):
    model, x, y, H = problem
    before = _globals()
    res = trace(objective(model, x, y), n_samples=200, backend="pyhessian", seed=0)
    _assert_nothing_left(before)
    assert res.cost.hvps == res.samples.numel()
    if res.samples.numel() >= 10:  # PyHessian stops early on a tol test that misbehaves for negative means
        assert abs(res.value - float(torch.trace(H))) <= 5 * res.standard_error


def test_density_runs_with_shim_and_matches_dense(problem):
    model, x, y, H = problem
    n = H.shape[0]
    before = _globals()
    state = snapshot(model)
    res = density(objective(model, x, y), n_runs=1, n_iter=n, backend="pyhessian")
    _assert_nothing_left(before)
    assert_same_state(state, snapshot(model))
    # every eigenvalue of H is a node of PyHessian's n-step run, to its precision (it normalizes with
    # ‖v‖ + 1e-6). Its breakdown test is `beta != 0`, so after the Krylov space of the distinct eigenvalues
    # is exhausted it continues on rounding noise: the extra nodes (for H's repeated 0) are inaccurate.
    nodes = res.nodes[0]
    gaps = (torch.linalg.eigvalsh(H)[:, None] - nodes[None, :]).abs().min(dim=1).values
    assert float(gaps.max()) < 1e-5
    assert float(torch.trapezoid(res.density, res.grid)) == pytest.approx(1.0, abs=1e-3)
    ours = density(objective(model, x, y), n_runs=1, n_iter=n)
    assert ours.moment(1) == pytest.approx(res.moment(1), rel=0.5)  # different random start vectors


def test_layers_subset_through_pyhessian(problem):
    model, x, y, _ = problem
    names = ["3.weight", "3.bias"]
    evs = torch.linalg.eigvalsh(dense_hessian(model, x, y, names))
    res = top_eigenvalues(objective(model, x, y), k=1, method="power", backend="pyhessian", layers=["3"])
    assert res.eigenvalues[0] == pytest.approx(float(evs.abs().max()), rel=2e-2)
    assert list(res.eigenvectors[0]) == names
    assert all(p.requires_grad for p in model.parameters())


def test_model_restored_with_existing_grads_and_train_mode():
    model = tiny_bn_mlp().train()
    x, y = data()
    F.cross_entropy(model(x), y).backward()
    state = snapshot(model)
    obj = Objective(model, F.cross_entropy, (x, y))
    top_eigenvalues(obj, k=1, method="power", backend="pyhessian")
    assert_same_state(state, snapshot(model))


def test_shim_scoped_and_restored_on_error():
    original = vars(torch)["eig"]
    with pytest.raises(RuntimeError, match="removed"):
        torch.eig(torch.eye(2))
    with pytest.raises(KeyError), torch_eig_shim():
        values, vectors = torch.eig(torch.diag(torch.tensor([2.0, 1.0])), eigenvectors=True)
        assert sorted(values[:, 0].tolist()) == [1.0, 2.0] and vectors.shape == (2, 2)
        raise KeyError("inside")
    assert vars(torch)["eig"] is original


def test_backend_errors(problem):
    model, x, y, _ = problem
    with pytest.raises(ValueError, match=r"backend: expected 'native' for mode='train'"):
        top_eigenvalues(objective(model, x, y, mode="train"), method="power", backend="pyhessian")
    with pytest.raises(ValueError, match=r"backend: expected 'native' for method='hutch\+\+'"):
        trace(objective(model, x, y), method="hutch++", backend="pyhessian")
    fobj = Objective.from_function(lambda t: (t**2).sum(), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"backend: expected 'native' for a function objective"):
        top_eigenvalues(fobj, method="power", backend="pyhessian")
