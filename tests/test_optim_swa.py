"""SWA / DSWA / TSWA (SWA Revisited, Algorithms 1–3): averaging vs a hand computation and AveragedModel."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, update_bn

from basinscope.optim import WeightAverager, chc_lr, dswa, recompute_bn_, swa, swa_rounds, tswa

from .conftest import tiny_bn_net


def _mlp(seed=0, device="cpu"):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).double().to(device)


def _data(n=40, seed=1, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (n,), generator=g)
    return x.to(device), y.to(device)


def test_weight_averager_equals_hand_mean_and_averaged_model():
    torch.manual_seed(0)
    model = _mlp()
    ref = AveragedModel(model)
    avg = WeightAverager()
    samples = []
    for _ in range(9):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ref.update_parameters(model)
        avg.update(dict(model.named_parameters()))
        samples.append([p.detach().clone() for p in model.parameters()])
    for j, (name, p) in enumerate(ref.module.named_parameters()):
        assert torch.equal(avg.average[name], p)  # same formula, same rounding (CPU)
        hand = sum(s[j] for s in samples) / len(samples)
        torch.testing.assert_close(avg.average[name], hand, rtol=1e-14, atol=1e-15)
    assert avg.n == 9


def _hand_swa_rounds(model, x, y, *, k, n, c, lr, lr_min, batch_size, seed):
    """Algorithms 1–3 written out with torch.optim.SGD and the runner's data order."""
    gen = torch.Generator().manual_seed(seed)
    state = {"perm": None, "pos": 0}

    def batch():
        if state["perm"] is None or state["pos"] >= len(x):
            state["perm"] = torch.randperm(len(x), generator=gen)
            state["pos"] = 0
        idx = state["perm"][state["pos"] : state["pos"] + batch_size]
        state["pos"] += batch_size
        return x[idx], y[idx]

    samples, averages = [], []
    for _ in range(k):
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        round_samples = []
        for i in range(1, n // k + 1):
            for g in opt.param_groups:
                g["lr"] = chc_lr(i, high=lr, low=lr_min, cycle=c)
            xb, yb = batch()
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            if i % c == 0:
                round_samples.append([p.detach().clone() for p in model.parameters()])
        mean = [sum(s[j] for s in round_samples) / len(round_samples) for j in range(len(round_samples[0]))]
        with torch.no_grad():
            for p, m in zip(model.parameters(), mean):
                p.copy_(m)
        samples += round_samples
        averages.append(mean)
    return samples, averages


@pytest.mark.parametrize(("k", "lr_min"), [(1, None), (2, 0.01), (3, None)], ids=["swa", "dswa-cyclic", "tswa"])
def test_swa_rounds_equal_hand_algorithm(k, lr_min, device):
    x, y = _data(device=device)
    model, ref = _mlp(device=device), _mlp(device=device)
    res = swa_rounds(model, (x, y), k=k, n=12 * k, c=3, lr=0.1, lr_min=lr_min, batch_size=8, progress=False)
    samples, averages = _hand_swa_rounds(ref, x, y, k=k, n=12 * k, c=3, lr=0.1, lr_min=lr_min, batch_size=8, seed=0)
    assert len(res.samples) == len(samples) == 4 * k
    assert res.sample_rounds == [r for r in range(k) for _ in range(4)]
    names = [n for n, _ in model.named_parameters()]
    for got, want in zip(res.samples, samples):
        for name, w in zip(names, want):
            torch.testing.assert_close(got[name].to(w.device), w, rtol=1e-13, atol=1e-14)  # samples: CPU
    for got, want in zip(res.round_averages, averages):
        for name, w in zip(names, want):
            torch.testing.assert_close(got[name].to(w.device), w, rtol=1e-13, atol=1e-14)  # samples: CPU
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-13, atol=1e-14)
    # the final weights are exactly AveragedModel over the last round's samples
    am = AveragedModel(_mlp(device=device))
    holder = _mlp(device=device)
    for s, r in zip(res.samples, res.sample_rounds):
        if r == k - 1:
            holder.load_state_dict(s)
            am.update_parameters(holder)
    for p, q in zip(model.parameters(), am.module.parameters()):
        assert torch.equal(p, q)
    assert res.grad_calls == 12 * k and res.iterations == 12 * k


