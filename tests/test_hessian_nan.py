"""Non-finite Hessian-vector products (a loss or model producing NaN/inf) raise instead of returning NaN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from basinscope.hessian import HessianOperator, density, top_eigenvalues, trace
from basinscope.objective import Objective

from .test_hessian_helpers import data, tiny_bn_mlp


def _bits(model: torch.nn.Module) -> dict:
    """Parameters and buffers as bit patterns (NaN == NaN), grads and modes: what must come back unchanged."""
    state = {n: t.detach().clone().view(torch.int64) for n, t in model.state_dict().items() if t.is_floating_point()}
    return {
        "state": state,
        "grads": [p.grad for p in model.parameters()],
        "training": [m.training for m in model.modules()],
    }


def _assert_same_bits(before: dict, after: dict) -> None:
    assert before["training"] == after["training"] and before["grads"] == after["grads"]
    assert all(torch.equal(before["state"][n], after["state"][n]) for n in before["state"])


@pytest.fixture
def nan_model():
    """A model whose output is NaN for every input: one weight of its first layer is NaN."""
    model = tiny_bn_mlp()
    with torch.no_grad():
        model[0].weight[2, 1] = float("nan")
    return model


@pytest.mark.parametrize(
    ("method", "match"),
    [
        ("hutchinson", r"got a non-finite one for probe 1 of 6 \(the loss or the model produce NaN/inf"),
        ("hutch++", r"got a non-finite one for probe 1 of 2 of the Hutch\+\+ sketch \("),
    ],
)
@pytest.mark.parametrize("graph", ["cached", "stream"])
def test_trace_of_nan_model_raises(nan_model, method, match, graph):
    x, y = data()
    obj = Objective(nan_model, F.cross_entropy, (x, y), check_finite=False)
    before = _bits(nan_model)
    with pytest.raises(ValueError, match=r"^trace: expected finite Hessian-vector products, " + match):
        trace(obj, method=method, n_samples=6, graph=graph, block_size=4)
    _assert_same_bits(before, _bits(nan_model))


@pytest.mark.parametrize("method", ["hutchinson", "hutch++"])
def test_trace_names_the_non_finite_probe(monkeypatch, method):
    """Only the 7th product of a phase is non-finite: the message names it (checked after the phase, not per block)."""
    model = tiny_bn_mlp()
    x, y = data()
    real = HessianOperator.matmat
    calls = {"columns": 0}

    def matmat(self, vectors):
        out = real(self, vectors)
        first = calls["columns"]
        calls["columns"] += out.shape[1]
        if first <= 6 < calls["columns"]:
            out[:, 6 - first] = float("inf")
        return out

    monkeypatch.setattr(HessianOperator, "matmat", matmat)
    phase = "" if method == "hutchinson" else " of the Hutch\\+\\+ sketch"
    with pytest.raises(ValueError, match=rf"got a non-finite one for probe 7 of 10{phase} \("):
        trace(Objective(model, F.cross_entropy, (x, y)), method=method, n_samples=30 if method == "hutch++" else 10)


def test_top_eigenvalues_and_density_of_nan_model_raise(nan_model):
    x, y = data()
    obj = Objective(nan_model, F.cross_entropy, (x, y), check_finite=False)
    match = r"expected finite Hessian-vector products, got a non-finite one at Lanczos step 1 \(the loss or the model"
    with pytest.raises(ValueError, match=r"^top_eigenvalues: " + match):
        top_eigenvalues(obj, k=2, start="random")
    with pytest.raises(ValueError, match=r"^density: " + match):
        density(obj, n_runs=2, n_iter=5)


def test_top_eigenvalues_function_overflowing_to_inf_raises():
    """f(t) = exp(t²) at t = 30: the Hessian overflows float64 (inf), not NaN."""
    obj = Objective.from_function(lambda t: torch.exp(t.pow(2)).sum(), torch.tensor([30.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^top_eigenvalues: expected finite Hessian-vector products"):
        top_eigenvalues(obj, k=1, start="random")
    with pytest.raises(ValueError, match=r"^trace: expected finite Hessian-vector products"):
        trace(obj, n_samples=3)
