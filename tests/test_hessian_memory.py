"""The Lanczos basis: grown with the steps actually run, stored in float32 or float64 (accuracy of each against
the dense float64 Hessian); HessianOperator.to_scipy against the dense spectrum."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch

from basinscope.hessian import HessianOperator, LanczosRuns, density, eigen, ritz, top_eigenvalues

from .conftest import assert_same_state, snapshot
from .test_hessian_helpers import data, dense_hessian, objective, tiny_bn_mlp
from .test_hessian_resume import _interrupt_after, _Stop


@pytest.fixture(scope="module")
def problem():
    model = tiny_bn_mlp()
    x, y = data()
    H = dense_hessian(model, x, y)
    return model, x, y, H, torch.linalg.eigvalsh(H)


@pytest.mark.parametrize("basis_dtype", [torch.float32, torch.float64])
def test_basis_grows_with_the_steps_run(basis_dtype):
    dim = 300
    A = torch.diag(torch.linspace(1.0, 2.0, dim, dtype=torch.float64))
    seen = []

    def matmat(V):
        seen.append(V.dtype)  # the stored vectors themselves: no float64 copy while the product runs
        return A @ V.to(torch.float64)

    runs = LanczosRuns(matmat, torch.ones(dim, 2, dtype=torch.float64), 100, basis_dtype=basis_dtype)
    size = torch.finfo(basis_dtype).bits // 8
    assert runs.basis_size == 1 and runs.basis_bytes == 2 * dim * size
    for m in range(1, 6):
        runs.step()
        assert runs.basis_size == m + 1 and runs.basis_bytes == (m + 1) * 2 * dim * size
    assert runs.basis_vector(3).dtype == basis_dtype and runs.basis_vector(3, 1).shape == (dim,)
    assert seen == [basis_dtype] * 5


def test_top_eigenvalues_holds_only_the_basis_it_used(problem, monkeypatch):
    """Converged after m < max_iter steps: m + 1 basis vectors were allocated, not max_iter + 1."""
    model, x, y, _, ev = problem
    made: list[LanczosRuns] = []

    class Recording(LanczosRuns):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(eigen, "LanczosRuns", Recording)
    res = top_eigenvalues(objective(model, x, y), k=1, max_iter=60)
    (runs,) = made
    m = res.iterations[0]
    assert m < 40 and res.converged
    assert runs.basis_size == m + 1
    assert runs.basis_bytes == (m + 1) * ev.numel() * 8  # a float64 model: float64 basis by default
    assert res.settings["basis_dtype"] == "float64"


@pytest.mark.parametrize("which", ["largest", "smallest"])
def test_float32_basis_vs_dense_float64(problem, which):
    """A float32 basis on a float64 model: each q_j is rounded to float32 (6e-8 relative), the recurrences stay
    float64. Converged eigenvalues were then within 6e-9·max|λ| of the dense ones (float64 basis: 1e-15); the
    default tol for a float32 basis is 1e-5 and gave 2.4e-6."""
    model, x, y, _, ev = problem
    ref = ev.flip(0)[:3] if which == "largest" else ev[:3]
    scale = float(ev.abs().max())
    tight = top_eigenvalues(objective(model, x, y), k=3, which=which, basis_dtype=torch.float32, tol=1e-7)
    err = (torch.tensor(tight.eigenvalues, dtype=torch.float64) - ref).abs().max() / scale
    assert err <= 2e-8 and tight.settings["basis_dtype"] == "float32"
    default = top_eigenvalues(objective(model, x, y), k=3, which=which, basis_dtype=torch.float32)
    assert default.settings["tol"] == 1e-5
    err = (torch.tensor(default.eigenvalues, dtype=torch.float64) - ref).abs().max() / scale
    assert err <= 1e-5
    for vec in tight.eigenvectors:  # Ritz vectors are combined in float64 and returned in the model's dtype
        flat = torch.cat([t.reshape(-1) for t in vec.values()])
        assert flat.dtype == torch.float64 and abs(float(flat.norm()) - 1) < 1e-6


def test_float32_basis_density_moments_match_float64_basis(problem):
    model, x, y, _, _ = problem
    kw = dict(n_runs=3, n_iter=20, seed=1)
    wide = density(objective(model, x, y), basis_dtype=torch.float64, **kw)
    narrow = density(objective(model, x, y), basis_dtype=torch.float32, **kw)
    for p in (1, 2, 3):
        assert narrow.moment(p) == pytest.approx(wide.moment(p), rel=1e-6)


def test_float32_basis_resumes_to_the_identical_result(problem, tmp_path, monkeypatch):
    model, x, y, _, _ = problem
    kw = dict(k=3, basis_dtype=torch.float32, tol=1e-7)
    full = top_eigenvalues(objective(model, x, y), **kw)
    ckpt = tmp_path / "eig.pt"
    with monkeypatch.context() as m:
        _interrupt_after(m, 5)
        with pytest.raises(_Stop):
            top_eigenvalues(objective(model, x, y), checkpoint=ckpt, checkpoint_every=2, **kw)
    saved = torch.load(ckpt, weights_only=True)["state"]["basis"]  # saved after step 4: q_0 ... q_4
    assert len(saved) == 5 and all(q.dtype == torch.float32 and q.shape == (1, 63) for q in saved)
    resumed = top_eigenvalues(objective(model, x, y), checkpoint=ckpt, checkpoint_every=2, **kw)
    assert resumed.eigenvalues == full.eigenvalues and resumed.iterations == full.iterations
    with pytest.raises(ValueError, match=r"written by another computation \(other settings"):
        top_eigenvalues(objective(model, x, y), checkpoint=ckpt, **{**kw, "basis_dtype": torch.float64})


@pytest.mark.parametrize("bad", [torch.float16, "float32", torch.int64])
def test_bad_basis_dtype(problem, bad):
    model, x, y, _, _ = problem
    with pytest.raises(TypeError, match=r"basis_dtype: expected None, torch\.float32 or torch\.float64, got "):
        top_eigenvalues(objective(model, x, y), k=1, basis_dtype=bad)
    with pytest.raises(TypeError, match=r"basis_dtype: expected None, torch\.float32 or torch\.float64, got "):
        density(objective(model, x, y), n_iter=3, basis_dtype=bad)
    with pytest.raises(TypeError, match=r"basis_dtype: expected torch\.float32 or torch\.float64, got "):
        LanczosRuns(lambda V: V, torch.ones(3, 1, dtype=torch.float64), 3, basis_dtype=bad)


def test_lanczos_runs_ritz_vector_is_q_s():
    A = torch.diag(torch.arange(1.0, 9.0, dtype=torch.float64))
    runs = LanczosRuns(lambda V: A @ V, torch.ones(8, 1, dtype=torch.float64), 8)
    while runs.step():
        pass
    theta, S, _ = ritz(runs, 0)
    y = runs.ritz_vector(0, S[:, -1])
    torch.testing.assert_close(A @ y, theta[-1] * y, rtol=0, atol=1e-10)


def test_to_scipy_eigsh_matches_dense(problem):
    model, x, y, H, ev = problem
    obj = objective(model, x, y)
    op = HessianOperator(obj)
    columns = {"n": 0}
    real = op.matmat

    def counted(V):
        columns["n"] += 1 if V.dim() == 1 else V.shape[1]
        return real(V)

    op.matmat = counted
    before = snapshot(model)
    lin = op.to_scipy()
    assert isinstance(lin, sla.LinearOperator) and lin.shape == (op.dim, op.dim) and lin.dtype == np.float64
    top = sla.eigsh(lin, k=3, which="LA", return_eigenvectors=False, tol=1e-12)
    np.testing.assert_allclose(np.sort(top), ev[-3:].numpy(), rtol=1e-9)
    low = sla.eigsh(lin, k=2, which="SA", return_eigenvectors=False, tol=1e-12)
    np.testing.assert_allclose(np.sort(low), ev[:2].numpy(), rtol=1e-9)
    assert obj.cost.hvps == columns["n"] > 0  # every product scipy asked for is counted
    v = np.random.default_rng(0).standard_normal(op.dim)
    np.testing.assert_allclose(lin @ v, H.numpy() @ v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lin.rmatvec(v), H.numpy() @ v, rtol=1e-10, atol=1e-12)
    V = np.random.default_rng(1).standard_normal((op.dim, 3))
    hvps = obj.cost.hvps
    np.testing.assert_allclose(lin.matmat(V), H.numpy() @ V, rtol=1e-10, atol=1e-12)
    assert obj.cost.hvps == hvps + 3
    op.release()
    assert_same_state(before, snapshot(model))