def test_k1_equals_swa_and_named_entry_points(device):
    x, y = _data(device=device)
    a, b = _mlp(device=device), _mlp(device=device)
    ra = swa(a, (x, y), n=12, c=4, lr=0.05, batch_size=8, progress=False)
    rb = swa_rounds(b, (x, y), k=1, n=12, c=4, lr=0.05, batch_size=8, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert len(ra.samples) == len(rb.samples) == 3
    assert len(dswa(_mlp(device=device), (x, y), n=12, c=3, batch_size=8, progress=False).round_averages) == 2
    assert len(tswa(_mlp(device=device), (x, y), n=12, c=2, batch_size=8, progress=False).round_averages) == 3


def test_bn_recompute_equals_update_bn_with_short_last_batch():
    model = tiny_bn_net()
    x, y = _data(n=23)
    batches = [(x[i : i + 5], y[i : i + 5]) for i in range(0, 23, 5)]  # last batch: 3 examples
    ref = copy.deepcopy(model)
    update_bn([b[0] for b in batches], ref)
    recompute_bn_(model, F.cross_entropy, batches)
    for (n, a), (_, b) in zip(model.named_buffers(), ref.named_buffers()):
        assert torch.equal(a, b), n


def test_swa_with_bn_recomputes_statistics_for_the_average():
    x, y = _data(n=24)
    model = tiny_bn_net()
    swa(model, (x, y), n=9, c=3, lr=0.05, batch_size=8, progress=False)
    ref = copy.deepcopy(model)
    update_bn([x[i : i + 8] for i in range(0, 24, 8)], ref)
    for (n, a), (_, b) in zip(model.named_buffers(), ref.named_buffers()):
        assert torch.equal(a, b), n


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(k=3, n=10, c=1), r"n: expected a multiple of k=3 \(n/k iterations per round\), got 10"),
        (dict(k=2, n=10, c=0), r"c: expected an integer >= 1, got 0"),
        (dict(k=2, n=10, c=-1), r"c: expected an integer >= 1, got -1"),
        (dict(k=2, n=10, c=6), r"c: expected a cycle length <= n/k=5 \(at least one sample per round\), got 6"),
        (dict(k=0, n=10, c=1), r"k: expected an integer >= 1, got 0"),
        (dict(k=1, n=10, c=2, lr=-0.1), r"swa_lr: expected a finite number > 0, got -0.1"),
    ],
    ids=["n-not-divisible", "c0", "c-neg", "c-too-long", "k0", "lr-neg"],
)
def test_bad_swa_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        swa_rounds(_mlp(), _data(), progress=False, **kwargs)


def test_surfaces_through_swa_points_warn_without_bn_data_for_batchnorm_models():
    """Averaged weights need their own BatchNorm statistics (update_bn): plane/line through given points of a
    BatchNorm model warn when bn_data is left at None; True (recompute) and False (explicit) do not."""
    import warnings

    import torch.nn.functional as F

    from basinscope import Objective
    from basinscope.surface import line, plane

    from .conftest import tiny_bn_net, tiny_data

    x, y = tiny_data(12)
    net = tiny_bn_net()
    obj = Objective(net, F.cross_entropy, (x, y))
    w1 = obj.point()
    w2 = {k: v + 0.1 for k, v in w1.items()}
    w3 = {k: v * 1.1 for k, v in w1.items()}
    with pytest.warns(UserWarning, match=r"^bn_data: the model has BatchNorm layers and bn_data=None"):
        line(obj, w1, w2, ts=[0.0, 1.0], progress=False)
    with pytest.warns(UserWarning, match=r"^bn_data: the model has BatchNorm layers"):
        plane(obj, w1, w2, w3, resolution=3, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        line(obj, w1, w2, ts=[0.0, 1.0], progress=False, bn_data=True)
        line(obj, w1, w2, ts=[0.0, 1.0], progress=False, bn_data=False)
        plain = Objective(torch.nn.Linear(3, 2).double(), F.cross_entropy, (x, y))
        p1 = plain.point()
        line(plain, p1, {k: v + 1 for k, v in p1.items()}, ts=[0.0, 1.0], progress=False)
