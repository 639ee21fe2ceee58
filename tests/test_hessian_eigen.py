"""top_eigenvalues and the HVP operator vs the dense float64 Hessian (torch.func.hessian + eigvalsh)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from basinscope.hessian import EigenResult, HessianOperator, LanczosRuns, ritz, select_names, top_eigenvalues
from basinscope.objective import Objective

from .conftest import assert_same_state, snapshot
from .test_hessian_helpers import data, dense_hessian, objective, tiny_bn_mlp, tiny_mlp


@pytest.fixture(scope="module")
def problem(device):
    """Model and data on the test device; the dense reference Hessian computed there, compared on the CPU."""
    model = tiny_bn_mlp().to(device)
    x, y = (t.to(device) for t in data())
    H = dense_hessian(model, x, y).cpu()
    return model, x, y, H, torch.linalg.eigvalsh(H)


def _flat(vec: dict) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).to("cpu", torch.float64) for t in vec.values()])


@pytest.mark.parametrize("k", [1, 3, 5], ids=lambda k: f"k{k}")
def test_lanczos_top_k_vs_dense(problem, k):
    model, x, y, H, ev = problem
    res = top_eigenvalues(objective(model, x, y), k=k)
    ref = ev.flip(0)[:k]
    rel = (torch.tensor(res.eigenvalues, dtype=torch.float64) - ref).abs() / ref.abs()
    assert rel.max() <= 1e-6, (res.eigenvalues, ref)
    assert res.converged and res.cost.hvps == res.iterations[0] and res.cost.seconds > 0
    evals, evecs = torch.linalg.eigh(H)
    scale = float(ev.abs().max())
    for i, (lam, vec, r, est) in enumerate(zip(res.eigenvalues, res.eigenvectors, res.residuals, res.error_estimates)):
        y_ = _flat(vec)
        assert abs(float(y_.norm()) - 1) < 1e-8
        actual = float((H @ y_ - lam * y_).norm())
        assert actual == pytest.approx(r, rel=1e-6, abs=1e-12 * scale)  # the recurrence's residual is the true one
        assert abs(lam - float(ref[i])) <= max(3 * est, 1e-13 * scale)  # the error estimate held
        # Davis-Kahan: sin of the angle to the true eigenvector <= residual / gap
        j = len(evals) - 1 - i
        gap = float(torch.cat([evals[:j], evals[j + 1 :]]).sub(evals[j]).abs().min())
        sin = float((1 - (evecs[:, j] @ y_) ** 2).clamp_min(0).sqrt())
        assert sin <= 1.01 * actual / gap + 1e-7


def test_lanczos_smallest_vs_dense(problem):
    model, x, y, _H, ev = problem
    res = top_eigenvalues(objective(model, x, y), k=2, which="smallest")
    assert ev[0] < 0, "the reference problem must have a negative eigenvalue"
    torch.testing.assert_close(torch.tensor(res.eigenvalues, dtype=torch.float64), ev[:2], rtol=1e-6, atol=0)


@pytest.mark.parametrize("which", ["largest", "smallest"])
def test_power_method_vs_dense(problem, which):
    model, x, y, _H, ev = problem
    res = top_eigenvalues(objective(model, x, y), k=2, method="power", which=which, tol=1e-12, max_iter=3000)
    # power iteration finds the largest magnitude; "smallest" the most negative
    ref = ev[ev.abs().argsort(descending=True)][:2] if which == "largest" else ev[:2]
    torch.testing.assert_close(torch.tensor(res.eigenvalues, dtype=torch.float64), ref, rtol=1e-5, atol=0)
    if which == "largest":
        assert res.cost.hvps == sum(res.iterations)
    else:  # plus the power run that finds the shift |λ_max|
        assert res.cost.hvps > sum(res.iterations)


def test_power_default_tolerance_like_pyhessian(problem):
    """PyHessian's defaults (tol 1e-3, 100 iterations) give ~1e-3-accurate values; Lanczos is far better."""
    model, x, y, _H, ev = problem
    obj = objective(model, x, y)
    power = top_eigenvalues(obj, k=1, method="power")
    assert abs(power.eigenvalues[0] - float(ev[-1])) / float(ev[-1]) < 2e-2
    assert power.settings["tol"] == 1e-3 and power.settings["max_iter"] == 100


def test_function_objective_closed_form():
    """f(x) = ½ xᵀAx has Hessian A: eigenvalues in closed form."""
    A = torch.diag(torch.tensor([5.0, 3.0, 1.0, -0.5, -2.0], dtype=torch.float64))
    Q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    A = Q @ A @ Q.T
    obj = Objective.from_function(lambda t: 0.5 * t @ A @ t, torch.ones(5, dtype=torch.float64))
    top = top_eigenvalues(obj, k=2)
    low = top_eigenvalues(obj, k=1, which="smallest")
    assert top.eigenvalues == pytest.approx([5.0, 3.0], rel=1e-10)
    assert low.eigenvalues == pytest.approx([-2.0], rel=1e-10)


