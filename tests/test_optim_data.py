"""The runner's data paths and guards: DataLoaders (equal to the tensor path, resumable), the data fingerprint
of checkpoints, non-finite losses, and the SALR rate bounds through ``train``/the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from basinscope.cli import main
from basinscope.optim import NonFiniteLossError, train

from .conftest import tiny_bn_net
from .test_cli import DATA, MODEL, assert_one_line_error
from .test_optim_runner import _Kill, _killer


def _data(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (n,), generator=g)


class PermSampler(Sampler):
    """One ``randperm`` per epoch from a seeded generator: the order of the runner's tensor path. (RandomSampler
    draws one extra permutation at the end of each pass, so its second epoch differs.)"""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.generator = n, torch.Generator().manual_seed(seed)

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())

    def __len__(self) -> int:
        return self.n


@pytest.mark.parametrize(("method", "opts"), [("sgd", {}), ("salr-sgd", dict(c=2, n_descent=2, n_ascent=2))])
def test_dataloader_equals_the_tensor_path(method, opts):
    """A DataLoader drawing the runner's own permutation (a sampler on a generator seeded like the runner's)
    gives bit-identical weights and history: one batch per iteration, a new pass per epoch, short last batch."""
    x, y = _data(n=44)  # 44 = 5 batches of 8 + one of 4
    a, b = tiny_bn_net(), tiny_bn_net()
    ref = train(method, a, (x, y), budget=30, batch_size=8, seed=3, progress=False, **opts)
    ds = TensorDataset(x, y)
    loader = DataLoader(ds, batch_size=8, sampler=PermSampler(len(ds), 3))
    res = train(method, b, loader, budget=30, batch_size=8, seed=3, progress=False, **opts)
    assert res.iterations == ref.iterations and res.grad_calls == ref.grad_calls
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert torch.equal(ref.history["loss"], res.history["loss"])


@pytest.mark.parametrize(
    ("method", "opts"), [("sgd", {}), ("swa", dict(swa_start=0.5, c=3)), ("salr-sgd", dict(c=2, n_descent=1))]
)
def test_dataloader_resume_equals_uninterrupted(tmp_path, method, opts):
    """An unseeded shuffling DataLoader (order from torch's global generator, dropout too) resumes to identical
    weights with a *new* DataLoader object: the epoch's RNG states are saved and the epoch is replayed."""

    def loader():
        x, y = _data(n=44)
        return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)

    full = tiny_bn_net(dropout=0.2)
    ref = train(method, full, loader(), budget=40, batch_size=8, seed=3, progress=False, **opts)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(_Kill):
        train(
            method,
            tiny_bn_net(dropout=0.2),
            loader(),
            budget=40,
            batch_size=8,
            seed=3,
            progress=False,
            checkpoint=ckpt,
            checkpoint_every=3,
            callback=_killer(ref.iterations - 5),
            **opts,
        )
    torch.manual_seed(999)
    fresh = tiny_bn_net(seed=5, dropout=0.2)
    res = train(method, fresh, loader(), budget=40, batch_size=8, seed=3, progress=False, checkpoint=ckpt, **opts)
    for k, v in full.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k
    assert torch.equal(ref.history["loss"], res.history["loss"])


def test_dataloader_resume_with_other_data_is_refused(tmp_path):
    x, y = _data(n=44)
    ckpt = tmp_path / "run.pt"
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    with pytest.raises(_Kill):
        train(
            "sgd",
            tiny_bn_net(),
            loader,
            budget=20,
            batch_size=8,
            checkpoint=ckpt,
            checkpoint_every=2,
            progress=False,
            callback=_killer(7),
        )
    other = DataLoader(TensorDataset(x + 1.0, y), batch_size=8, shuffle=True)
    with pytest.raises(ValueError, match=r"^resume: expected train_data that replays the batches 'run.pt' was"):
        train("sgd", tiny_bn_net(), other, budget=20, batch_size=8, checkpoint=ckpt, progress=False)


def test_tensor_resume_with_other_data_is_refused(tmp_path):
    x, y = _data()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(_Kill):
        train(
            "sgd",
            tiny_bn_net(),
            (x, y),
            budget=20,
            batch_size=8,
            checkpoint=ckpt,
            checkpoint_every=2,
            progress=False,
            callback=_killer(3),
        )
    y2 = y.clone()
    y2[0] = 1 - y2[0]  # one label differs
    with pytest.raises(ValueError, match=r"^resume: expected the training data checkpoint 'run.pt' was written with"):
        train("sgd", tiny_bn_net(), (x, y2), budget=20, batch_size=8, checkpoint=ckpt, progress=False)
    # the same data resumes
    train("sgd", tiny_bn_net(), (x.clone(), y.clone()), budget=20, batch_size=8, checkpoint=ckpt, progress=False)


