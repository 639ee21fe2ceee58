"""The state guard restores everything bit-exactly, also on error."""

from __future__ import annotations

import pytest
import torch

from basinscope._state import preserve_state

from .conftest import assert_same_state, snapshot, tiny_bn_net, tiny_data


def _mutate(model):
    x, y = tiny_data()
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), y)  # updates BN running stats
    loss.backward()  # writes .grad
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model[0].weight.requires_grad_(False)
    model.eval()
    model[1].running_mean = torch.zeros(5, dtype=torch.float64)  # re-assigned buffer object


@pytest.mark.parametrize("with_grads", [False, True])
def test_restores_after_mutation(with_grads):
    model = tiny_bn_net()
    model.train()
    if with_grads:
        x, y = tiny_data(seed=5)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grad_obj = model[0].weight.grad
    before = snapshot(model)
    with preserve_state(model):
        _mutate(model)
    assert_same_state(before, snapshot(model))
    if with_grads:
        assert model[0].weight.grad is grad_obj  # the same tensor object, so optimizers' references hold


def test_restores_on_exception():
    model = tiny_bn_net()
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"), preserve_state(model):
        _mutate(model)
        raise RuntimeError("boom")
    assert_same_state(before, snapshot(model))


def test_snapshot_detects_changes():
    """The comparison used throughout the suite is able to fail."""
    model = tiny_bn_net()
    before = snapshot(model)
    _mutate(model)
    with pytest.raises(AssertionError):
        assert_same_state(before, snapshot(model))