@pytest.mark.parametrize("graph", ["cached", "stream"])
@pytest.mark.parametrize("start", ["gradient", "random"])
def test_start_vectors_vs_dense(problem, graph, start):
    model, x, y, _H, ev = problem
    res = top_eigenvalues(objective(model, x, y, n_batches=2), k=3, graph=graph, start=start)
    assert res.settings["start"] == start
    rel = (torch.tensor(res.eigenvalues, dtype=torch.float64) - ev.flip(0)[:3]).abs() / ev.flip(0)[:3]
    assert rel.max() <= 1e-6
    # the gradient costs one data pass when streaming, none on a cached graph
    extra = 1 if (start, graph) == ("gradient", "stream") else 0
    assert res.cost.gradients == extra + (1 if graph == "cached" else res.cost.hvps)


def test_start_auto_choice(problem):
    model, x, y, _H, _ev = problem
    one, two = objective(model, x, y), objective(model, x, y, n_batches=2)
    assert top_eigenvalues(one, k=1).settings["start"] == "gradient"  # free on the cached graph
    assert top_eigenvalues(two, k=1).settings["start"] == "random"  # would cost a pass
    assert top_eigenvalues(one, k=1, which="smallest").settings["start"] == "random"
    assert top_eigenvalues(one, k=1, method="power", start="gradient").settings["start"] == "random"


