"""The plumbing the sharpness probes share: the minibatch they measure on and the model's mode flags."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from basinscope.objective import Objective
from basinscope.sharpness import clamped_walk_probe, stochastic_probe
from basinscope.sharpness._common import model_modes, select_batch


def _objective() -> Objective:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2)).double()
    g = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (6,), generator=g)) for _ in range(3)
    ]
    return Objective(model, F.cross_entropy, batches)


def test_select_batch_by_index_and_by_pair():
    obj = _objective()
    x, y = select_batch(obj, 2)
    assert x is obj.batches[2][0] and y is obj.batches[2][1]
    xp, yp = select_batch(obj, (x.clone(), y.clone()))
    assert torch.equal(xp, x) and torch.equal(yp, y) and xp.device == obj.device
    with pytest.raises(
        ValueError, match=r"^batch: expected an index in \[0, 2\] or an \(inputs, targets\) pair, got 3$"
    ):
        select_batch(obj, 3)
    with pytest.raises(TypeError, match=r"^data\[0\]: expected an \(inputs, targets\) pair of tensors"):
        select_batch(obj, True)


@pytest.mark.parametrize(
    "probe",
    [clamped_walk_probe, lambda obj, batch: stochastic_probe(obj, 0.05, 2, 2, batch=batch)],
    ids=["clamped-walk", "stochastic"],
)
def test_probes_measure_the_same_minibatch_given_by_index_or_pair(probe):
    obj = _objective()
    by_index = probe(obj, batch=1)
    by_pair = probe(obj, batch=obj.batches[1])
    assert by_index.value == by_pair.value and by_index.f0 == by_pair.f0


def test_model_modes_restores_flags_and_accepts_no_model():
    obj = _objective()
    model = obj.model.train()
    with model_modes(model):
        model.eval()
        model[1].momentum = 0.5
    assert all(m.training for m in model.modules()) and model[1].momentum == 0.1
    with model_modes(None):
        pass
