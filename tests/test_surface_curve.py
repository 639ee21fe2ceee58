"""Mode-connecting curves: parametrizations against closed forms, the bend's gradient and SGD steps against a plain
autograd loop, values along both paths against independent evaluations (``update_bn`` for BatchNorm), barriers by
hand, bit-identical resume, the model untouched, one-line errors, and the curve's barrier below the line's for two
MLPs trained from different seeds on MNIST-1D."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from basinscope.objective import Objective
from basinscope.optim.schedules import pre_swa_lr
from basinscope.surface import (
    CurveResult,
    barrier_height,
    curve,
    curve_coefficients,
    curve_point,
    evaluate_curve,
    fit_curve,
    line,
)

from .conftest import assert_same_state, snapshot, tiny_bn_net, tiny_data


def _net(seed: int = 0, device="cpu") -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).double().to(device)


def _ends(model: nn.Module, seed: int = 5) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    a = {k: v.detach().clone() for k, v in model.named_parameters()}
    b = {k: v + 0.7 * torch.randn(v.shape, generator=g, dtype=v.dtype).to(v.device) for k, v in a.items()}
    return a, b


# ---------------------------------------------------------------------------------------------- parametrization
@pytest.mark.parametrize("t", [0.0, 0.1, 0.25, 0.5, 0.6, 0.9, 1.0])
def test_coefficients_match_the_closed_forms(t):
    assert curve_coefficients("bezier", t) == pytest.approx(((1 - t) ** 2, 2 * t * (1 - t), t**2), abs=1e-15)
    chain = (1 - 2 * t, 2 * t, 0.0) if t <= 0.5 else (0.0, 2 - 2 * t, 2 * t - 1)
    assert curve_coefficients("polychain", t) == pytest.approx(chain, abs=1e-15)
    for kind in ("bezier", "polychain"):
        assert sum(curve_coefficients(kind, t)) == pytest.approx(1.0, abs=1e-15)


def test_curve_points_are_the_formulas_of_the_paper():
    g = torch.Generator().manual_seed(0)
    w1, th, w2 = ({"w": torch.randn(4, 3, generator=g, dtype=torch.float64)} for _ in range(3))
    for t in np.linspace(0, 1, 11):
        bez = (1 - t) ** 2 * w1["w"] + 2 * t * (1 - t) * th["w"] + t**2 * w2["w"]
        assert torch.allclose(curve_point("bezier", t, w1, th, w2)["w"], bez, rtol=0, atol=1e-14)
        chain = 2 * (t * th["w"] + (0.5 - t) * w1["w"]) if t <= 0.5 else 2 * ((t - 0.5) * w2["w"] + (1 - t) * th["w"])
        assert torch.allclose(curve_point("polychain", t, w1, th, w2)["w"], chain, rtol=0, atol=1e-14)
    assert torch.equal(curve_point("polychain", 0.5, w1, th, w2)["w"], th["w"])  # the chain's corner is the bend
    # the Bézier curve's tangent at the ends points at the bend: φ'(0) = 2(θ − w1)
    h = 1e-6
    tangent = (curve_point("bezier", h, w1, th, w2)["w"] - w1["w"]) / h
    assert torch.allclose(tangent, 2 * (th["w"] - w1["w"]), atol=1e-5)


# ---------------------------------------------------------------------------------------------- the fit
def _reference_fit(model, x, y, w1, w2, kind, steps, lr, momentum, wd, seed, train=True):
    """Plain loop: autograd through φ_θ(t) = c1 w1 + cθ θ + c2 w2, full batch, SGD with momentum by hand."""
    ts = torch.rand(steps, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    bend = {k: (0.5 * (w1[k] + w2[k])).clone() for k in w1}
    buf = None
    bufs = {k: v.clone() for k, v in model.named_buffers()}
    model = copy.deepcopy(model).train(train)
    losses = []
    for k in range(steps):
        t = float(ts[k])
        leaf = {n: v.clone().requires_grad_(True) for n, v in bend.items()}
        if kind == "bezier":
            c1, cb, c2 = (1 - t) ** 2, 2 * t * (1 - t), t * t
        else:
            c1, cb, c2 = (1 - 2 * t, 2 * t, 0.0) if t <= 0.5 else (0.0, 2 - 2 * t, 2 * t - 1)
        point = {n: c1 * w1[n] + cb * leaf[n] + c2 * w2[n] for n in leaf}
        loss = F.cross_entropy(functional_call(model, {**{n: b.clone() for n, b in bufs.items()}, **point}, (x,)), y)
        total = loss + 0.5 * wd * sum((p**2).sum() for p in point.values())
        grads = torch.autograd.grad(total, list(leaf.values()))
        eta = pre_swa_lr(k, steps, high=lr, low=0.01 * lr)
        buf = list(grads) if buf is None else [momentum * b + g for b, g in zip(buf, grads)]
        bend = {n: (bend[n] - eta * b).detach() for n, b in zip(leaf, buf)}
        losses.append(float(loss.detach()))
    return bend, losses


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
@pytest.mark.parametrize("bn", [False, True], ids=["mlp", "batchnorm"])
def test_fit_matches_a_plain_autograd_loop(kind, bn, device):
    model = tiny_bn_net(0, device=device) if bn else _net(0, device)
    x, y = tiny_data(12, device=device)
    obj = Objective(model, F.cross_entropy, (x, y))
    w1, w2 = _ends(model)
    before = snapshot(model)
    rng = torch.get_rng_state()
    fit = fit_curve(
        obj, w1, w2, kind=kind, steps=6, batch_size=12, lr=0.1, momentum=0.9, weight_decay=0.01, progress=False
    )
    assert_same_state(before, snapshot(model))
    assert torch.equal(rng, torch.get_rng_state())  # the global generator is left as it was
    ref_bend, ref_losses = _reference_fit(model, x, y, w1, w2, kind, 6, 0.1, 0.9, 0.01, 0)
    # full batch: the minibatch is a permutation of the data, so only summation order differs
    assert fit.losses.tolist() == pytest.approx(ref_losses, rel=1e-12)
    for k in ref_bend:
        assert torch.allclose(fit.bend[k], ref_bend[k], rtol=1e-10, atol=1e-12), k
    assert fit.cost.gradients == 6
    assert fit.lrs.tolist() == [pre_swa_lr(k, 6, high=0.1, low=0.001) for k in range(6)]


def test_one_step_gradient_is_the_chain_rule_scaled_gradient():
    """One SGD step without momentum moves the bend by −lr·c_θ(t)·∇L(φ(t)) (∂φ/∂θ = c_θ·I)."""
    model = _net(1)
    x, y = tiny_data(10)
    obj = Objective(model, F.cross_entropy, (x, y))
    w1, w2 = _ends(model, 3)
    fit = fit_curve(obj, w1, w2, steps=1, batch_size=10, lr=0.5, momentum=0.0, seed=4, progress=False)
    t = float(fit.ts[0])
    _, cb, _ = curve_coefficients("bezier", t)
    mid = {k: 0.5 * (w1[k] + w2[k]) for k in w1}
    g = obj.grad(curve_point("bezier", t, w1, mid, w2))
    for k in w1:
        assert torch.allclose(fit.bend[k], mid[k] - 0.5 * cb * g[k], rtol=1e-12, atol=1e-14), k


def test_fit_resumes_bit_identically_with_dropout(tmp_path):
    class Loss:
        """Cross-entropy that can be made to fail at a given call (an interruption)."""

        def __init__(self):
            self.calls, self.fail_at = 0, None

        def __call__(self, out, y):
            self.calls += 1
            if self.fail_at is not None and self.calls == self.fail_at:
                raise KeyboardInterrupt
            return F.cross_entropy(out, y)

    model = tiny_bn_net(2, dropout=0.3)
    x, y = tiny_data(20)
    loss = Loss()
    obj = Objective(model, loss, (x, y))
    w1, w2 = _ends(model, 7)
    kw = {"steps": 11, "batch_size": 6, "lr": 0.05, "seed": 3, "progress": False, "checkpoint_every": 4}
    full = fit_curve(obj, w1, w2, **kw)
    ckpt = tmp_path / "fit.pt"
    loss.fail_at = loss.calls + 7  # dies during step 7: the file holds steps 0..3
    with pytest.raises(KeyboardInterrupt):
        fit_curve(obj, w1, w2, checkpoint=ckpt, **kw)
    loss.fail_at = None
    resumed = fit_curve(obj, w1, w2, checkpoint=ckpt, **kw)
    assert resumed.cost.gradients == 11 - 4
    assert np.array_equal(resumed.losses, full.losses)
    for k in full.bend:
        assert torch.equal(resumed.bend[k], full.bend[k]), k
    with pytest.raises(ValueError, match=r"^checkpoint: expected a curve-fit checkpoint made with the same"):
        fit_curve(obj, w1, w2, checkpoint=ckpt, **{**kw, "lr": 0.06})


# ---------------------------------------------------------------------------------------------- evaluation
def test_barrier_by_hand():
    assert barrier_height([0.0, 0.25, 0.5, 0.75, 1.0], [1.0, 4.0, 2.0, 3.0, 2.0]) == 2.5
    assert barrier_height([1.0, 0.0, 0.5], [3.0, 1.0, 1.5]) == 1.0  # the ends found wherever they are; max at t=1
    with pytest.raises(ValueError, match=r"^ts: expected coordinates that include t = 1"):
        barrier_height([0.0, 0.5], [1.0, 2.0])


def test_paths_match_independent_evaluations_with_batchnorm_recomputed(device):
    model = tiny_bn_net(1, device=device)
    x, y = tiny_data(16, device=device)
    xt, yt = tiny_data(8, seed=9, device=device)
    obj = Objective(model, F.cross_entropy, (x, y))
    test = Objective(model, F.cross_entropy, (xt, yt))
    w1, w2 = _ends(model, 2)
    g = torch.Generator().manual_seed(8)
    bend = {k: v + 0.3 * torch.randn(v.shape, generator=g, dtype=v.dtype).to(device) for k, v in w1.items()}
    before = snapshot(model)
    res = evaluate_curve(obj, w1, bend, w2, kind="polychain", points=5, test=test, progress=False)
    assert_same_state(before, snapshot(model))
    assert res.ts.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    for path, make in (
        ("curve", lambda t: curve_point("polychain", t, w1, bend, w2)),
        ("line", lambda t: {k: (1 - t) * w1[k] + t * w2[k] for k in w1}),
    ):
        for i, t in enumerate(res.ts):
            ref = copy.deepcopy(model)
            with torch.no_grad():
                for n, p in ref.named_parameters():
                    p.copy_(make(float(t))[n])
            torch.optim.swa_utils.update_bn([(x, y)], ref)  # BatchNorm statistics of this point
            ref.eval()
            with torch.no_grad():
                out, out_t = ref(x), ref(xt)
            assert res.curve is not None
            assert res.values(path, "train_loss")[i] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-10)
            err = 1 - float((out_t.argmax(1) == yt).double().mean())
            assert res.values(path, "test_error")[i] == pytest.approx(err, abs=1e-12)
    for path in ("curve", "line"):
        for m, v in getattr(res, path).items():
            assert res.barrier[path][m] == barrier_height(res.ts, v)
    # the line is the existing line surface, evaluated at the same t's
    ref_line = line(obj, w1, w2, ts=res.ts, test=test, bn_data=True, progress=False)
    assert np.allclose(res.values("line", "train_loss"), ref_line.train_loss, rtol=1e-12, atol=0)


def test_curve_resumes_from_its_store_and_saves(tmp_path):
    model = _net(3)
    x, y = tiny_data(24)
    obj = Objective(model, F.cross_entropy, (x, y))
    w1, w2 = _ends(model, 4)
    kw = {"steps": 9, "batch_size": 8, "points": 5, "store": tmp_path / "store", "progress": False}
    first = curve(obj, w1, w2, checkpoint_every=3, **kw)
    assert (tmp_path / "store" / "fit.pt").is_file() and (tmp_path / "store" / "curve").is_dir()
    again = curve(obj, w1, w2, checkpoint_every=3, **kw)
    assert again.cost.forwards == 0 and again.cost.gradients == 0  # everything came from the store
    assert again.curve == first.curve and again.line == first.line and again.barrier == first.barrier
    assert np.array_equal(again.fit_losses, first.fit_losses)
    first.save(tmp_path / "r")
    back = CurveResult.load(tmp_path / "r")
    assert (
        back.curve == first.curve
        and back.barrier == first.barrier
        and torch.equal(back.bend["0.weight"], first.bend["0.weight"])
    )
    import json

    doc = json.loads((tmp_path / "r.json").read_text())["fields"]
    assert {"curve", "line", "barrier"} <= set(doc) and len(doc["curve"]["train_loss"]) == 5


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda o, a, b: curve_coefficients("spline", 0.5), r"^kind: expected one of"),
        (lambda o, a, b: curve_coefficients("bezier", 1.5), r"^t: expected a number in \[0, 1\]"),
        (lambda o, a, b: fit_curve(o, a, b, steps=0), r"^steps: expected"),
        (lambda o, a, b: fit_curve(o, a, b, momentum=1.0), r"^momentum: expected a number in \[0, 1\)"),
        (lambda o, a, b: fit_curve(o, a, {"x": torch.ones(1)}), r"^end: expected"),
        (lambda o, a, b: curve(o, a, b, ts=[0.0, 0.5]), r"^ts: expected coordinates that include both end points"),
        (lambda o, a, b: curve(o, a, b, ts=[0.0, 1.0, 1.5]), r"^ts: expected numbers in \[0, 1\]"),
        (lambda o, a, b: curve(o, a, b, points=1), r"^points: expected"),
        (lambda o, a, b: evaluate_curve(o, a, a, b, kind="arc"), r"^kind: expected one of"),
        (lambda o, a, b: curve(o, a, b, store=3), r"^(store|checkpoint): expected a"),
    ],
    ids=["kind", "t", "steps", "momentum", "end", "ts-ends", "ts-range", "points", "eval-kind", "store"],
)
def test_bad_input_gives_one_line_errors(call, pattern):
    model = _net(0)
    obj = Objective(model, F.cross_entropy, tiny_data(8))
    a, b = _ends(model)
    with pytest.raises((ValueError, TypeError), match=pattern) as e:
        call(obj, a, b)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------- MNIST-1D
def test_curve_barrier_is_below_the_line_barrier_on_mnist1d():
    """Garipov et al.'s finding at a small scale: two MLPs trained from different seeds are joined by a Bézier
    curve of low loss, while the straight line between them crosses a barrier."""
    from basinscope.data import mnist1d
    from basinscope.models import build_model

    data = mnist1d()
    n = 1000
    x, y = data.x_train[:n], data.y_train[:n]

    def train(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        m = build_model("mlp", hidden=(32, 32))
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        g = torch.Generator().manual_seed(seed)
        for _ in range(15):
            order = torch.randperm(n, generator=g)
            for i in range(0, n, 50):
                idx = order[i : i + 50]
                opt.zero_grad()
                F.cross_entropy(m(x[idx]), y[idx]).backward()
                opt.step()
        return m

    m1, m2 = train(0), train(1)
    w1 = {k: v.detach() for k, v in m1.named_parameters()}
    w2 = {k: v.detach() for k, v in m2.named_parameters()}
    obj = Objective(m1, F.cross_entropy, (x, y))
    test = Objective(m1, F.cross_entropy, (data.x_test[:500], data.y_test[:500]))
    res = curve(obj, w1, w2, steps=300, batch_size=50, lr=0.05, points=11, test=test, progress=False)
    bc, bl = res.barrier["curve"], res.barrier["line"]
    assert bl["train_loss"] > 0.3  # the line crosses a barrier ...
    assert bc["train_loss"] < 0.5 * bl["train_loss"]  # ... the curve goes around it
    assert bc["test_error"] < bl["test_error"]
