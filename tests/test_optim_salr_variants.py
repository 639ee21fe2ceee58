"""SALR's two update rules (variant="paper" / "released") against an independent plain float64 loop.

The reference below is written from the rules' text (docs/optimizers.md, "SALR as released"), not from the
package: autograd on a deep copy of the model for every walk step, per-example gradients by a Python loop,
``numpy.median``/``numpy.percentile`` for the rate, SGD and Adam updates written out.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from basinscope.objective import Objective
from basinscope.optim import SALR, SGD, SGDSALR, AdamSALR, SALRRule
from basinscope.sharpness import clamped_walk_probe
from basinscope.sharpness.clamped_walk import clamped_walk_kernel

from .conftest import tiny_bn_net
from .test_optim_salr import _closure

STEPS = 20
EPOCH = 4  # batches per epoch: the loop puts the model in train mode at every epoch start


def _batches(device="cpu"):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(EPOCH * 8, 3, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 2, (EPOCH * 8,), generator=g)
    return [(x[i : i + 8].to(device), y[i : i + 8].to(device)) for i in range(0, EPOCH * 8, 8)]


def _params(model):
    return [p for p in model.parameters() if p.requires_grad]


def _ref_loss(probe, x, y):
    return F.cross_entropy(probe(x), y)


def _ref_released_walk(model, x, y, walk_lr, walk_clamp, n_ascent, n_descent):
    """Ŝ and the end point θ⁺⁻ of the released script's walk, on an eval-mode copy of ``model``."""
    probe = copy.deepcopy(model).eval()
    with torch.no_grad():
        f0 = _ref_loss(probe, x, y).item()
    ps = _params(probe)
    for sign, n in ((1.0, n_ascent), (-1.0, n_descent)):
        total = [torch.zeros_like(p) for p in ps]  # the sum restarts for each walk
        for _ in range(n):
            grads = torch.autograd.grad(_ref_loss(probe, x, y), ps)
            with torch.no_grad():
                for p, t, g in zip(ps, total, grads):
                    t += g
                    p += sign * (walk_lr * t).clamp(-walk_clamp, walk_clamp)
        with torch.no_grad():
            if sign > 0:
                f_high = _ref_loss(probe, x, y).item()
            else:
                f_low = _ref_loss(probe, x, y).item()
    return (f_high - f0) + (f_high - f_low), [p.detach().clone() for p in ps]


def _ref_paper_probe(model, x, y, gamma, n_descent, n_ascent):
    """Ŝ = f(θ₊) − f(θ₋) of Algorithm 2 (per-example normalized steps from θ) and θ₋, on eval-mode copies."""
    ends, values = {}, {}
    for sign, n in ((-1.0, n_descent), (1.0, n_ascent)):
        probe = copy.deepcopy(model).eval()
        ps = _params(probe)
        for _ in range(n):
            d = [torch.zeros_like(p) for p in ps]
            for j in range(x.shape[0]):
                g = torch.autograd.grad(_ref_loss(probe, x[j : j + 1], y[j : j + 1]), ps)
                norm = math.sqrt(sum(float((t * t).sum()) for t in g))
                for dk, gk in zip(d, g):
                    dk += gk / norm / x.shape[0]
            with torch.no_grad():
                for p, dk in zip(ps, d):
                    p += sign * gamma * dk
        with torch.no_grad():
            values[sign] = _ref_loss(probe, x, y).item()
        ends[sign] = [p.detach().clone() for p in ps]
    return values[1.0] - values[-1.0], ends[-1.0]


def _ref_ratio(history, s, variant, band=(49, 51), min_ratio=None, max_ratio=None):
    if variant == "paper":
        med = float(np.median(history))
        ratio = s / med if med > 0 else 1.0
        lo, hi = (0.0 if min_ratio is None else min_ratio), (math.inf if max_ratio is None else max_ratio)
    else:
        p_lo, p50, p_hi = np.percentile(history, [band[0], 50, band[1]])
        ratio = s / p50 if (s > p_hi or s < p_lo) else 1.0
        lo, hi = (-math.inf if min_ratio is None else min_ratio), (5.0 if max_ratio is None else max_ratio)
    return min(max(ratio, lo), hi)


