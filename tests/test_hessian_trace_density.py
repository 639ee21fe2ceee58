"""trace (Hutchinson, Hutch++) and density (SLQ) vs the dense float64 Hessian."""

from __future__ import annotations

import pytest
import torch

from basinscope.hessian import DensityResult, HessianOperator, TraceResult, density, trace

from .conftest import assert_same_state, snapshot
from .test_hessian_helpers import data, dense_hessian, objective, tiny_bn_mlp


@pytest.fixture(scope="module")
def problem():
    model = tiny_bn_mlp()
    x, y = data()
    H = dense_hessian(model, x, y)
    return model, x, y, H


def test_hutchinson_converges_to_exact_trace(problem):
    model, x, y, H = problem
    res = trace(objective(model, x, y), n_samples=500, seed=1, block_size=50)
    exact = float(torch.trace(H))
    # Rademacher probes: Var(zᵀHz) = 2(‖H‖_F² − Σ H_ii²) (Hutchinson 1989)
    sd = float(2 * ((H**2).sum() - (torch.diagonal(H) ** 2).sum())) ** 0.5
    assert res.standard_error == pytest.approx(sd / 500**0.5, rel=0.25)
    assert abs(res.value - exact) <= 4 * res.standard_error
    assert res.cost.hvps == 500 and res.samples.shape == (500,)


def test_hutchinson_probes_are_the_quadratic_forms(problem):
    """Each sample is zᵀHz for the operator's seeded Rademacher probe z (checked against the dense H)."""
    model, x, y, H = problem
    obj = objective(model, x, y)
    res = trace(obj, n_samples=7, seed=4)
    Z = HessianOperator(obj).random(7, 4, "rademacher")
    torch.testing.assert_close(res.samples, (Z * (H @ Z)).sum(0), rtol=1e-10, atol=1e-12)


def test_hutchpp_exact_when_sketch_spans_space(problem):
    model, x, y, H = problem
    n = H.shape[0]
    res = trace(objective(model, x, y), method="hutch++", n_samples=3 * n + 3)
    assert res.value == pytest.approx(float(torch.trace(H)), rel=1e-9)


def test_hutchpp_converges_with_standard_error(problem):
    model, x, y, H = problem
    exact = float(torch.trace(H))
    res = trace(objective(model, x, y), method="hutch++", n_samples=60, seed=2)
    assert abs(res.value - exact) <= 4 * res.standard_error
    hutch = trace(objective(model, x, y), n_samples=60, seed=2)
    assert res.standard_error < hutch.standard_error  # the deflated residual has less variance


@pytest.mark.parametrize("graph", ["cached", "stream"])
def test_trace_multi_batch_equals_one_batch(problem, graph):
    model, x, y, _ = problem
    a = trace(objective(model, x, y), n_samples=20, seed=3)
    b = trace(objective(model, x, y, n_batches=4), n_samples=20, seed=3, graph=graph, block_size=7)
    assert b.value == pytest.approx(a.value, rel=1e-10)


def test_density_full_krylov_nodes_are_the_eigenvalues(problem):
    """Run to breakdown (n_iter ≥ dimension), the Lanczos nodes are the distinct eigenvalues of H (the
    softmax's shift invariance gives H a null space, so 0 is repeated and found once)."""
    model, x, y, H = problem
    n = H.shape[0]
    res = density(objective(model, x, y), n_runs=2, n_iter=n + 10)
    ev = torch.linalg.eigvalsh(H)
    distinct = ev[torch.cat([torch.tensor([True]), ev.diff() > 1e-7])]
    for r in range(2):
        nodes = res.nodes[r][~torch.isnan(res.nodes[r])].sort().values
        assert nodes.numel() == distinct.numel() < n
        torch.testing.assert_close(nodes, distinct, rtol=0, atol=1e-8)
        assert float(res.weights[r].sum()) == pytest.approx(1.0, abs=1e-12)


