"""Bad input through the Python API: one-line errors naming the argument, the model left untouched.

The table of these cases is docs/errors.md; each row has a case here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from basinscope import Objective, hessian, sharpness
from basinscope.diagnose import diagnose, diagnose_checkpoint
from basinscope.optim import train
from basinscope.workflows import surface_run, train_run
from tests.conftest import assert_same_state, snapshot


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def _data(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


X, Y = _data()

CASES = [
    pytest.param(
        lambda o, y: F.cross_entropy(o, y, reduction="none"),
        (X, Y),
        ValueError,
        r"^loss_fn: expected loss_fn\(outputs, targets\) to return a 0-d floating-point tensor .*got a tensor of "
        r"shape \(16,\) \(use reduction='mean'",
        id="loss-reduction-none",
    ),
    pytest.param(
        lambda o, y: 1.0, (X, Y), TypeError, r"^loss_fn: expected .*0-d .*got a float \(1\.0\)", id="loss-float"
    ),
    pytest.param(
        lambda o, y: torch.tensor(1),
        (X, Y),
        TypeError,
        r"^loss_fn: expected .*0-d floating-point.*got a tensor of dtype torch\.int64",
        id="loss-int-tensor",
    ),
    pytest.param(
        F.cross_entropy,
        (X, Y + 1),
        ValueError,
        r"^data: expected class-index targets in \[0, 2\] for a model with 3 outputs, got targets from 1 to 3",
        id="labels-out-of-range",
    ),
    pytest.param(
        F.cross_entropy,
        (X, Y - 1),
        ValueError,
        r"^data: expected class-index targets in \[0, 2\].*got targets from -1 to 1",
        id="labels-negative",
    ),
    pytest.param(
        F.cross_entropy,
        (X, torch.where(Y == 0, torch.full_like(Y, -100), Y)),
        ValueError,
        r"^data: expected class-index targets in \[0, 2\].*from -100",
        id="labels-ignore-index",
    ),
    pytest.param(
        F.cross_entropy,
        (X, Y.float()),
        ValueError,
        r"^loss_fn: expected loss_fn\(outputs, targets\) to accept outputs \(16, 3\) float32 and targets \(16,\) "
        r"float32, got RuntimeError: .*class-index targets must be an integer tensor \(y\.long\(\)\)",
        id="labels-1d-float",
    ),
    pytest.param(
        F.cross_entropy,
        (X[:, :3], Y),
        ValueError,
        r"^data: expected inputs the model accepts, got inputs of shape \(16, 3\) float32 \(RuntimeError: ",
        id="inputs-feature-size",
    ),
    pytest.param(
        F.cross_entropy,
        ((X * 10).long(), Y),
        ValueError,
        r"^data: expected inputs the model accepts, got inputs of shape \(16, 4\) int64 .*convert with x\.float\(\)",
        id="inputs-dtype",
    ),
]


@pytest.mark.parametrize(("loss_fn", "data", "exc", "match"), CASES)
@pytest.mark.parametrize("cache", [True, False], ids=["cached", "streamed"])
def test_objective_bad_input_names_the_argument(loss_fn, data, exc, match, cache):
    model = _net()
    before = snapshot(model)
    obj = Objective(model, loss_fn, [data] if not cache else data, cache=cache)
    for evaluate in (obj.loss, obj.grad, obj.evaluate):
        with pytest.raises(exc, match=match) as info:
            evaluate()
        assert "\n" not in str(info.value)
    assert_same_state(before, snapshot(model))


@pytest.mark.parametrize(
    "run",
    [
        pytest.param(lambda o: o.grad(), id="grad"),
        pytest.param(lambda o: sharpness.keskar(o, 1e-2, steps=2, progress=False), id="keskar"),
        pytest.param(lambda o: sharpness.probe(o, 1e-2, 1, 1), id="probe"),
        pytest.param(lambda o: hessian.top_eigenvalues(o, k=1, max_iter=3, progress=False), id="top_eigenvalues"),
        pytest.param(lambda o: o.hvp(o.point()), id="hvp"),
        pytest.param(lambda o: o.per_example_grads(), id="per_example_grads"),
    ],
)
def test_vector_loss_is_named_by_every_measurement(run):
    model = _net()
    before = snapshot(model)
    obj = Objective(model, lambda o, y: F.cross_entropy(o, y, reduction="none"), (X, Y))
    with pytest.raises(ValueError, match=r"^loss_fn: expected .*0-d floating-point tensor .*shape \(16,\)"):
        run(obj)
    assert_same_state(before, snapshot(model))


def test_per_example_grads_checks_its_batch():
    obj = Objective(_net(), F.cross_entropy, (X, Y + 1))
    with pytest.raises(ValueError, match=r"^batch: expected class-index targets in \[0, 2\]"):
        obj.per_example_grads()


def test_checks_run_once_per_data_set(monkeypatch):
    """The targets' range (the one host synchronization) is checked on the first pass only."""
    import basinscope.objective as objective_module

    calls = []
    real = objective_module.check_class_targets
    monkeypatch.setattr(objective_module, "check_class_targets", lambda *a, **k: calls.append(1) or real(*a, **k))
    batches = [_data(8), _data(8)]
    obj = Objective(_net(), F.cross_entropy, batches)
    first = obj.loss()
    for _ in range(3):
        obj.loss()
        obj.grad()
    assert len(calls) == 1  # all cached batches at once, then never again
    assert torch.equal(obj.loss(), first)
    streamed = Objective(_net(), F.cross_entropy, batches, cache=False)
    streamed.loss()
    streamed.loss()
    assert len(calls) == 1 + 2  # per batch on the first pass of streamed data, then never again