def _reference_run(model, batches, *, variant, lr, opt, restore_walk, probe_eval_mode, c=2, probe=None):
    """The plain loop: returns the rates the steps used (the model is trained in place)."""
    probe = probe or {}
    ps = _params(model)
    restore = (variant == "paper") if restore_walk is None else restore_walk
    history, ratio, used = [], 1.0, []
    m = [torch.zeros_like(p) for p in ps]
    v = [torch.zeros_like(p) for p in ps]
    b1, b2, eps = 0.9, 0.999, 1e-8

    def probe_and_rate(x, y):
        nonlocal ratio
        if variant == "paper":
            s, end = _ref_paper_probe(model, x, y, probe["gamma"], probe["n_descent"], probe["n_ascent"])
        else:
            s, end = _ref_released_walk(model, x, y, 1e-3, 5e-4, 5, 5)
        if not restore:
            with torch.no_grad():
                for p, e in zip(ps, end):
                    p.copy_(e)
        if probe_eval_mode:
            model.eval()
        history.append(s)
        ratio = _ref_ratio(history, s, variant)

    def sgd_or_adam_step(x, y, k, rate):
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), ps)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(ps, grads)):
                if opt == "sgd":
                    p -= rate * g
                else:
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    m_hat, v_hat = m[i] / (1 - b1 ** (k + 1)), v[i] / (1 - b2 ** (k + 1))
                    p -= rate * m_hat / (v_hat.sqrt() + eps)

    for k in range(STEPS):
        if k % EPOCH == 0:
            model.train()
        x, y = batches[k % EPOCH]
        measuring = k % c == 0
        if variant == "paper" and measuring:
            probe_and_rate(x, y)
        used.append(lr * ratio)
        sgd_or_adam_step(x, y, k, lr * ratio)
        if variant == "released" and measuring:
            probe_and_rate(x, y)
    return used


def _package_run(model, batches, *, variant, lr, opt, restore_walk, probe_eval_mode, probe=None):
    cls = SGDSALR if opt == "sgd" else AdamSALR
    salr = cls(
        model,
        F.cross_entropy,
        lr=lr,
        c=2,
        variant=variant,
        restore_walk=restore_walk,
        probe_eval_mode=probe_eval_mode,
        **(probe or {}),
    )
    used = []
    for k in range(STEPS):
        if k % EPOCH == 0:
            model.train()
        x, y = batches[k % EPOCH]
        salr.step(_closure(salr, model, x, y), batch=(x, y))
        used.append(float(salr.step_lr))
    return used, salr


PAPER_PROBE = dict(gamma=0.05, n_descent=2, n_ascent=3)
CASES = [
    ("paper-sgd", dict(variant="paper", opt="sgd", restore_walk=None, probe_eval_mode=False, probe=PAPER_PROBE)),
    (
        "paper-sgd-walk-kept",
        dict(variant="paper", opt="sgd", restore_walk=False, probe_eval_mode=False, probe=PAPER_PROBE),
    ),
    (
        "paper-sgd-eval-mode",
        dict(variant="paper", opt="sgd", restore_walk=None, probe_eval_mode=True, probe=PAPER_PROBE),
    ),
    ("paper-adam", dict(variant="paper", opt="adam", restore_walk=None, probe_eval_mode=False, probe=PAPER_PROBE)),
    ("released-sgd", dict(variant="released", opt="sgd", restore_walk=None, probe_eval_mode=False)),
    ("released-sgd-walk-undone", dict(variant="released", opt="sgd", restore_walk=True, probe_eval_mode=False)),
    ("released-sgd-eval-mode", dict(variant="released", opt="sgd", restore_walk=None, probe_eval_mode=True)),
    ("released-adam", dict(variant="released", opt="adam", restore_walk=None, probe_eval_mode=False)),
    ("released-adam-undone-eval-mode", dict(variant="released", opt="adam", restore_walk=True, probe_eval_mode=True)),
]


