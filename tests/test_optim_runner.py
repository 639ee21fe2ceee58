"""The equal-budget runner: gradient-call accounting, history, checkpoints and bit-identical resume."""

from __future__ import annotations

import pytest
import torch

from basinscope.optim import METHODS, train

from .conftest import tiny_bn_net


def _data(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (n,), generator=g)


def _net(seed=0, dropout=0.0):
    return tiny_bn_net(seed=seed, dropout=dropout)


class _Kill(Exception):
    pass


def _killer(at):
    def cb(it, info):
        if it == at:
            raise _Kill

    return cb


RESUME_CASES = [
    ("swa", dict(swa_start=0.5, c=3)),
    ("dswa", dict(swa_start=0.25, c=2, swa_lr_min=0.005)),
    ("salr-sgd", dict(c=2, n_descent=2, n_ascent=2, gamma=0.01)),
    ("entropy-sgd-salr", dict(c=2, n_descent=1, n_ascent=1, langevin_steps=2, noise=1e-3)),
]


@pytest.mark.parametrize(("method", "opts"), RESUME_CASES, ids=[m for m, _ in RESUME_CASES])
def test_resume_equals_uninterrupted(tmp_path, method, opts):
    x, y = _data()
    full = _net(dropout=0.2)
    ref = train(method, full, (x, y), budget=48, batch_size=8, progress=False, seed=3, **opts)
    ckpt = tmp_path / "run.pt"
    model = _net(dropout=0.2)
    with pytest.raises(_Kill):
        train(
            method,
            model,
            (x, y),
            budget=48,
            batch_size=8,
            progress=False,
            seed=3,
            checkpoint=ckpt,
            checkpoint_every=4,
            callback=_killer((3 * ref.iterations) // 4 + 1),
            **opts,
        )
    torch.manual_seed(12345)  # a different global RNG state must not matter
    fresh = _net(seed=9, dropout=0.2)  # the weights come from the checkpoint
    res = train(method, fresh, (x, y), budget=48, batch_size=8, progress=False, seed=3, checkpoint=ckpt, **opts)
    for (n, a), (_, b) in zip(full.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), n
    assert res.iterations == ref.iterations and res.grad_calls == ref.grad_calls
    for k in ref.history:
        assert torch.equal(ref.history[k], res.history[k]) or torch.allclose(
            ref.history[k], res.history[k], equal_nan=True, rtol=0, atol=0
        ), k
    assert len(res.samples) == len(ref.samples)
    state = torch.load(ckpt, weights_only=True)
    assert state["iteration"] == ref.iterations


@pytest.mark.parametrize("method", METHODS)
def test_budget_and_history(method):
    x, y = _data()
    res = train(method, _net(), (x, y), budget=30, batch_size=8, progress=False, test_data=(x, y))
    h = res.history
    assert res.grad_calls <= 30
    assert all(h[k].shape[0] == res.iterations for k in ("loss", "lr", "sharpness", "grad_calls"))
    assert int(h["grad_calls"][-1]) == res.grad_calls
    per = {"sam": 2, "entropy-sgd": 5}.get(method, 1)
    rounds = {"swa": 1, "dswa": 2, "tswa": 3}.get(method)
    if rounds is not None:  # half the budget pre-SWA, the rest split into whole rounds (leftover unused)
        assert res.iterations == 15 + rounds * (15 // rounds)
        assert len(res.round_averages) == rounds
    if method in ("sgd", "adam", "swa", "dswa", "tswa", "sam", "entropy-sgd"):
        assert rounds is not None or res.iterations == 30 // per
        assert torch.isnan(h["sharpness"]).all()
    else:  # SALR: 1 (+ L) per step, + n_descent + n_ascent on every c-th
        assert not torch.isnan(h["sharpness"][0]) and torch.isnan(h["sharpness"][1])
    assert 0.0 <= res.test["error"] <= 1.0


def test_salr_cost_accounting_matches_formula():
    x, y = _data()
    res = train("salr-sgd", _net(), (x, y), budget=100, batch_size=8, progress=False, c=3, n_descent=2, n_ascent=1)
    k = res.iterations
    spent = k + 3 * ((k + 2) // 3)  # 1 per step, +3 on k = 0, 3, 6, …
    assert res.grad_calls == spent and spent <= 100 < spent + 1 + (3 if k % 3 == 0 else 0)


def test_eval_every_and_save(tmp_path):
    x, y = _data()
    res = train(
        "sgd",
        _net(),
        (x, y),
        budget=12,
        batch_size=8,
        progress=False,
        test_data=(x, y),
        eval_every=4,
        schedule="pre_swa",
    )
    assert res.history["test_iteration"].tolist() == [4, 8, 12]
    assert res.history["lr"][0] == 0.05 and res.history["lr"][-1] == pytest.approx(0.0005)
    res.save(tmp_path / "r")
    back = type(res).load(tmp_path / "r")
    assert torch.equal(back.history["loss"], res.history["loss"])


def test_resume_with_other_settings_is_refused(tmp_path):
    x, y = _data()
    ckpt = tmp_path / "c.pt"
    train("sgd", _net(), (x, y), budget=8, batch_size=8, progress=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"checkpoint: expected a checkpoint of the same run \(method 'sgd'"):
        train("sgd", _net(), (x, y), budget=8, batch_size=8, progress=False, checkpoint=ckpt, lr=0.2)


@pytest.mark.parametrize(
    ("method", "kwargs", "match"),
    [
        ("newton", {}, r"method: expected one of 'sgd', 'adam'"),
        ("sgd", dict(budget=0), r"budget: expected an integer >= 1, got 0"),
        ("sgd", dict(lr=-0.1), r"lr: expected a finite number >= 0, got -0.1"),
        ("salr-sgd", dict(c=0), r"c: expected an integer >= 1, got 0"),
        ("salr-sgd", dict(gamma=0.0), r"gamma: expected a finite number > 0, got 0.0"),
        ("sam", dict(rho=-1.0), r"rho: expected a finite number > 0, got -1.0"),
        ("swa", dict(c=0), r"c: expected an integer >= 1, got 0"),
        ("swa", dict(swa_start=1.0), r"swa_start: expected a fraction of the budget in \[0, 1\), got 1.0"),
        ("tswa", dict(budget=6, c=4), r"budget: expected at least c=4 SWA iterations per round"),
        ("sgd", dict(rho=0.1), r"options of 'sgd': expected names among"),
    ],
    ids=["method", "budget", "lr", "c", "gamma", "rho", "swa-c", "swa-start", "swa-budget", "unknown"],
)
def test_bad_arguments(method, kwargs, match):
    args = dict(budget=20, batch_size=8, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train(method, _net(), _data(), **args)


def _same_params(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_samples_streamed_to_disk_equal_the_in_memory_ones(tmp_path):
    from basinscope.results import ParamFiles

    x, y = _data()
    opts = dict(budget=48, batch_size=8, progress=False, seed=3, swa_start=0.25, c=2)
    mem = train("dswa", _net(), (x, y), **opts)
    disk = train("dswa", _net(), (x, y), samples_dir=tmp_path / "s", **opts)
    assert isinstance(disk.samples, ParamFiles) and isinstance(disk.round_averages, ParamFiles)
    assert len(disk.samples) == len(mem.samples) == 18 and len(disk.round_averages) == 2
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [f"round_{i}.pt" for i in range(2)] + [
        f"sample_{i:05d}.pt" for i in range(18)
    ]
    for a, b in zip(mem.samples, disk.samples):
        assert _same_params(a, b)
    for a, b in zip(mem.round_averages, disk.round_averages):
        assert _same_params(a, b)
    assert disk.sample_rounds == mem.sample_rounds
    # the saved result keeps the file references and loads them lazily
    disk.save(tmp_path / "res")
    back = type(disk).load(tmp_path / "res")
    assert back.samples == disk.samples and _same_params(back.samples[-1], mem.samples[-1])
    assert len(back.samples[2:5]) == 3


def test_disk_samples_resume_equals_uninterrupted(tmp_path):
    x, y = _data()
    opts = dict(budget=48, batch_size=8, progress=False, seed=3, swa_start=0.25, c=2)
    ref = train("dswa", _net(), (x, y), **opts)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(_Kill):  # killed 3 iterations after a checkpoint: samples past it get rewritten
        train(
            "dswa",
            _net(),
            (x, y),
            checkpoint=ckpt,
            checkpoint_every=8,
            samples_dir=tmp_path / "s",
            callback=_killer(35),
            **opts,
        )
    state = torch.load(ckpt, weights_only=True)
    assert state["iteration"] == 32 and isinstance(state["samples"], int)
    res = train("dswa", _net(seed=5), (x, y), checkpoint=ckpt, samples_dir=tmp_path / "s", **opts)
    assert len(res.samples) == len(ref.samples)
    for a, b in zip(ref.samples, res.samples):
        assert _same_params(a, b)
    for a, b in zip(ref.round_averages, res.round_averages):
        assert _same_params(a, b)
    # a sample file gone missing is reported on resume
    (tmp_path / "s" / "sample_00003.pt").unlink()
    with pytest.raises(ValueError, match="samples_dir: expected the sample files written before the checkpoint"):
        train("dswa", _net(), (x, y), checkpoint=ckpt, samples_dir=tmp_path / "s", **opts)


def test_stale_sample_temporaries_are_removed_when_a_run_starts(tmp_path):
    """A run killed inside an atomic write leaves ``.sample_NNNNN.pt.<random>.tmp``; the next run on the folder
    removes those (and round ones), and nothing else."""
    x, y = _data()
    folder = tmp_path / "s"
    folder.mkdir()
    stale = [folder / ".sample_00002.pt.k3j2_x.tmp", folder / ".round_0.pt.ab12cd.tmp"]
    kept = [folder / "notes.txt", folder / ".other.pt.ab12cd.tmp", folder / "sample_00009.pt.tmp"]
    for f in stale + kept:
        f.write_bytes(b"half-written")
    res = train("swa", _net(), (x, y), budget=16, batch_size=8, progress=False, seed=3, c=2, samples_dir=folder)
    assert len(res.samples) > 0 and all(not f.exists() for f in stale)
    assert all(f.read_bytes() == b"half-written" for f in kept)
    assert sorted(folder.glob(".*.tmp")) == [folder / ".other.pt.ab12cd.tmp"]


def test_samples_dir_errors(tmp_path):
    x, y = _data()
    with pytest.raises(ValueError, match=r"samples_dir: expected None for method 'sgd' \(only SWA methods"):
        train("sgd", _net(), (x, y), budget=4, batch_size=8, progress=False, samples_dir=tmp_path)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match=r"samples_dir: expected a directory path, got '.*file' \(an existing file\)"):
        train("swa", _net(), (x, y), budget=4, batch_size=8, progress=False, samples_dir=f, c=1)
    with pytest.raises(TypeError, match="samples_dir: expected a directory path, got int"):
        train("swa", _net(), (x, y), budget=4, batch_size=8, progress=False, samples_dir=3, c=1)


def test_history_plot_plotly(tmp_path):
    x, y = _data()
    res = train("salr-sgd", _net(), (x, y), budget=20, batch_size=8, progress=False, c=2, n_descent=1, n_ascent=1)
    fig = res.plot(backend="plotly", path=tmp_path / "h.html")
    assert [t.mode for t in fig.data] == ["lines", "lines", "markers"]
    sharp = fig.data[2]
    finite = torch.isfinite(res.history["sharpness"])
    assert len(sharp.x) == int(finite.sum()) and list(sharp.x) == torch.nonzero(finite)[:, 0].tolist()
    html = (tmp_path / "h.html").read_text()
    assert "<html>" in html[:100] and "plotly" in html
    png = tmp_path / "h.png"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    png.symlink_to(victim)  # replaced, its target untouched
    res.plot(path=png)
    assert png.stat().st_size > 0 and not png.is_symlink() and victim.read_text() == "precious"
    with pytest.raises(ValueError, match="backend: expected one of 'matplotlib', 'plotly', got 'bokeh'"):
        res.plot(backend="bokeh")


def test_entropy_sgd_outer_rate_drops_by_the_factor_every_epochs():
    """SALR paper §VI-A: Entropy-SGD's outer rate 1 "drops by a factor of 5 every four epochs" (an epoch: one
    outer step per minibatch). 40 examples in batches of 8: 5 outer steps per epoch, so a drop every 10 at 2."""
    x, y = _data()
    res = train("entropy-sgd", _net(), (x, y), budget=5 * 23, batch_size=8, progress=False, seed=3,
                lr=1.0, lr_drop_every=2, lr_drop_factor=5.0, langevin_steps=5)  # fmt: skip
    expected = [1.0 / 5.0 ** (i // 10) for i in range(23)]  # by hand: 1 for steps 0–9, 0.2 for 10–19, 0.04 after
    assert res.iterations == 23 and res.history["lr"].tolist() == pytest.approx(expected, rel=1e-12)
    const = train("entropy-sgd", _net(), (x, y), budget=5 * 23, batch_size=8, progress=False, seed=3, lr=1.0)
    assert const.history["lr"].tolist() == [1.0] * 23  # the default keeps the rate (lr_drop_every=None)
    assert res.history["lr"][:10].tolist() == const.history["lr"][:10].tolist()


def test_entropy_sgd_rate_drop_resumes_bit_identically(tmp_path):
    x, y = _data()
    opts = dict(lr=0.5, lr_drop_every=1, lr_drop_factor=2.0, langevin_steps=2, noise=1e-3)
    full = _net(dropout=0.2)
    ref = train("entropy-sgd", full, (x, y), budget=48, batch_size=8, progress=False, seed=3, **opts)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(_Kill):
        train("entropy-sgd", _net(dropout=0.2), (x, y), budget=48, batch_size=8, progress=False, seed=3,
              checkpoint=ckpt, checkpoint_every=3, callback=_killer(13), **opts)  # fmt: skip
    fresh = _net(seed=9, dropout=0.2)
    res = train("entropy-sgd", fresh, (x, y), budget=48, batch_size=8, progress=False, seed=3, checkpoint=ckpt, **opts)
    for (n, a), (_, b) in zip(full.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), n
    assert torch.equal(res.history["lr"], ref.history["lr"]) and len(set(ref.history["lr"].tolist())) == 5


def test_entropy_sgd_rate_drop_errors():
    x, y = _data()
    for kwargs, match in [
        (dict(lr_drop_every=0), r"^lr_drop_every: expected"),
        (dict(lr_drop_every=1.5), r"^lr_drop_every: expected"),
        (dict(lr_drop_every=2, lr_drop_factor=0.0), r"^lr_drop_factor: expected"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            train("entropy-sgd", _net(), (x, y), budget=20, batch_size=8, progress=False, **kwargs)

    class Endless:  # re-iterable without len(): an epoch is unknown
        def __iter__(self):
            return iter([(x[:8], y[:8])] * 100)

    endless = Endless()
    with pytest.raises(ValueError, match=r"^lr_drop_every: expected a train_data with len\(\)"):
        train("entropy-sgd", _net(), endless, budget=20, batch_size=8, progress=False, lr_drop_every=1)
    with pytest.raises(ValueError, match=r"options of 'entropy-sgd-salr'"):  # SALR sets that rate itself
        train("entropy-sgd-salr", _net(), (x, y), budget=20, batch_size=8, progress=False, lr_drop_every=1)


def test_entropy_sgd_checkpoint_from_before_the_drop_resumes(tmp_path):
    """A checkpoint written before the drop options existed (its settings lack them) resumes as a constant rate."""
    x, y = _data()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(_Kill):
        train("entropy-sgd", _net(), (x, y), budget=40, batch_size=8, progress=False, seed=3, checkpoint=ckpt,
              checkpoint_every=2, callback=_killer(5))  # fmt: skip
    state = torch.load(ckpt, weights_only=True)
    for k in ("lr_drop_every", "lr_drop_factor"):
        del state["settings"][k]
    torch.save(state, ckpt)
    ref = train("entropy-sgd", _net(), (x, y), budget=40, batch_size=8, progress=False, seed=3)
    res = train("entropy-sgd", _net(), (x, y), budget=40, batch_size=8, progress=False, seed=3, checkpoint=ckpt)
    assert torch.equal(res.history["lr"], ref.history["lr"]) and res.iterations == ref.iterations
