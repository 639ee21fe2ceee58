"""Directions that carry meaning: top Hessian eigenvectors (H v = λ v against a dense float64 Hessian) and the
principal directions of a trajectory (against numpy's SVD of the flattened iterates), the surfaces along them
(values against plain evaluations, resume, the model untouched), and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from basinscope import params as P
from basinscope.objective import Objective
from basinscope.surface import (
    Surface2D,
    hessian_directions,
    hessian_line,
    hessian_plane,
    pca_directions,
    pca_line,
    pca_plane,
)

from .conftest import assert_same_state, snapshot, tiny_bn_net, tiny_data


def _net(seed: int = 0, device="cpu") -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double().to(device)


def _dense_hessian(obj: Objective, theta: dict) -> torch.Tensor:
    flat = P.flatten(theta)

    def f(v):
        return obj.loss_fn(
            torch.func.functional_call(obj.model, P.unflatten(v, theta), (obj.batches[0][0],)), obj.batches[0][1]
        )

    return torch.func.hessian(f)(flat)


# ---------------------------------------------------------------------------------------------- Hessian
def test_hessian_directions_are_unit_eigenvectors_of_the_dense_hessian(device):
    model = _net(0, device)
    obj = Objective(model, F.cross_entropy, tiny_data(20, device=device))
    before = snapshot(model)
    (v1, v2), eig = hessian_directions(obj, 2)
    assert_same_state(before, snapshot(model))
    h = _dense_hessian(obj, obj.point())
    evals = torch.linalg.eigvalsh(h)
    assert eig.eigenvalues == pytest.approx(evals.flip(0)[:2].tolist(), rel=1e-8, abs=1e-10)
    for v, lam, res in zip((v1, v2), eig.eigenvalues, eig.residuals):
        x = P.flatten({k: v[k] for k in obj.names})
        assert float(x.norm()) == pytest.approx(1.0, abs=1e-10)
        # Lanczos stops on the eigenvalue's error (≈ r²/gap), so the vector's residual r is its square root
        assert float((h @ x - lam * x).norm()) < 1e-6
        assert float((h @ x - lam * x).norm()) == pytest.approx(res, rel=1e-3, abs=1e-12)
        assert float(x[x.abs().argmax()]) > 0  # sign convention
    assert abs(float(P.flatten(v1) @ P.flatten(v2))) < 1e-8


def test_hessian_plane_values_and_cost(device):
    model = _net(1, device)
    obj = Objective(model, F.cross_entropy, tiny_data(20, device=device))
    before = snapshot(model)
    s = hessian_plane(obj, span=0.4, resolution=5, progress=False)
    assert_same_state(before, snapshot(model))
    assert s.kind == "hessian_plane" and s.cost.hvps > 0
    (v1, v2), eig = hessian_directions(obj, 2)
    assert s.settings["eigenvalues"] == pytest.approx(eig.eigenvalues)
    theta = obj.point()
    for j, b in enumerate(s.betas):
        for i, a in enumerate(s.alphas):
            p = {k: theta[k] + a * v1[k] + b * v2[k] for k in theta}
            assert s.train_loss[j, i] == pytest.approx(float(obj.loss(p)), rel=1e-12)
    assert s.at_point("θ") == float(obj.loss())
    # along v1 the loss is ½·λ1·α² to second order (a quadratic fit of the line's curvature)
    line = hessian_line(obj, ts=np.linspace(-1e-3, 1e-3, 5), progress=False)
    second = (line.train_loss[0] - 2 * line.train_loss[2] + line.train_loss[4]) / (1e-3**2)
    assert second == pytest.approx(eig.eigenvalues[0], rel=1e-4)


def test_hessian_line_resumes_from_its_store(tmp_path):
    model = _net(2)
    obj = Objective(model, F.cross_entropy, tiny_data(12))
    a = hessian_line(obj, store=tmp_path / "s", ts=np.linspace(-1, 1, 5), progress=False)
    b = hessian_line(obj, store=tmp_path / "s", ts=np.linspace(-1, 1, 5), progress=False)
    assert np.array_equal(a.train_loss, b.train_loss)
    assert b.cost.forwards == a.cost.forwards - 5  # the 5 points came from the store (the eigenvector is recomputed)


# ---------------------------------------------------------------------------------------------- PCA
def _trajectory(model: nn.Module, n: int = 6, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    w = {k: v.detach().clone() for k, v in model.named_parameters()}
    out = []
    for i in range(n):
        out.append({k: v + 0.3 * i * torch.ones_like(v) + 0.2 * torch.randn(v.shape, generator=g, dtype=v.dtype)
                    for k, v in w.items()})  # fmt: skip
    return out


@pytest.mark.parametrize("centered", [True, False])
def test_pca_matches_numpy_svd_of_the_flattened_trajectory(centered):
    model = _net(3)
    obj = Objective(model, F.cross_entropy, tiny_data(8))
    traj = _trajectory(model)
    pcs = pca_directions(obj, traj, centered=centered)
    m = np.stack([P.flatten(w).numpy() - P.flatten(traj[-1]).numpy() for w in traj])
    x = m - m.mean(axis=0) if centered else m
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    assert pcs.singular_values == pytest.approx(s.tolist(), rel=1e-10, abs=1e-12)
    assert pcs.explained_variance_ratio == pytest.approx((s**2 / (s**2).sum())[:2].tolist(), rel=1e-10)
    for i, d in enumerate(pcs.directions):
        got = P.flatten(d).numpy()
        sign = np.sign(got @ vt[i])
        assert np.allclose(got, sign * vt[i], atol=1e-10)
        assert np.allclose(pcs.projections[:, i], sign * (m @ vt[i]), atol=1e-10)
    assert (pcs.projections[0] >= 0).all()  # sign convention: the first iterate has non-negative coordinates
    assert np.allclose(pcs.projections[-1], 0.0)  # the final point is the origin


def test_pca_plane_values_path_and_model_untouched(tmp_path):
    model = tiny_bn_net(4)
    x, y = tiny_data(16)
    obj = Objective(model, F.cross_entropy, (x, y))
    traj = _trajectory(model, 5, seed=1)
    final = {**traj[-1], **{k: v.clone() for k, v in model.named_buffers()}}  # a full state_dict as the final point
    before = snapshot(model)
    s = pca_plane(obj, traj[:-1], final=final, resolution=5, progress=False, store=tmp_path / "st")
    assert_same_state(before, snapshot(model))
    assert isinstance(s, Surface2D) and s.kind == "pca_plane" and s.path.shape == (5, 2)
    assert np.allclose(s.path[-1], 0.0) and s.at_point("final") == float(obj.loss(traj[-1]))
    pcs = pca_directions(obj, traj[:-1], final=traj[-1])
    d1, d2 = pcs.directions
    for j, b in enumerate(s.betas):
        for i, a in enumerate(s.alphas):
            p = {k: traj[-1][k] + a * d1[k] + b * d2[k] for k in d1}
            assert s.train_loss[j, i] == pytest.approx(float(obj.loss(p)), rel=1e-12)
    lo, hi = s.path.min(axis=0), s.path.max(axis=0)
    assert s.alphas[0] < lo[0] and s.alphas[-1] > hi[0] and s.betas[0] < lo[1] and s.betas[-1] > hi[1]
    assert s.settings["explained_variance_ratio"] == pytest.approx(pcs.explained_variance_ratio)
    s.save(tmp_path / "pca")
    assert np.array_equal(Surface2D.load(tmp_path / "pca").path, s.path)
    again = pca_plane(obj, traj[:-1], final=final, resolution=5, progress=False, store=tmp_path / "st")
    assert again.cost.forwards == 0 and np.array_equal(again.train_loss, s.train_loss)


def test_pca_line_marks_the_final_point_and_the_start():
    model = _net(5)
    obj = Objective(model, F.cross_entropy, tiny_data(8))
    traj = _trajectory(model, 4, seed=2)
    s = pca_line(obj, traj, points=9, progress=False)
    pcs = pca_directions(obj, traj, n=1)
    assert s.point_labels == ["final", "start"] and s.points.tolist() == [0.0, float(pcs.projections[0, 0])]
    for k, t in enumerate(s.ts):
        p = {n: traj[-1][n] + t * pcs.directions[0][n] for n in traj[-1]}
        assert s.train_loss[k] == pytest.approx(float(obj.loss(p)), rel=1e-12)
    assert float(pcs.projections[0, 0]) in s.ts.tolist() and 0.0 in s.ts.tolist()


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda o, t: hessian_directions(o, 3), r"^n: expected 1 \(a line\) or 2 \(a plane\)"),
        (lambda o, t: hessian_directions(o, True), r"^n: expected 1 \(a line\) or 2 \(a plane\), got True"),
        (lambda o, t: hessian_line("x"), r"^obj: expected an Objective"),
        (lambda o, t: hessian_plane("x"), r"^obj: expected an Objective"),
        (lambda o, t: hessian_directions(o, 2, k=4), r"^k: expected not given"),
        (lambda o, t: hessian_plane(o, span=0), r"^span: expected"),
        (lambda o, t: pca_directions(o, t[:1]), r"^trajectory: expected at least two iterates"),
        (lambda o, t: pca_directions(o, t[0]), r"^trajectory: expected a sequence of weight dicts"),
        (lambda o, t: pca_directions(o, [t[0], t[0], t[0]]), r"^trajectory: expected iterates that spread"),
        (lambda o, t: pca_directions(o, t[:2]), r"^trajectory: expected iterates that spread in at least 2"),
        (lambda o, t: pca_directions(o, [t[0], {"w": torch.ones(2)}]), r"^trajectory\[1\]: expected"),
        (lambda o, t: pca_plane(o, t, margin=-1), r"^margin: expected"),
        (lambda o, t: pca_line(o, t, ts=[0.5, 1.0]), r"^ts: expected coordinates that include 0"),
    ],
    ids=[
        "n",
        "n-bool",
        "line-obj",
        "plane-obj",
        "k",
        "span",
        "one-iterate",
        "not-a-list",
        "all-equal",
        "two-iterates",
        "bad-keys",
        "margin",
        "ts",
    ],
)
def test_bad_input_gives_one_line_errors(call, pattern):
    model = _net(0)
    obj = Objective(model, F.cross_entropy, tiny_data(8))
    traj = _trajectory(model, 4)
    with pytest.raises((ValueError, TypeError), match=pattern) as e:
        call(obj, traj)
    assert "\n" not in str(e.value)