def test_density_mass_and_moments(problem):
    model, x, y, H = problem
    n = H.shape[0]
    obj = objective(model, x, y)
    res = density(obj, n_runs=120, n_iter=4, seed=5, grid=4000)
    assert float(torch.trapezoid(res.density, res.grid)) == pytest.approx(1.0, abs=1e-4)
    # Gauss quadrature is exact for degree ≤ 2m−1: per run, Σ τθ = vᵀHv and Σ τθ² = vᵀH²v (v = z/‖z‖)
    Z = HessianOperator(obj).random(120, 5, "rademacher")
    Z = Z / Z.norm(dim=0)
    nodes = torch.nan_to_num(res.nodes)
    for p, M in ((1, H), (2, H @ H)):
        per_run = (res.weights * nodes**p).sum(1)
        torch.testing.assert_close(per_run, (Z * (M @ Z)).sum(0), rtol=1e-8, atol=1e-12)
        exact = float(torch.trace(M)) / n
        se = float(per_run.std() / 120**0.5)
        assert abs(res.moment(p) - exact) <= 4 * se, (p, res.moment(p), exact, se)
    # broadening preserves the mean and adds σ² to the second moment
    mean = float(torch.trapezoid(res.grid * res.density, res.grid))
    second = float(torch.trapezoid(res.grid**2 * res.density, res.grid))
    assert mean == pytest.approx(res.moment(1), abs=1e-4 * float(H.abs().max()))
    assert second == pytest.approx(res.moment(2) + res.sigma**2, rel=1e-3)


def test_density_multi_batch_equals_one_batch(problem):
    model, x, y, _ = problem
    a = density(objective(model, x, y), n_runs=3, n_iter=12)
    b = density(objective(model, x, y, n_batches=3), n_runs=3, n_iter=12)
    torch.testing.assert_close(b.nodes, a.nodes, rtol=1e-8, atol=1e-10)
    assert b.cost.hvps == 36 and b.cost.samples == 12 * 40  # 3 runs per data pass


def test_density_explicit_grid_sigma_and_plot(problem, tmp_path):
    model, x, y, _ = problem
    res = density(objective(model, x, y), n_runs=2, n_iter=10, sigma=0.01, grid=[-1.0, 0.0, 1.0])
    assert res.grid.tolist() == [-1.0, 0.0, 1.0] and res.sigma == 0.01
    res = density(objective(model, x, y), n_runs=2, n_iter=10)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("d.png", "d.html"):  # links planted at the outputs are replaced, their target untouched
        (tmp_path / name).symlink_to(victim)
    fig = res.plot(path=str(tmp_path / "d.png"))
    assert (tmp_path / "d.png").stat().st_size > 1000 and fig is not None
    res.plot(backend="plotly", path=str(tmp_path / "d.html"))
    assert "cdn.plot.ly" not in (tmp_path / "d.html").read_text()[:2000]
    assert victim.read_text() == "precious" and not (tmp_path / "d.png").is_symlink()
    back = DensityResult.load(res.save(tmp_path / "dens"))
    assert torch.equal(back.density, res.density) and back.cost.hvps == res.cost.hvps


@pytest.mark.parametrize(
    ("fn", "kwargs", "match"),
    [
        (trace, {"n_samples": 0}, r"n_samples: expected an integer >= 1, got 0"),
        (trace, {"method": "hutch++", "n_samples": 2}, r"n_samples: expected an integer >= 3, got 2"),
        (trace, {"method": "girard"}, r"method: expected one of 'hutchinson', 'hutch\+\+', got 'girard'"),
        (trace, {"block_size": 0}, r"block_size: expected an integer >= 1, got 0"),
        (density, {"n_iter": 0}, r"n_iter: expected an integer >= 1, got 0"),
        (density, {"n_runs": 0}, r"n_runs: expected an integer >= 1, got 0"),
        (density, {"sigma": -1.0}, r"sigma: expected a finite number > 0, got -1.0"),
        (density, {"grid": [1.0]}, r"grid: expected a number of points >= 2 or a 1-D array"),
        (density, {"layers": ["nope"]}, r"layers: expected .* got 'nope' \(matches no trainable parameter\)"),
    ],
    ids=lambda v: getattr(v, "__name__", str(v))[:25],
)
def test_bad_input_messages(problem, fn, kwargs, match):
    model, x, y, _ = problem
    with pytest.raises(ValueError, match=match):
        fn(objective(model, x, y), **kwargs)


@pytest.mark.parametrize("call", [lambda o: trace(o, n_samples=5), lambda o: density(o, n_runs=2, n_iter=5)])
def test_model_unchanged(call):
    model = tiny_bn_mlp().train()
    x, y = data()
    before = snapshot(model)
    call(objective(model, x, y, n_batches=2))
    assert_same_state(before, snapshot(model))


def test_layers_trace_is_sub_hessian_trace(problem):
    model, x, y, _ = problem
    names = ["3.weight", "3.bias"]
    Hs = dense_hessian(model, x, y, names)
    res = trace(objective(model, x, y), method="hutch++", n_samples=3 * Hs.shape[0] + 3, layers=["3"])
    assert res.value == pytest.approx(float(torch.trace(Hs)), rel=1e-9)
    assert isinstance(res, TraceResult) and res.settings["layers"] == names