def _lr(case):
    return 0.2 if case["opt"] == "sgd" else 0.01


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[n for n, _ in CASES])
def test_variants_equal_an_independent_plain_loop(case, device):
    """20 steps on fixed batches (BatchNorm + dropout, seeded masks): weights, buffers, rates within 1e-10."""
    batches = _batches(device)
    ours, ref = tiny_bn_net(seed=3, dropout=0.3, device=device), tiny_bn_net(seed=3, dropout=0.3, device=device)
    torch.manual_seed(11)
    used, salr = _package_run(ours, batches, lr=_lr(case), **case)
    torch.manual_seed(11)
    used_ref = _reference_run(ref, batches, lr=_lr(case), **case)
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=name)
    np.testing.assert_allclose(used, used_ref, rtol=1e-10, atol=0)
    assert len(set(np.round(used, 12))) > 2, "the rate must vary for the comparison to mean something"
    assert ours.training == ref.training
    assert salr.probe_gradient_calls == (STEPS // 2) * (salr.n_descent + salr.n_ascent)


def _final_weights(case, device="cpu"):
    model = tiny_bn_net(seed=3, dropout=0.3, device=device)
    torch.manual_seed(11)
    _package_run(model, _batches(device), lr=_lr(case), **case)
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("paper-sgd", "paper-sgd-walk-kept"),
        ("paper-sgd", "paper-sgd-eval-mode"),
        ("released-sgd", "released-sgd-walk-undone"),
        ("released-sgd", "released-sgd-eval-mode"),
        ("paper-sgd", "released-sgd"),
    ],
    ids=["paper-restore", "paper-eval", "released-restore", "released-eval", "paper-vs-released"],
)
def test_each_option_changes_the_run(a, b):
    """The options the plain-loop test covers are not no-ops on this problem (so that test can fail)."""
    cases = dict(CASES)
    assert (_final_weights(cases[a]) - _final_weights(cases[b])).abs().max() > 1e-5


def test_released_walk_leaves_the_model_untouched_and_matches_the_reference():
    model = tiny_bn_net(seed=4, dropout=0.3)
    model.train()
    x, y = _batches()[0]
    before = copy.deepcopy(model.state_dict())
    params = dict(model.named_parameters())
    out = clamped_walk_kernel(
        model, F.cross_entropy, params, x, y, walk_lr=1e-3, walk_clamp=5e-4, n_ascent=5, n_descent=5
    )
    value, end = _ref_released_walk(model, x, y, 1e-3, 5e-4, 5, 5)
    assert float(out.value) == pytest.approx(value, rel=1e-12)
    for a, b in zip(out.point_low.values(), end):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-15)
    assert float(out.f_high) > float(out.f0) and float(out.f_low) < float(out.f_high)
    assert model.training and all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_released_rule_equals_numpy_percentiles():
    """The band rule against numpy.percentile on a sequence with values inside and outside the band,
    one above the cap and a negative one (no lower bound: a negative rate, as the released script)."""
    seq = [0.5, 0.7, 0.6, 0.6, 9.0, 0.2, 0.61, -0.3, 0.65, 0.4]
    rule = SALRRule(band=(49, 51), min_ratio=-math.inf, max_ratio=5.0)
    got = [float(rule.update(torch.tensor(s, dtype=torch.float64))) for s in seq]
    want = [_ref_ratio(seq[: i + 1], s, "released") for i, s in enumerate(seq)]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    assert 5.0 in got and min(got) < 0 and got.count(1.0) >= 3


def test_released_salr_state_dict_round_trip():
    batches = _batches()
    a, b = tiny_bn_net(seed=6), tiny_bn_net(seed=6)
    opt = AdamSALR(a, F.cross_entropy, lr=0.01, variant="released", probe_eval_mode=True)

    def run(o, model, k0, k1):
        for k in range(k0, k1):
            x, y = batches[k % EPOCH]
            o.step(_closure(o, model, x, y), batch=(x, y))

    run(opt, a, 0, 5)
    state = copy.deepcopy(opt.state_dict())
    b.load_state_dict(a.state_dict())
    b.train(a.training)
    twin = AdamSALR(b, F.cross_entropy, lr=0.01, variant="released", probe_eval_mode=True)
    twin.load_state_dict(state)
    run(opt, a, 5, 11)
    run(twin, b, 5, 11)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
    assert torch.equal(opt.rule.values(), twin.rule.values())
    paper = AdamSALR(tiny_bn_net(seed=6), F.cross_entropy, lr=0.01)
    with pytest.raises(ValueError, match=r"^state: expected the state of a variant='paper' SALR, got a variant="):
        paper.load_state_dict(state)


