"""Surface values against closed forms (a quadratic objective) and plain reference loops."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from basinscope import params as P
from basinscope.objective import Objective
from basinscope.surface import line, plane, random_directions, random_line, random_plane

from .conftest import assert_same_state, snapshot, tiny_bn_net, tiny_data


def quadratic_problem(seed: int = 0):
    """Linear model without bias and MSE loss: f(w) = mean((X w − y)²), an explicit quadratic in w."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(30, 4, generator=g, dtype=torch.float64)
    y = torch.randn(30, 1, generator=g, dtype=torch.float64)
    model = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 4, generator=g, dtype=torch.float64))
    obj = Objective(model, F.mse_loss, [(X[:17], y[:17]), (X[17:], y[17:])])
    w1 = obj.point()
    w2 = {"weight": w1["weight"] + torch.randn(1, 4, generator=g, dtype=torch.float64)}
    w3 = {"weight": w1["weight"] + torch.randn(1, 4, generator=g, dtype=torch.float64)}
    return obj, X.numpy(), y.numpy()[:, 0], w1, w2, w3


def f_closed(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    return float(np.mean((X @ w - y) ** 2))


def test_plane_matches_closed_form_quadratic():
    obj, X, y, w1, w2, w3 = quadratic_problem()
    s = plane(obj, w1, w2, w3, resolution=9, margin=0.3, progress=False)
    a, b, c = (w["weight"].numpy()[0] for w in (w1, w2, w3))
    # independent basis in numpy: u along b − a, v the normalized residual of c − a
    u = (b - a) / np.linalg.norm(b - a)
    r = (c - a) - np.dot(c - a, u) * u
    v = r / np.linalg.norm(r)
    # f(a + α u + β v) = mean((r0 + α X u + β X v)²), a quadratic polynomial in (α, β)
    r0, xu, xv = X @ a - y, X @ u, X @ v
    A, B = np.meshgrid(s.alphas, s.betas)
    expected = (
        np.mean(r0**2)
        + 2 * A * np.mean(r0 * xu)
        + 2 * B * np.mean(r0 * xv)
        + A**2 * np.mean(xu**2)
        + 2 * A * B * np.mean(xu * xv)
        + B**2 * np.mean(xv**2)
    )
    np.testing.assert_allclose(s.train_loss, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        s.points[:3], [[0, 0], [np.linalg.norm(b - a), 0], [np.dot(c - a, u), np.linalg.norm(r)]]
    )
    assert s.train_error is None and s.test_loss is None and s.test_error is None
    assert s.shape == (9, 9)
    # grid covers the points with the margin
    assert s.alphas[0] < min(0.0, s.points[2, 0]) and s.alphas[-1] > s.points[1, 0]


def test_three_points_evaluate_exactly_to_obj_loss():
    obj, _, _, w1, w2, w3 = quadratic_problem(seed=3)
    test = Objective(
        obj.model, F.mse_loss, (torch.randn(7, 4, dtype=torch.float64), torch.randn(7, 1, dtype=torch.float64))
    )
    s = plane(obj, w1, w2, w3, test=test, resolution=11, progress=False)
    for lab, w in zip(("w1", "w2", "w3"), (w1, w2, w3)):
        i, j = s.point_indices[s.point_labels.index(lab)]
        assert s.alphas[i] == s.points[s.point_labels.index(lab), 0]
        assert s.train_loss[j, i] == obj.loss(w).item()
        assert s.test_loss[j, i] == test.loss(w).item()
        assert s.at_point(lab) == obj.loss(w).item()


def test_plane_classification_matches_plain_loop_with_errors(device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double().to(device)
    x, y = torch.randn(20, 3, dtype=torch.float64).to(device), torch.randint(0, 3, (20,)).to(device)
    xt, yt = torch.randn(15, 3, dtype=torch.float64).to(device), torch.randint(0, 3, (15,)).to(device)
    obj = Objective(model, F.cross_entropy, [(x[:8], y[:8]), (x[8:], y[8:])])
    test = Objective(model, F.cross_entropy, (xt, yt))
    w1 = obj.point()
    w2 = P.add(w1, random_directions(w1, seed=1, normalize=None)[0])
    w3 = P.add(w1, random_directions(w1, seed=2, normalize=None)[0])
    before = snapshot(model)
    s = plane(obj, w1, w2, w3, test=test, resolution=4, progress=False)
    assert_same_state(before, snapshot(model))
    u, v, _ = __import__("basinscope.surface.plane", fromlist=["plane_basis"]).plane_basis(w1, w2, w3)
    ref = copy.deepcopy(model)
    for j, b in enumerate(s.betas):
        for i, a in enumerate(s.alphas):
            w = P.lincomb(w1, [a, b], [u, v])
            with torch.no_grad():
                for n, p in ref.named_parameters():
                    p.copy_(w[n])
                out, outt = ref(x), ref(xt)
            assert s.train_loss[j, i] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-12)
            assert s.test_loss[j, i] == pytest.approx(F.cross_entropy(outt, yt).item(), rel=1e-12)
            assert s.train_error[j, i] == pytest.approx(1 - (out.argmax(1) == y).double().mean().item(), abs=1e-12)
            assert s.test_error[j, i] == pytest.approx(1 - (outt.argmax(1) == yt).double().mean().item(), abs=1e-12)
    assert s.cost.forwards == 2 * s.train_loss.size
    assert s.cost.samples == s.train_loss.size * 35


@pytest.mark.parametrize("ts", [None, [-1.0, 0.0, 0.3, 1.0, 2.5]], ids=["default", "extrapolating"])
def test_line_matches_closed_form_quadratic(ts):
    obj, X, y, w1, w2, _ = quadratic_problem(seed=1)
    s = line(obj, w1, w2, ts=ts, progress=False)
    a, b = w1["weight"].numpy()[0], w2["weight"].numpy()[0]
    expected = [f_closed(X, y, (1 - t) * a + t * b) for t in s.ts]
    np.testing.assert_allclose(s.train_loss, expected, rtol=1e-12)
    if ts is None:
        assert s.ts[0] == -0.5 and s.ts[-1] == 1.5 and len(s.ts) == 41
    k0, k1 = list(s.ts).index(0.0), list(s.ts).index(1.0)
    assert s.train_loss[k0] == obj.loss(w1).item() and s.train_loss[k1] == obj.loss(w2).item()


def test_random_directions_filter_normalized_seeded_and_ignore_biasbn():
    model = tiny_bn_net()
    w = {n: p.detach() for n, p in model.named_parameters()}
    d1, d2 = random_directions(w, 2, seed=5)
    e1, e2 = random_directions(w, 2, seed=5)
    assert all(torch.equal(d1[k], e1[k]) and torch.equal(d2[k], e2[k]) for k in w)
    assert not torch.equal(d1["0.weight"], d2["0.weight"])
    for k, t in w.items():
        if t.dim() > 1:
            torch.testing.assert_close(d1[k].norm(dim=1), t.norm(dim=1))
        else:  # biases and BatchNorm weight/bias stay fixed
            assert torch.count_nonzero(d1[k]) == 0
    (keep,) = random_directions(w, seed=5, ignore=None)
    assert torch.equal(keep["1.weight"], w["1.weight"])
    (raw,) = random_directions(w, seed=5, normalize=None)
    assert torch.count_nonzero(raw["0.bias"]) == 5


def test_random_plane_and_line_against_loop_and_centre_exact(device):
    model = tiny_bn_net(device=device)
    obj = Objective(model, F.cross_entropy, tiny_data(12, device=device))
    before = snapshot(model)
    s = random_plane(obj, seed=2, resolution=(4, 3), span=(0.5, 0.25), progress=False)
    d1, d2 = random_directions(obj.point(), 2, seed=2)
    assert s.shape == (3, 4) and 0.0 in s.alphas and 0.0 in s.betas  # the node nearest 0 is moved onto it
    for j, b in enumerate(s.betas):
        for i, a in enumerate(s.alphas):
            ref = obj.loss(P.lincomb(obj.point(), [a, b], [d1, d2])).item()
            assert s.train_loss[j, i] == pytest.approx(ref, rel=1e-12)
    assert s.at_point("θ") == obj.loss().item()
    r = random_line(obj, seed=2, ts=[-1.0, 0.0, 0.5], progress=False)
    np.testing.assert_allclose(r.train_loss, [obj.loss(P.axpy(t, d1, obj.point())).item() for t in r.ts], rtol=1e-12)
    assert_same_state(before, snapshot(model))


def test_bn_recompute_matches_update_bn_reference():
    model = tiny_bn_net()
    x, y = tiny_data(16)
    obj = Objective(model, F.cross_entropy, [(x[:8], y[:8]), (x[8:], y[8:])])
    start = obj.point()
    end = P.add(start, random_directions(start, seed=3, normalize=None)[0])
    before = snapshot(model)
    s = line(obj, start, end, ts=[0.0, 0.5, 1.3], bn_data=True, progress=False)
    assert_same_state(before, snapshot(model))
    for t, val in zip(s.ts, s.train_loss):
        ref = copy.deepcopy(model)
        with torch.no_grad():
            for n, p in ref.named_parameters():
                p.copy_((1 - t) * start[n] + t * end[n])
        torch.optim.swa_utils.update_bn([(x[:8], y[:8]), (x[8:], y[8:])], ref)
        ref.eval()
        with torch.no_grad():
            expected = F.cross_entropy(ref(x), y).item()
        assert val == pytest.approx(expected, rel=1e-10)
    # without recompute the model's own running statistics are used: different values
    with pytest.warns(UserWarning, match=r"bn_data: the model has BatchNorm layers"):
        plain = line(obj, start, end, ts=[0.5], progress=False)
    assert plain.train_loss[0] != pytest.approx(s.train_loss[1], rel=1e-6)
