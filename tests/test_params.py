"""Parameter-vector algebra vs flattened float64 references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from basinscope import params as P


def _vec(seed: int) -> P.Params:
    g = torch.Generator().manual_seed(seed)
    return {
        "conv.weight": torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64),
        "conv.bias": torch.randn(4, generator=g, dtype=torch.float64),
        "fc.weight": torch.randn(3, 5, generator=g, dtype=torch.float64),
        "scalar": torch.randn((), generator=g, dtype=torch.float64),
    }


def test_flatten_unflatten_roundtrip():
    x = _vec(0)
    flat = P.flatten(x)
    assert flat.shape == (P.numel(x),) == (4 * 2 * 9 + 4 + 15 + 1,)
    back = P.unflatten(flat, x)
    assert list(back) == list(x)
    for k in x:
        assert torch.equal(back[k], x[k])


@pytest.mark.parametrize("alpha", [0.0, -1.5, 2.0])
def test_algebra_matches_flat_numpy(alpha):
    x, y = _vec(1), _vec(2)
    fx, fy = P.flatten(x).numpy(), P.flatten(y).numpy()
    assert float(P.dot(x, y)) == pytest.approx(float(fx @ fy), rel=1e-12)
    assert float(P.norm(x)) == pytest.approx(float(np.linalg.norm(fx)), rel=1e-12)
    np.testing.assert_allclose(P.flatten(P.axpy(alpha, x, y)).numpy(), alpha * fx + fy, rtol=1e-13)
    np.testing.assert_allclose(
        P.flatten(P.axpy(torch.tensor(alpha, dtype=torch.float64), x, y)).numpy(), alpha * fx + fy
    )
    np.testing.assert_allclose(P.flatten(P.scale(x, alpha)).numpy(), alpha * fx)
    np.testing.assert_allclose(P.flatten(P.sub(x, y)).numpy(), fx - fy)
    np.testing.assert_allclose(P.flatten(P.add(x, y)).numpy(), fx + fy)
    np.testing.assert_allclose(P.flatten(P.lincomb(x, [alpha, 3.0], [y, x])).numpy(), fx + alpha * fy + 3.0 * fx)


def test_out_of_place():
    x, y = _vec(1), _vec(2)
    x0 = P.clone(x)
    P.axpy(2.0, y, x)
    P.lincomb(x, [1.0], [y])
    for k in x:
        assert torch.equal(x[k], x0[k])


def test_random_direction_seeded():
    like = _vec(0)
    a, b = P.random_direction(like, seed=3), P.random_direction(like, seed=3)
    c = P.random_direction(like, seed=4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc.weight"], c["fc.weight"])
    r = P.random_direction(like, seed=0, distribution="rademacher")
    assert set(torch.unique(P.flatten(r)).tolist()) <= {-1.0, 1.0}


@pytest.mark.parametrize("ignore", ["biasbn", None])
def test_filter_normalize_matches_loop(ignore):
    w, d = _vec(5), _vec(6)
    out = P.filter_normalize(d, w, ignore=ignore)
    for k in w:
        if w[k].dim() <= 1:
            expected = torch.zeros_like(w[k]) if ignore == "biasbn" else w[k]
            assert torch.equal(out[k], expected)
        else:
            for i in range(w[k].shape[0]):
                di, wi = d[k][i], w[k][i]
                ref = di / (di.norm() + 1e-10) * wi.norm()
                torch.testing.assert_close(out[k][i], ref, rtol=1e-12, atol=0)
                assert float(out[k][i].norm()) == pytest.approx(float(wi.norm()), rel=1e-9)


def test_gram_schmidt_orthonormal_and_same_span():
    vs = [_vec(i) for i in range(3)]
    basis = P.gram_schmidt(vs)
    gram = torch.tensor([[float(P.dot(a, b)) for b in basis] for a in basis])
    torch.testing.assert_close(gram, torch.eye(3, dtype=gram.dtype), atol=1e-12, rtol=0)
    # every input is reproduced by its projection onto the basis
    B = torch.stack([P.flatten(b) for b in basis])
    for v in vs:
        fv = P.flatten(v)
        torch.testing.assert_close(B.T @ (B @ fv), fv, atol=1e-10, rtol=0)


def test_gram_schmidt_rejects_dependent():
    x, y = _vec(0), _vec(1)
    z = P.axpy(2.0, x, P.scale(y, -1.0))
    with pytest.raises(
        ValueError, match=r"vectors: expected linearly independent vectors, got vector 2 lies in the span"
    ):
        P.gram_schmidt([x, y, z])
    with pytest.raises(ValueError, match="vector 1 is zero"):
        P.gram_schmidt([x, P.zeros_like(x)])


def test_bad_input_messages():
    x = _vec(0)
    with pytest.raises(ValueError, match=r"vec: expected a 1-D tensor with 92 entries, got Tensor\(shape=\(3,\)"):
        P.unflatten(torch.zeros(3), x)
    bad = dict(x)
    bad.pop("scalar")
    with pytest.raises(
        ValueError, match=r"x: expected the model's trainable parameter names, got missing keys 'scalar'"
    ):
        P.axpy(1.0, bad, x)
    with pytest.raises(ValueError, match=r"distribution: expected one of 'normal', 'rademacher', got 'uniform'"):
        P.random_direction(x, seed=0, distribution="uniform")
    wrong = dict(x, **{"fc.weight": torch.zeros(5, 3, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"direction\['fc.weight'\]: expected shape \(3, 5\), got shape \(5, 3\)"):
        P.filter_normalize(wrong, x)