def test_released_step_order_and_rate_timing():
    """The step uses the rate set by the previous probe; a probe with a single Ŝ keeps η₀."""
    model = tiny_bn_net(seed=1)
    opt = SGDSALR(model, F.cross_entropy, lr=0.1, variant="released", c=1)
    x, y = _batches()[0]
    start = [p.detach().clone() for p in model.parameters()]

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure, batch=(x, y))
    assert float(opt.step_lr) == 0.1 and float(opt.lr) == 0.1  # one Ŝ: inside its own band
    moved = max(float((p.detach() - s).abs().max()) for p, s in zip(model.parameters(), start))
    assert moved > 0
    opt.step(closure, batch=(x, y))
    assert float(opt.step_lr) == 0.1  # the second step still used the first probe's rate
    assert float(opt.lr) != 0.1  # ... and its own probe set the next one


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(variant="adam"), r"^variant: expected one of 'paper', 'released', got 'adam'$"),
        (dict(variant="released", walk_lr=0.0), r"^walk_lr: expected a finite number > 0, got 0.0$"),
        (dict(variant="released", walk_lr=-1e-3), r"^walk_lr: expected a finite number > 0, got -0.001$"),
        (
            dict(variant="released", walk_clamp=0.0),
            r"^walk_clamp: expected a number > 0 \(inf for no clamp\), got 0.0$",
        ),
        (dict(variant="released", walk_clamp=float("nan")), r"^walk_clamp: expected a number > 0"),
        (dict(variant="released", band=(51, 49)), r"^band: expected two percentiles \(low, high\) with 0 <= low <= 50"),
        (dict(variant="released", band=(49,)), r"^band: expected two percentiles .*, got tuple of length 1$"),
        (dict(variant="released", max_ratio=-1.0, min_ratio=0.0), r"^max_ratio: expected a number > min_ratio=0.0"),
        (
            dict(variant="released", min_ratio=float("nan")),
            r"^min_ratio: expected a number \(-inf for no lower bound\)",
        ),
        (dict(variant="released", n_descent=0, n_ascent=0), r"^n_descent \+ n_ascent: expected at least one step"),
        (dict(variant="released", gamma=0.01), r"^gamma: expected None with variant='released' \(only variant='paper'"),
        (dict(variant="released", normalize="batch"), r"^normalize: expected None with variant='released'"),
        (dict(walk_lr=1e-3), r"^walk_lr: expected None with variant='paper' \(only variant='released' uses it\)"),
        (dict(band=(49, 51)), r"^band: expected None with variant='paper'"),
        (dict(min_ratio=-math.inf), r"^min_ratio: expected a finite number >= 0, got -inf$"),
        (dict(restore_walk="yes"), r"^restore_walk: expected True, False or None \(the variant's default\), got str$"),
        (dict(probe_eval_mode=1), r"^probe_eval_mode: expected True or False, got int$"),
    ],
    ids=[
        "variant",
        "walk-lr-0",
        "walk-lr-neg",
        "walk-clamp-0",
        "walk-clamp-nan",
        "band-order",
        "band-length",
        "max-ratio",
        "min-ratio-nan",
        "no-steps",
        "gamma-released",
        "normalize-released",
        "walk-lr-paper",
        "band-paper",
        "min-ratio-paper",
        "restore-walk",
        "probe-eval-mode",
    ],
)
def test_bad_variant_options_rejected_in_one_line(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match) as err:
        SGDSALR(tiny_bn_net(), F.cross_entropy, lr=0.1, **kwargs)
    assert "\n" not in str(err.value)


def test_probe_eval_mode_needs_a_model():
    with pytest.raises(ValueError, match=r"^probe_eval_mode: expected False when no model is given"):
        SALR(SGD(tiny_bn_net().parameters(), lr=0.1), probe_eval_mode=True)