def test_one_shot_iterator_is_refused():
    x, y = _data()
    with pytest.raises(ValueError, match=r"^train_data: expected a re-iterable of \(inputs, targets\) batches"):
        train("sgd", tiny_bn_net(), iter([(x, y)]), budget=4, batch_size=8, progress=False)


def test_swa_with_a_loader_without_len_needs_c():
    x, y = _data()

    class Batches:
        def __iter__(self):
            return iter([(x[:20], y[:20]), (x[20:], y[20:])])

    with pytest.raises(ValueError, match=r"^c: expected a cycle length for a train_data without len\(\)"):
        train("swa", tiny_bn_net(), Batches(), budget=8, batch_size=8, progress=False)
    res = train("swa", tiny_bn_net(), Batches(), budget=8, batch_size=8, progress=False, c=2)
    assert len(res.samples) == 2


def test_diverging_run_raises_and_keeps_a_finite_checkpoint(tmp_path):
    x, y = _data()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(NonFiniteLossError, match=r"^train: the loss became non-finite at iteration \d+ \(lr=1e\+30\)"):
        train(
            "sgd",
            torch.nn.Linear(3, 2).double(),
            (x, y),
            budget=200,
            batch_size=8,
            lr=1e30,
            checkpoint=ckpt,
            checkpoint_every=1,
            progress=False,
            loss_fn=lambda out, _: (out**2).mean(),
        )
    assert issubclass(NonFiniteLossError, RuntimeError) and issubclass(NonFiniteLossError, FloatingPointError)
    state = torch.load(ckpt, weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert torch.isfinite(state["history"]["loss"]).all()


def test_salr_rate_bounds_through_train():
    x, y = _data()
    opts = dict(c=1, n_descent=2, n_ascent=2, gamma=0.05, lr=0.1)
    free = train("salr-sgd", tiny_bn_net(), (x, y), budget=90, batch_size=8, progress=False, **opts)
    lr = free.history["lr"]
    assert lr.max() > 0.12 and lr.min() < 0.08  # the unbounded rate leaves [0.8, 1.2]·η₀ on this run
    res = train(
        "salr-sgd", tiny_bn_net(), (x, y), budget=90, batch_size=8, progress=False, min_ratio=0.8, max_ratio=1.2, **opts
    )
    assert res.settings["max_ratio"] == 1.2 and res.settings["min_ratio"] == 0.8
    lr = res.history["lr"]
    assert lr.max() == pytest.approx(0.12) and lr.min() == pytest.approx(0.08)
    with pytest.raises(ValueError, match=r"^max_ratio: expected a number > min_ratio=2.0 \(inf for no bound\)"):
        train("salr-sgd", tiny_bn_net(), (x, y), budget=9, batch_size=8, progress=False, min_ratio=2.0, max_ratio=1)


CLI = ["--model", MODEL, "--data", DATA, "--budget", "30", "--batch-size", "16", "--no-progress"]


def test_cli_salr_max_ratio_flows_through_opt(capsys, tmp_path):
    code = main(["train", "salr-sgd", *CLI, "--out", str(tmp_path), "--json", "--opt", "c=1,n_descent=1,max_ratio=1.5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["settings"]["max_ratio"] == 1.5
    lrs = json.loads((tmp_path / "history.json").read_text())["lr"]
    assert max(lrs) <= 1.5 * 0.05 + 1e-12


def test_cli_diverging_run_exits_nonzero_with_one_line(capsys, tmp_path):
    code = main(["train", "sgd", *CLI, "--out", str(tmp_path), "--lr", "1e30"])
    _, err = capsys.readouterr()
    assert code == 1
    assert_one_line_error(code, err, r"NonFiniteLossError: train: the loss became non-finite at iteration \d+")


def test_cli_resume_with_other_data_is_refused(capsys, tmp_path):
    assert main(["train", "sgd", *CLI, "--out", str(tmp_path), "--train-samples", "64"]) == 0
    capsys.readouterr()
    code = main(["train", "sgd", *CLI, "--out", str(tmp_path), "--train-samples", "48", "--resume"])
    _, err = capsys.readouterr()
    assert_one_line_error(code, err, r"resume: expected the training data checkpoint 'checkpoint.pt' was written")