def _quadratic(point: torch.Tensor):
    A = torch.diag(torch.linspace(1.0, 2.0, 40, dtype=torch.float64))
    Q, _ = torch.linalg.qr(torch.randn(40, 40, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    A = Q @ A @ Q.T
    return A, Objective.from_function(lambda t: 0.5 * t @ A @ t, point)


def test_gradient_start_uses_the_gradient():
    """f = ½θᵀAθ at θ = the top eigenvector: the gradient is that eigenvector, and the gradient start converges
    in fewer products than the random one, to the same eigenvalue."""
    A, _ = _quadratic(torch.zeros(40, dtype=torch.float64))
    evals, evecs = torch.linalg.eigh(A)
    _, obj = _quadratic(evecs[:, -1].clone())
    grad = top_eigenvalues(obj, k=1, start="gradient")
    rand = top_eigenvalues(obj, k=1, start="random")
    assert grad.eigenvalues[0] == pytest.approx(float(evals[-1]), rel=1e-10)
    assert rand.eigenvalues[0] == pytest.approx(float(evals[-1]), rel=1e-10)
    assert grad.cost.hvps < rand.cost.hvps


def test_gradient_start_at_a_stationary_point_is_the_random_start():
    _, obj = _quadratic(torch.zeros(40, dtype=torch.float64))  # the gradient is 0
    grad = top_eigenvalues(obj, k=2, start="gradient")
    rand = top_eigenvalues(obj, k=2, start="random")
    assert grad.eigenvalues == rand.eigenvalues and grad.cost.hvps == rand.cost.hvps


@pytest.mark.parametrize("graph", ["cached", "stream"])
def test_multi_batch_same_spectrum_as_one_batch(problem, graph):
    model, x, y, _H, _ev = problem
    one = top_eigenvalues(objective(model, x, y), k=3)
    # uneven batches (14, 13, 13): the sample-weighted mean loss is batching-independent
    many = top_eigenvalues(objective(model, x, y, n_batches=3), k=3, graph=graph)
    assert many.settings["graph"] == graph
    torch.testing.assert_close(torch.tensor(many.eigenvalues), torch.tensor(one.eigenvalues), rtol=1e-9, atol=0)


def test_graph_auto_choice(problem):
    model, x, y, _, _ = problem
    assert HessianOperator(objective(model, x, y)).graph == "cached"
    assert HessianOperator(objective(model, x, y, n_batches=2)).graph == "stream"


def test_operator_matmat_is_dense_hessian_and_counts(problem):
    model, x, y, H, _ = problem
    obj = objective(model, x, y, n_batches=2)
    op = HessianOperator(obj)
    V = torch.randn(obj.dim, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    before = obj.cost.copy()
    torch.testing.assert_close(op.matmat(V.to(x.device)).cpu(), H @ V, rtol=1e-10, atol=1e-12)
    spent = obj.cost - before
    assert spent.hvps == 3 and spent.samples == obj.num_samples  # three vectors, one data pass


@pytest.mark.parametrize("layers", [["0"], ["3.weight"], ["1", "3.bias"]], ids=["prefix", "name", "mixed"])
def test_layers_subset_vs_dense_sub_hessian(problem, layers):
    model, x, y, _, _ = problem
    names = select_names([n for n, _ in model.named_parameters()], layers)
    Hs = dense_hessian(model, x, y, names).cpu()
    evs = torch.linalg.eigvalsh(Hs)
    obj = objective(model, x, y)
    k = min(2, Hs.shape[0] - 1)
    res = top_eigenvalues(obj, k=k, layers=layers)
    torch.testing.assert_close(torch.tensor(res.eigenvalues, dtype=torch.float64), evs.flip(0)[:k], rtol=1e-6, atol=0)
    assert list(res.eigenvectors[0]) == names


def test_select_names_prefixes():
    names = ["0.weight", "0.bias", "10.weight", "1.weight"]
    assert select_names(names, ["1"]) == ["1.weight"]  # "1" is a module prefix, not a string prefix of "10"
    assert select_names(names, "0.") == ["0.weight", "0.bias"]


def test_lanczos_runs_diagonal_and_breakdown_restart():
    A = torch.diag(torch.tensor([4.0, 4.0, 2.0, 1.0], dtype=torch.float64))  # repeated eigenvalue
    runs = LanczosRuns(lambda V: A @ V, torch.ones(4, 1, dtype=torch.float64), 4, on_breakdown="restart")
    while runs.step():
        pass
    theta, _, _ = ritz(runs, 0)
    torch.testing.assert_close(theta, torch.tensor([1.0, 2.0, 4.0, 4.0], dtype=torch.float64))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"k": 0}, ValueError, r"k: expected an integer >= 1, got 0"),
        ({"k": 63}, ValueError, r"k: expected an integer < the dimension of the Hessian \(63\), got 63"),
        ({"k": 1.5}, TypeError, r"k: expected an integer, got 1.5"),
        ({"max_iter": 0}, ValueError, r"max_iter: expected an integer >= 1, got 0"),
        ({"k": 3, "max_iter": 2}, ValueError, r"max_iter: expected an integer >= k=3 for Lanczos"),
        ({"tol": 0.0}, ValueError, r"tol: expected a finite number > 0, got 0.0"),
        ({"method": "arnoldi"}, ValueError, r"method: expected one of 'lanczos', 'power', got 'arnoldi'"),
        ({"which": "middle"}, ValueError, r"which: expected one of 'largest', 'smallest', got 'middle'"),
        ({"layers": ["fc"]}, ValueError, r"layers: expected parameter names or module prefixes .* got 'fc'"),
        ({"graph": "disk"}, ValueError, r"graph: expected one of 'auto', 'cached', 'stream', got 'disk'"),
        ({"start": "ones"}, ValueError, r"start: expected one of 'auto', 'gradient', 'random', got 'ones'"),
        ({"backend": "pyhessian"}, ValueError, r"backend: expected 'native' for method='lanczos'"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_bad_input_messages(problem, kwargs, exc, match):
    model, x, y, _, _ = problem
    pytest.importorskip("pyhessian") if kwargs.get("backend") == "pyhessian" else None
    with pytest.raises(exc, match=match):
        top_eigenvalues(objective(model, x, y), **kwargs)


def test_obj_type_message():
    with pytest.raises(TypeError, match=r"obj: expected a basinscope.Objective, got Linear"):
        top_eigenvalues(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_model_unchanged(method):
    model = tiny_bn_mlp().train()
    x, y = data()
    F.cross_entropy(model(x), y).backward()  # existing grads must survive
    before = snapshot(model)
    top_eigenvalues(objective(model, x, y, n_batches=2), k=2, method=method)
    assert_same_state(before, snapshot(model))


def test_model_unchanged_on_error_midway():
    model = tiny_mlp()
    x, y = data()
    calls = {"n": 0}

    def flaky(out, target):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("boom")
        return F.cross_entropy(out, target)

    obj = Objective(model, flaky, list(zip(x.split(20), y.split(20))))
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        top_eigenvalues(obj, k=2)
    assert_same_state(before, snapshot(model))


def test_result_saves_and_loads(problem, tmp_path):
    model, x, y, _, _ = problem
    res = top_eigenvalues(objective(model, x, y), k=2, seed=3)
    back = EigenResult.load(res.save(tmp_path / "eig"))
    assert back.eigenvalues == res.eigenvalues and back.cost.hvps == res.cost.hvps
    for a, b in zip(back.eigenvectors, res.eigenvectors):
        assert all(torch.equal(a[k], b[k]) for k in b)


def test_seed_reproducible(problem):
    model, x, y, _, _ = problem
    a = top_eigenvalues(objective(model, x, y), k=2, method="power", seed=5)
    b = top_eigenvalues(objective(model, x, y), k=2, method="power", seed=5)
    assert a.eigenvalues == b.eigenvalues