@pytest.mark.parametrize(
    ("clamp", "theta_high", "theta_low", "value"),
    [
        # hand-computed on f = θ²/2 from θ = 1, α = 0.1: ascent G = 1, 2.1 → θ⁺ = 1.31; descent D = 1.31, 2.489
        # (the sum restarts) → θ⁺⁻ = 0.9301; Ŝ = (0.85805 − 0.5) + (0.85805 − 0.432543005)
        (math.inf, 1.31, 0.9301, 0.783556995),
        # every move clamped to 0.05: θ⁺ = 1.1, θ⁺⁻ = 1.0, Ŝ = 2·(0.605 − 0.5)
        (0.05, 1.1, 1.0, 0.21),
    ],
    ids=["no-clamp", "clamped"],
)
def test_clamped_walk_probe_on_a_quadratic(clamp, theta_high, theta_low, value):
    obj = Objective.from_function(lambda t: 0.5 * t * t, torch.tensor(1.0, dtype=torch.float64))
    r = clamped_walk_probe(obj, walk_lr=0.1, walk_clamp=clamp, n_ascent=2, n_descent=2)
    assert r.kind == "clamped_walk_probe" and r.f0 == pytest.approx(0.5, rel=1e-15)
    assert float(r.point_high["theta"]) == pytest.approx(theta_high, rel=1e-14)
    assert float(r.point_low["theta"]) == pytest.approx(theta_low, rel=1e-14)
    assert r.value == pytest.approx(value, rel=1e-13)
    assert obj.cost.gradients == 4 and obj.cost.forwards == 1


def test_clamped_walk_probe_on_a_model_equals_the_reference_and_touches_nothing():
    model = tiny_bn_net(seed=4, dropout=0.3)
    x, y = _batches()[1]
    obj = Objective(model, F.cross_entropy, (x, y))
    before = copy.deepcopy(model.state_dict())
    r = clamped_walk_probe(obj, batch=(x, y))
    value, end = _ref_released_walk(model, x, y, 1e-3, 5e-4, 5, 5)
    assert r.value == pytest.approx(value, rel=1e-12)
    for a, b in zip(r.point_low.values(), end):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-15)
    assert r.settings == dict(walk_lr=1e-3, walk_clamp=5e-4, n_ascent=5, n_descent=5, batch_size=8)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(walk_lr=0.0), r"^walk_lr: expected a finite number > 0, got 0.0$"),
        (dict(walk_clamp=-1.0), r"^walk_clamp: expected a number > 0 \(inf for no clamp\), got -1.0$"),
        (dict(n_ascent=-1), r"^n_ascent: expected an integer >= 0, got -1$"),
        (dict(n_ascent=0, n_descent=0), r"^n_descent \+ n_ascent: expected at least one step, got 0$"),
        (dict(batch=3), r"^batch: expected an index in \[0, 0\] or an \(inputs, targets\) pair, got 3$"),
    ],
    ids=["walk-lr", "walk-clamp", "n-ascent", "no-steps", "batch"],
)
def test_clamped_walk_probe_rejects_bad_settings(kwargs, match):
    obj = Objective(tiny_bn_net(), F.cross_entropy, _batches()[0])
    with pytest.raises(ValueError, match=match):
        clamped_walk_probe(obj, **kwargs)


def test_released_measuring_step_without_a_batch_fails_before_stepping():
    model = tiny_bn_net()
    before = copy.deepcopy(model.state_dict())
    opt = SGDSALR(model, F.cross_entropy, lr=0.1, variant="released")
    x, y = _batches()[0]
    with pytest.raises(
        ValueError, match=r"^batch: expected the minibatch \(inputs, targets\) on a measuring iteration"
    ):
        opt.step(_closure(opt, model, x, y))
    assert opt.iteration == 0 and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_released_walk_left_in_weights_is_refused_with_distributed():
    # each rank walks on its own part of the minibatch: a walk kept in the weights would set the ranks apart
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"^restore_walk: expected True with distributed=True .* got False$"):
        SGDSALR(model, torch.nn.functional.cross_entropy, lr=0.1, variant="released", distributed=True)
    opt = SGDSALR(
        model, torch.nn.functional.cross_entropy, lr=0.1, variant="released", restore_walk=True, distributed=True
    )
    assert opt.distributed and opt.restore_walk
