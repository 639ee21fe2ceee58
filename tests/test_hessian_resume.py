"""Interrupted spectrum computations (top eigenvalues, density, trace) resume from their checkpoint to the
identical result; foreign checkpoints are refused."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from basinscope.hessian import HessianOperator, density, top_eigenvalues, trace
from basinscope.objective import Objective

from .conftest import assert_same_state, snapshot
from .test_hessian_helpers import data, objective, tiny_bn_mlp


class _Stop(Exception):
    pass


def _interrupt_after(monkeypatch, calls: int) -> None:
    """Make the operator raise on its (calls+1)-th product call, as a killed process would stop."""
    real = HessianOperator.matmat
    count = {"n": 0}

    def matmat(self, vectors):
        count["n"] += 1
        if count["n"] > calls:
            raise _Stop
        return real(self, vectors)

    monkeypatch.setattr(HessianOperator, "matmat", matmat)


@pytest.fixture
def problem():
    model = tiny_bn_mlp()
    x, y = data()
    return model, x, y


@pytest.mark.parametrize("n_batches", [1, 2], ids=["cached", "stream"])
def test_top_eigenvalues_resume_equals_uninterrupted(problem, tmp_path, monkeypatch, n_batches):
    model, x, y = problem
    full = top_eigenvalues(objective(model, x, y, n_batches=n_batches), k=3)
    ckpt = tmp_path / "eig.pt"
    before = snapshot(model)
    with monkeypatch.context() as m:
        _interrupt_after(m, 7)
        with pytest.raises(_Stop):
            top_eigenvalues(objective(model, x, y, n_batches=n_batches), k=3, checkpoint=ckpt, checkpoint_every=3)
    assert_same_state(before, snapshot(model))
    assert ckpt.is_file()
    resumed = top_eigenvalues(objective(model, x, y, n_batches=n_batches), k=3, checkpoint=ckpt, checkpoint_every=3)
    assert resumed.eigenvalues == full.eigenvalues
    assert resumed.residuals == full.residuals and resumed.iterations == full.iterations
    for a, b in zip(resumed.eigenvectors, full.eigenvectors):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # saved after product 6 (every 3 steps): the resumed call repeats product 7 and does the rest
    assert resumed.cost.hvps == full.cost.hvps - 6
    # the finished state is kept: calling again costs no product and gives the same result
    again = top_eigenvalues(objective(model, x, y, n_batches=n_batches), k=3, checkpoint=ckpt)
    assert again.eigenvalues == full.eigenvalues and again.cost.hvps == 0


def test_density_resume_equals_uninterrupted(problem, tmp_path, monkeypatch):
    model, x, y = problem
    kw = dict(n_runs=3, n_iter=12, seed=4)
    full = density(objective(model, x, y, n_batches=2), **kw)
    ckpt = tmp_path / "slq.pt"
    with monkeypatch.context() as m:
        _interrupt_after(m, 5)
        with pytest.raises(_Stop):
            density(objective(model, x, y, n_batches=2), checkpoint=ckpt, checkpoint_every=2, **kw)
    resumed = density(objective(model, x, y, n_batches=2), checkpoint=ckpt, checkpoint_every=2, **kw)
    assert torch.equal(resumed.nodes, full.nodes) and torch.equal(resumed.weights, full.weights)
    assert torch.equal(resumed.density, full.density) and torch.equal(resumed.grid, full.grid)
    assert resumed.cost.hvps == full.cost.hvps - 4 * 3  # 4 steps of 3 runs were saved


@pytest.mark.parametrize(
    ("method", "n", "block", "every", "calls", "saved"),
    [("hutchinson", 20, 4, 2, 3, 8), ("hutch++", 21, 3, 1, 5, 13)],
    ids=["hutchinson", "hutch++"],
)
def test_trace_resume_equals_uninterrupted(problem, tmp_path, monkeypatch, method, n, block, every, calls, saved):
    model, x, y = problem
    kw = dict(method=method, n_samples=n, block_size=block, seed=2)
    full = trace(objective(model, x, y, n_batches=2), **kw)
    ckpt = tmp_path / "tr.pt"
    with monkeypatch.context() as m:
        _interrupt_after(m, calls)
        with pytest.raises(_Stop):
            trace(objective(model, x, y, n_batches=2), checkpoint=ckpt, checkpoint_every=every, **kw)
    resumed = trace(objective(model, x, y, n_batches=2), checkpoint=ckpt, checkpoint_every=every, **kw)
    assert resumed.value == full.value and resumed.standard_error == full.standard_error
    assert torch.equal(resumed.samples, full.samples)
    assert resumed.cost.hvps == full.cost.hvps - saved


def test_truncated_checkpoint_is_a_one_line_error_and_left_alone(problem, tmp_path):
    model, x, y = problem
    ckpt = tmp_path / "eig.pt"
    top_eigenvalues(objective(model, x, y), k=2, checkpoint=ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    saved = ckpt.read_bytes()
    with pytest.raises(ValueError, match=r"^checkpoint: .*eig\.pt.*truncated") as info:
        top_eigenvalues(objective(model, x, y), k=2, checkpoint=ckpt)
    assert "\n" not in str(info.value)
    assert ckpt.read_bytes() == saved


def test_foreign_checkpoint_is_refused_and_left_alone(problem, tmp_path):
    model, x, y = problem
    ckpt = tmp_path / "eig.pt"
    top_eigenvalues(objective(model, x, y), k=2, checkpoint=ckpt)
    saved = ckpt.read_bytes()
    match = (
        r"checkpoint: expected a checkpoint of this computation \(same settings, point, buffers, data, loss and "
        r"mode\), got '.*eig\.pt', written by another computation \(other settings or coordinates\) "
        r"\(remove it to start afresh\)$"
    )
    with pytest.raises(ValueError, match=match):
        top_eigenvalues(objective(model, x, y), k=2, seed=1, checkpoint=ckpt)
    with pytest.raises(ValueError, match=match):
        density(objective(model, x, y), n_iter=5, checkpoint=ckpt)
    with pytest.raises(ValueError, match=match):
        trace(objective(model, x, y), n_samples=5, checkpoint=ckpt)
    with torch.no_grad():
        model[0].weight.add_(0.01)  # another point
    with pytest.raises(ValueError, match=r"got '.*eig\.pt', written at another point θ \(remove it"):
        top_eigenvalues(objective(model, x, y), k=2, checkpoint=ckpt)
    assert ckpt.read_bytes() == saved


def _smoothed(outputs, targets):
    return F.cross_entropy(outputs, targets, label_smoothing=0.1)


@pytest.mark.parametrize(
    ("change", "written"),
    [
        ("data", r"with other data"),
        ("targets", r"with other data"),
        ("batching", r"with other data"),
        ("loss_function", r"with another loss function"),
        ("loss_module_setting", r"with another loss function"),
        ("loss_partial_argument", r"with another loss function"),
        ("mode", r"in another mode \(mode='eval', this objective has mode='train'\)"),
        ("buffers", r"with other model buffers"),
    ],
)
@pytest.mark.parametrize("kind", ["eigen", "density", "trace"])
def test_checkpoint_of_other_data_loss_or_mode_is_refused(problem, tmp_path, change, written, kind):
    """Same settings, same point, same number of samples: only the data, the loss or the mode differ."""
    model, x, y = problem
    losses = {
        "loss_function": (F.cross_entropy, _smoothed),
        "loss_module_setting": (torch.nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(label_smoothing=0.1)),
        "loss_partial_argument": (
            functools.partial(F.cross_entropy, label_smoothing=0.0),
            functools.partial(F.cross_entropy, label_smoothing=0.1),
        ),
    }
    first_loss, second_loss = losses.get(change, (F.cross_entropy, F.cross_entropy))
    first = Objective(model, first_loss, (x, y))
    if change == "data":
        x2 = x.clone()
        x2[3, 1] += 1e-6  # one input entry
        second = Objective(model, second_loss, (x2, y))
    elif change == "targets":
        second = Objective(model, second_loss, (x, (y + 1) % 3))
    elif change == "batching":
        second = Objective(model, second_loss, [(x[::2], y[::2]), (x[1::2], y[1::2])])
    elif change == "mode":
        second = Objective(model, second_loss, (x, y), mode="train")
    else:
        second = Objective(model, second_loss, (x, y))
    run = {
        "eigen": lambda obj: top_eigenvalues(obj, k=2, graph="stream", checkpoint=ckpt),
        "density": lambda obj: density(obj, n_iter=6, graph="stream", checkpoint=ckpt),
        "trace": lambda obj: trace(obj, n_samples=4, graph="stream", checkpoint=ckpt),
    }[kind]
    ckpt = tmp_path / "spectrum.pt"
    run(first)
    saved = ckpt.read_bytes()
    if change == "buffers":
        with torch.no_grad():
            model[1].running_var.mul_(1.5)
    before = snapshot(model)
    with pytest.raises(ValueError, match=rf"^checkpoint: expected .*, got '.*spectrum\.pt', written {written} \("):
        run(second)
    assert ckpt.read_bytes() == saved
    assert_same_state(before, snapshot(model))
    # the same inputs in other tensor objects (a copy of the data, a new loss object) resume
    if change not in ("buffers",):
        again = Objective(model, losses.get(change, (F.cross_entropy,))[0], (x.clone(), y.clone()))
        assert run(again).cost.hvps == 0


def test_loss_identity_is_content_not_address():
    from basinscope.hessian._fingerprint import callable_identity
    from basinscope.surface.store import fingerprint

    def digest(fn):
        return fingerprint(loss=callable_identity(fn))

    assert digest(torch.nn.CrossEntropyLoss()) == digest(torch.nn.CrossEntropyLoss())
    assert digest(torch.nn.CrossEntropyLoss(weight=torch.ones(3))) != digest(
        torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 1.0]))
    )
    assert digest(functools.partial(_smoothed)) == digest(functools.partial(_smoothed))
    assert digest(F.cross_entropy) != digest(F.nll_loss)
    assert "0x" not in repr(callable_identity(lambda o, t: F.cross_entropy(o, t)))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"method": "power", "checkpoint": "c.pt"}, ValueError, r"checkpoint: expected None unless method='lanczos'"),
        ({"checkpoint": "c.pt", "checkpoint_every": 0}, ValueError, r"checkpoint_every: expected an integer >= 1"),
        ({"checkpoint": 3}, TypeError, r"checkpoint: expected a file path, got 3"),
        ({"checkpoint": "."}, ValueError, r"checkpoint: expected a file path, got '\.' \(a directory\)"),
    ],
    ids=["power", "every", "type", "directory"],
)
def test_bad_checkpoint_arguments(problem, kwargs, exc, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, x, y = problem
    with pytest.raises(exc, match=match):
        top_eigenvalues(objective(model, x, y), k=1, **kwargs)
    assert not (tmp_path / "c.pt").exists()
