"""Bad input and non-finite losses: one-line messages, and the model left exactly as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from basinscope.objective import Objective
from basinscope.sharpness import keskar, probe, two_sided
from tests.conftest import assert_same_state, snapshot, tiny_bn_net, tiny_data


def _quad():
    return Objective.from_function(lambda t: 0.5 * (t**2).sum(), torch.zeros(2, dtype=torch.float64))


BAD = [
    (lambda o: keskar(o, 0.0), ValueError, r"^epsilon: expected a finite number > 0, got 0\.0$"),
    (lambda o: keskar(o, -1.0), ValueError, r"^epsilon: expected a finite number > 0, got -1\.0$"),
    (lambda o: keskar(o, float("nan")), ValueError, r"^epsilon: expected a finite number > 0, got nan$"),
    (lambda o: two_sided(o, 0), ValueError, r"^epsilon: expected a finite number > 0, got 0$"),
    (lambda o: keskar(o, "0.1"), TypeError, r"^epsilon: expected a real number, got '0\.1'$"),
    (lambda o: keskar(o, 0.1, method="sphere"), ValueError, r"^method: expected one of 'ball', 'box', got 'sphere'$"),
    (lambda o: keskar(o, 0.1, steps=0), ValueError, r"^steps: expected an integer >= 1, got 0$"),
    (lambda o: keskar(o, 0.1, restarts=-1), ValueError, r"^restarts: expected an integer >= 0, got -1$"),
    (lambda o: two_sided(o, 0.1, steps=-3), ValueError, r"^steps: expected an integer >= 1, got -3$"),
    (lambda o: keskar(o, 0.1, subspace_dim=1), ValueError, r"^subspace_dim: expected None for method='ball'"),
    (
        lambda o: keskar(o, 0.1, method="box", subspace_dim=3),
        ValueError,
        r"^subspace_dim: expected an integer <= 2, got 3$",
    ),
    (lambda o: probe(o, 0.0, 1, 1), ValueError, r"^gamma: expected a finite number > 0, got 0\.0$"),
    (lambda o: probe(o, -0.1, 1, 1), ValueError, r"^gamma: expected a finite number > 0, got -0\.1$"),
    (lambda o: probe(o, 0.1, -1, 1), ValueError, r"^n_descent: expected an integer >= 0, got -1$"),
    (lambda o: probe(o, 0.1, 1, -2), ValueError, r"^n_ascent: expected an integer >= 0, got -2$"),
    (lambda o: probe(o, 0.1, 1.5, 1), TypeError, r"^n_descent: expected an integer, got 1\.5$"),
    (
        lambda o: probe(o, 0.1, 1, 1, params={"theta": torch.zeros(3)}),
        ValueError,
        r"^params\['theta'\]: expected shape \(2,\), got shape \(3,\)$",
    ),
    (lambda o: probe("model", 0.1, 1, 1), TypeError, r"^obj: expected a basinscope.Objective, got str$"),
]


@pytest.mark.parametrize(("call", "exc", "message"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_messages(call, exc, message):
    with pytest.raises(exc, match=message):
        call(_quad())


def _nan_beyond(radius):
    """½‖θ‖², NaN once ‖θ‖ > radius: a loss that becomes non-finite part-way through a walk."""

    def fn(t):
        v = 0.5 * (t**2).sum()
        return torch.where(t.norm() > radius, torch.full_like(v, float("nan")), v)

    return fn


@pytest.mark.parametrize(
    "call",
    [
        lambda o: keskar(o, 1.0),
        lambda o: keskar(o, 1.0, method="box", steps=5),
        lambda o: two_sided(o, 1.0),
        lambda o: probe(o, 0.1, 1, 5),
    ],
    ids=["keskar-ball", "keskar-box", "two-sided", "probe"],
)
def test_loss_that_becomes_nan_midway_raises(call):
    obj = Objective.from_function(_nan_beyond(0.35), torch.tensor([0.2, 0.1], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^loss: expected a finite value, got nan$"):
        call(obj)


class _NanAfter:
    """cross-entropy that returns NaN from the ``n``-th call on (a network diverging during the estimate)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, out, y):
        self.calls += 1
        loss = F.cross_entropy(out, y)
        return loss * float("nan") if self.calls >= self.n else loss


@pytest.mark.parametrize(
    "call",
    [
        lambda o: keskar(o, 0.05, steps=6),
        lambda o: keskar(o, 0.05, method="box", steps=6),
        lambda o: two_sided(o, 0.05, steps=6),
        lambda o: probe(o, 0.05, 3, 3),
    ],
    ids=["keskar-ball", "keskar-box", "two-sided", "probe"],
)
@pytest.mark.parametrize("check_finite", [True, False])
def test_model_unchanged_after_an_error_midway(call, check_finite):
    model = tiny_bn_net()
    model.train()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    obj = Objective(model, _NanAfter(4), tiny_data(10), check_finite=check_finite)
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"^loss: expected a finite value, got nan$"):
        call(obj)
    assert_same_state(before, snapshot(model))