def test_good_input_passes_the_checks_unchanged():
    """Valid targets at the edges of the range (0 and C-1) and the plain mean loss are accepted."""
    y = torch.arange(16) % 3
    obj = Objective(_net(), F.cross_entropy, (X, y))
    model = _net()
    with torch.no_grad():
        want = F.cross_entropy(model(X), y)
    torch.testing.assert_close(obj.loss(), want)


@pytest.mark.parametrize(
    ("device", "exc", "match"),
    [
        pytest.param(
            "cdua", ValueError, r"^device: expected a torch device such as 'cpu' or 'cuda:0', got 'cdua'", id="typo"
        ),
        pytest.param(3.5, TypeError, r"^device: expected a torch device .*got 3\.5", id="float"),
        pytest.param(
            "cuda:99",
            ValueError,
            r"^device: expected (a device available on this machine|cuda:0 to cuda:\d+ on this machine)",
            id="cuda-index",
        ),
    ],
)
def test_objective_device_is_checked(device, exc, match):
    with pytest.raises(exc, match=match):
        Objective(_net(), F.cross_entropy, (X, Y), device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_named():
    with pytest.raises(ValueError, match=r"^device: expected a device available on this machine \(torch\.cuda"):
        Objective(_net(), F.cross_entropy, (X, Y), device="cuda")


@pytest.mark.parametrize(
    ("loss_fn", "y", "exc", "match"),
    [
        pytest.param(
            F.cross_entropy, Y + 1, ValueError, r"^train_data: expected class-index targets in \[0, 2\]", id="labels"
        ),
        pytest.param(
            lambda o, y: F.cross_entropy(o, y, reduction="none"),
            Y,
            ValueError,
            r"^loss_fn: expected .*0-d floating-point tensor",
            id="vector-loss",
        ),
        pytest.param(F.cross_entropy, Y.float(), ValueError, r"^loss_fn: .*y\.long\(\)", id="float-labels"),
    ],
)
def test_train_checks_its_first_batch(loss_fn, y, exc, match):
    model = _net()
    before = snapshot(model)
    with pytest.raises(exc, match=match):
        train("sgd", model, (X, y), budget=4, batch_size=8, loss_fn=loss_fn, progress=False)
    assert_same_state(before, snapshot(model))


def test_train_inputs_of_wrong_size_are_named():
    with pytest.raises(
        ValueError, match=r"^train_data: expected inputs the model accepts, got inputs of shape \(8, 5\)"
    ):
        train("sgd", _net(), (torch.randn(16, 5), Y), budget=4, batch_size=8, progress=False)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda tmp, d: train_run("sgd", "mlp", "mnist1d", out_dir=tmp, device=d), id="train_run"),
        pytest.param(
            lambda tmp, d: surface_run("random", [tmp / "w.pt"], "mlp", "mnist1d", out_dir=tmp, device=d),
            id="surface_run",
        ),
        pytest.param(
            lambda tmp, d: diagnose_checkpoint(tmp / "w.pt", "mlp", "mnist1d", out_dir=tmp, device=d),
            id="diagnose_checkpoint",
        ),
        pytest.param(lambda tmp, d: diagnose(_net(), (X, Y), device=d), id="diagnose"),
    ],
)
def test_workflow_device_is_checked_before_any_work(tmp_path, call):
    with pytest.raises(ValueError, match=r"^device: expected a torch device such as 'cpu' or 'cuda:0', got 'cdua'"):
        call(tmp_path, "cdua")
    assert not list(tmp_path.iterdir())  # nothing written


def test_single_output_models_with_integer_targets_are_left_to_the_loss():
    """One output and 0/1 targets (a custom binary loss) is not a class-index layout: no range check."""
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    y = torch.arange(16) % 2

    def loss(o, t):
        return F.binary_cross_entropy_with_logits(o[:, 0], t.float())

    obj = Objective(model, loss, (X, y))
    with torch.no_grad():
        want = loss(model(X), y)
    torch.testing.assert_close(obj.loss(), want)
