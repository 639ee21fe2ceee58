"""Sharpness estimators ϕ (eq. 1), S (eq. 2) and Ŝ (Definition 1) against closed forms and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from basinscope.objective import Objective
from basinscope.sharpness import SharpnessResult, keskar, probe, two_sided
from basinscope.sharpness.keskar import random_subspace
from tests.conftest import assert_same_state, snapshot, tiny_bn_net, tiny_data

EPS = 0.1


def quadratic(eigenvalues, c=0.0, seed=0):
    """f(θ) = ½ θᵀAθ + c with A = Q diag(λ) Qᵀ (Q a seeded random rotation)."""
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    a = q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T
    return (lambda t: 0.5 * t @ a @ t + c), a, q


# (eigenvalues, constant, relative tolerance after 3 runs of 100 steps: convergence is power-iteration-like, slower
# when the top two eigenvalues are close)
QUADRATICS = [
    pytest.param([3.0, 1.0, 0.5], 0.0, 1e-8, id="3d-gap"),
    pytest.param([3.0, 1.0, 0.5], 0.7, 1e-8, id="3d-gap-shifted"),
    pytest.param([2.0, 1.8, 0.3, 0.1], 0.2, 1e-4, id="4d-small-gap"),
    pytest.param([5.0], 0.0, 1e-12, id="1d"),
]


# ---------------------------------------------------------------- closed forms on quadratics
@pytest.mark.parametrize(("eigs", "c", "rtol"), QUADRATICS)
def test_keskar_ball_on_quadratic_matches_closed_form(eigs, c, rtol):
    fn, _, _ = quadratic(eigs, c)
    obj = Objective.from_function(fn, torch.zeros(len(eigs), dtype=torch.float64))
    r = keskar(obj, EPS, steps=100, restarts=2)
    exact = 0.5 * max(eigs) * EPS**2 / (1 + c)
    assert r.kind == "keskar"
    assert r.value == pytest.approx(exact, rel=rtol)
    assert r.value <= exact * (1 + 1e-12)  # a maximum found inside the ball never exceeds the true one
    assert r.f0 == pytest.approx(c, abs=1e-15)
    assert float(r.point_high["theta"].norm()) <= EPS * (1 + 1e-12)


@pytest.mark.parametrize(("eigs", "c", "rtol"), QUADRATICS)
def test_two_sided_on_quadratic_matches_closed_form(eigs, c, rtol):
    fn, _, _ = quadratic(eigs, c)
    obj = Objective.from_function(fn, torch.zeros(len(eigs), dtype=torch.float64))
    r = two_sided(obj, EPS, steps=100, restarts=2)
    assert r.value == pytest.approx(0.5 * max(eigs) * EPS**2, rel=rtol)
    assert r.f_low == pytest.approx(c, abs=1e-15)  # the minimum over the ball is the centre
    assert r.f_high == pytest.approx(c + 0.5 * max(eigs) * EPS**2, rel=rtol)


def test_two_sided_equals_keskar_times_normalizer_at_a_minimum():
    fn, _, _ = quadratic([3.0, 1.0, 0.5], 0.4)
    obj = Objective.from_function(fn, torch.zeros(3, dtype=torch.float64))
    phi = keskar(obj, EPS, steps=40)
    s = two_sided(obj, EPS, steps=40)
    assert s.value == pytest.approx(phi.value * (1 + 0.4), rel=1e-12)


@pytest.mark.parametrize(("n_descent", "n_ascent"), [(2, 2), (1, 3), (0, 2), (3, 0), (0, 0)])
def test_probe_on_quadratic_along_eigenvector(n_descent, n_ascent):
    eigs = [3.0, 1.0, 0.5]
    fn, _, q = quadratic(eigs, 0.3)
    t, gamma = 1.0, 0.1
    theta = t * q[:, 0]  # top eigenvector: the gradient λ₁θ stays parallel to it
    obj = Objective.from_function(fn, theta)
    r = probe(obj, gamma, n_descent, n_ascent)
    exact = 0.5 * eigs[0] * ((t + n_ascent * gamma) ** 2 - (t - n_descent * gamma) ** 2)
    assert r.value == pytest.approx(exact, rel=1e-12, abs=1e-14)
    assert torch.allclose(r.point_high["theta"], (t + n_ascent * gamma) * q[:, 0], atol=1e-13)
    assert torch.allclose(r.point_low["theta"], (t - n_descent * gamma) * q[:, 0], atol=1e-13)
    assert r.cost.gradients == n_descent + n_ascent


# ---------------------------------------------------------------- the box version vs brute force in 2-D
def _box_grid(theta0, half_width, n=401):
    axes = [np.linspace(t - h, t + h, n) for t, h in zip(theta0, half_width)]
    g1, g2 = np.meshgrid(*axes, indexing="ij")
    return g1, g2


BOX_CASES = [
    pytest.param(lambda t: 0.5 * (2.0 * t[0] ** 2 + 0.5 * t[1] ** 2 + 0.6 * t[0] * t[1]), id="quadratic"),
    pytest.param(lambda t: torch.sin(3 * t[0]) * torch.cos(2 * t[1]) + t[0] * t[1] + 1.5, id="non-convex"),
]


@pytest.mark.parametrize("fn", BOX_CASES)
def test_keskar_box_matches_brute_force_in_2d(fn):
    theta0 = np.array([0.3, -0.5])
    eps = 0.2
    obj = Objective.from_function(fn, torch.tensor(theta0))
    r = keskar(obj, eps, method="box", steps=50, restarts=3)
    hw = eps * (np.abs(theta0) + 1.0)
    g1, g2 = _box_grid(theta0, hw)
    vals = fn(torch.tensor(np.stack([g1, g2]))).numpy()
    f0 = float(fn(torch.tensor(theta0)))
    brute = (vals.max() - f0) / (1 + f0)
    assert r.value == pytest.approx(brute, rel=1e-4)
    assert r.value >= brute - 1e-12  # the grid is a subset of the box: L-BFGS-B must do at least as well
    found = r.point_high["theta"].numpy()
    assert np.all(np.abs(found - theta0) <= hw * (1 + 1e-12))


def test_keskar_box_on_quadratic_vertex_in_closed_form():
    # convex f: the maximum over a box is at a vertex; enumerate the 4 vertices
    fn = BOX_CASES[0].values[0]
    theta0 = np.array([0.3, -0.5])
    eps = 0.2
    obj = Objective.from_function(fn, torch.tensor(theta0))
    hw = eps * (np.abs(theta0) + 1.0)
    vertices = [theta0 + np.array(s) * hw for s in itertools.product((-1, 1), repeat=2)]
    f0 = float(fn(torch.tensor(theta0)))
    exact = (max(float(fn(torch.tensor(v))) for v in vertices) - f0) / (1 + f0)
    assert keskar(obj, eps, method="box", steps=30, restarts=0).value == pytest.approx(exact, rel=1e-12)


def test_keskar_box_in_random_subspace_matches_brute_force():
    fn, amat, _ = quadratic([3.0, 1.0, 0.5], 0.1, seed=3)
    theta0 = torch.tensor([0.2, -0.1, 0.4], dtype=torch.float64)
    eps, seed = 0.3, 5
    obj = Objective.from_function(fn, theta0)
    r = keskar(obj, eps, method="box", subspace_dim=2, seed=seed, steps=50, restarts=2)
    a = random_subspace(3, 2, seed)
    assert torch.allclose(a.T @ a, torch.eye(2, dtype=torch.float64), atol=1e-12)
    hw = eps * ((a.T @ theta0).abs() + 1.0)
    y1, y2 = _box_grid([0.0, 0.0], hw.numpy())
    pts = theta0[:, None, None] + torch.einsum("ip,pjk->ijk", a, torch.tensor(np.stack([y1, y2])))
    vals = 0.5 * torch.einsum("ijk,il,ljk->jk", pts, amat, pts) + 0.1
    f0 = float(fn(theta0))
    brute = (float(vals.max()) - f0) / (1 + f0)
    assert r.value == pytest.approx(brute, rel=1e-4)
    # the maximizer lies in θ + span(A)
    delta = r.point_high["theta"] - theta0
    assert torch.allclose(a @ (a.T @ delta), delta, atol=1e-12)
    assert r.settings["subspace_dim"] == 2


# ---------------------------------------------------------------- the toy function of Fig. 2
def toy_np(t):
    return 0.5 * t * np.sin(3 * t) + 1.0


def toy_grad_np(t):
    return 0.5 * np.sin(3 * t) + 1.5 * t * np.cos(3 * t)


def definition1_numpy(theta, gamma, n_descent, n_ascent):
    """Definition 1 in plain numpy (1-D: the normalized gradient is the sign of f')."""
    lo = hi = float(theta)
    for _ in range(n_descent):
        g = toy_grad_np(lo)
        lo -= gamma * g / abs(g)
    for _ in range(n_ascent):
        g = toy_grad_np(hi)
        hi += gamma * g / abs(g)
    return toy_np(hi) - toy_np(lo), hi, lo


def toy(t):
    return 0.5 * t * torch.sin(3 * t) + 1


@pytest.mark.parametrize("theta", [-2.7, -1.2, -0.3, 0.45, 1.1, 2.2, 2.95])
@pytest.mark.parametrize(("gamma", "n_descent", "n_ascent"), [(0.05, 2, 2), (0.1, 3, 1), (0.02, 0, 5)])
def test_probe_on_toy_function_matches_numpy_definition1(theta, gamma, n_descent, n_ascent):
    obj = Objective.from_function(toy, theta)
    r = probe(obj, gamma, n_descent, n_ascent)
    ref, hi, lo = definition1_numpy(theta, gamma, n_descent, n_ascent)
    assert r.value == pytest.approx(ref, abs=1e-13)
    assert float(r.point_high["theta"]) == pytest.approx(hi, abs=1e-14)
    assert float(r.point_low["theta"]) == pytest.approx(lo, abs=1e-14)
    assert r.f0 == pytest.approx(toy_np(theta), abs=1e-15)


def _toy_local_maximum(bracket):
    from scipy.optimize import brentq

    return brentq(toy_grad_np, *bracket, xtol=1e-15)


@pytest.mark.parametrize("bracket", [(0.5, 0.9), (-0.9, -0.5), (2.5, 2.8)], ids=["0.68", "-0.68", "2.66"])
def test_phi_vanishes_and_two_sided_does_not_at_a_local_maximum(bracket):
    tm = _toy_local_maximum(bracket)
    assert toy_np(tm) > toy_np(tm - 0.01) and toy_np(tm) > toy_np(tm + 0.01)
    obj = Objective.from_function(toy, tm)
    phi = keskar(obj, EPS)
    s = two_sided(obj, EPS, restarts=3)
    s_hat = probe(obj, EPS / 2, 2, 2)
    assert abs(phi.value) < 1e-12
    expected_s = toy_np(tm) - min(toy_np(tm - EPS), toy_np(tm + EPS))  # f is monotone on each side within ε
    assert s.value == pytest.approx(expected_s, rel=1e-6)
    assert s.value > 0.01
    assert s_hat.value > 0.01


# ---------------------------------------------------------------- networks: batching, state, cost
def _net_objectives(batch_sizes):
    x, y = tiny_data(12)
    model = tiny_bn_net()
    chunks, start = [], 0
    for b in batch_sizes:
        chunks.append((x[start : start + b], y[start : start + b]))
        start += b
    return model, Objective(model, F.cross_entropy, chunks)


ESTIMATORS = [
    pytest.param(lambda o: keskar(o, 0.05, steps=8), id="keskar-ball"),
    pytest.param(lambda o: keskar(o, 0.01, method="box", steps=5, restarts=0), id="keskar-box"),
    pytest.param(lambda o: keskar(o, 0.01, method="box", subspace_dim=4, steps=5), id="keskar-box-subspace"),
    pytest.param(lambda o: two_sided(o, 0.05, steps=8), id="two-sided"),
    pytest.param(lambda o: probe(o, 0.02, 3, 2), id="probe"),
]


@pytest.mark.parametrize("estimate", ESTIMATORS)
def test_same_value_with_one_batch_or_several(estimate):
    _, one = _net_objectives([12])
    _, several = _net_objectives([5, 5, 2])
    r1, r2 = estimate(one), estimate(several)
    assert r1.value == pytest.approx(r2.value, rel=1e-9, abs=1e-12)
    assert r1.value > 0


@pytest.mark.parametrize("estimate", ESTIMATORS)
def test_model_untouched_and_result_complete(estimate):
    model, obj = _net_objectives([5, 7])
    model.train()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    before = snapshot(model)
    r = estimate(obj)
    assert_same_state(before, snapshot(model))
    assert isinstance(r, SharpnessResult)
    assert math.isfinite(r.value) and r.cost.gradients > 0 and r.cost.seconds > 0
    assert r.point_high is not None and set(r.point_high) == set(obj.names)
    assert r.settings


def test_cost_counts_of_the_ball_search():
    fn, _, _ = quadratic([3.0, 1.0, 0.5])
    obj = Objective.from_function(fn, torch.zeros(3, dtype=torch.float64))
    assert keskar(obj, EPS, steps=7, restarts=2).cost.gradients == 3 * 7
    assert two_sided(obj, EPS, steps=7, restarts=2).cost.gradients == 2 * 3 * 7


def test_result_save_load_roundtrip(tmp_path):
    fn, _, _ = quadratic([3.0, 1.0, 0.5])
    obj = Objective.from_function(fn, torch.zeros(3, dtype=torch.float64))
    r = two_sided(obj, EPS)
    back = SharpnessResult.load(r.save(tmp_path / "s"))
    assert back.value == r.value and back.settings == r.settings
    assert torch.equal(back.point_low["theta"], r.point_low["theta"])


def test_params_argument_measures_elsewhere_and_is_not_modified():
    fn, _, q = quadratic([3.0, 1.0, 0.5])
    obj = Objective.from_function(fn, torch.zeros(3, dtype=torch.float64))
    point = {"theta": 1.0 * q[:, 0]}
    kept = point["theta"].clone()
    r = probe(obj, 0.1, 1, 1, params=point)
    assert r.value == pytest.approx(0.5 * 3.0 * (1.1**2 - 0.9**2), rel=1e-12)
    assert torch.equal(point["theta"], kept)
