"""``backend="pyhessian"``: the same request run through the PyHessian package, for side-by-side checks.

PyHessian 0.1 (Yao et al. 2020; GPL-3, an optional extra: ``pip install basinscope[pyhessian]``) works on the
model in place: it forces ``model.eval()``, writes ``.grad`` (with a graph) through
``backward(create_graph=True)``, draws from the global RNG and, in ``density``, calls ``torch.eig``, which
torch removed (it now raises). Every call here therefore runs inside

* :func:`~basinscope._state.preserve_state`: parameters, buffers, grads, modes and ``requires_grad`` restored
  exactly (also on error);
* ``torch.random.fork_rng`` seeded with ``seed``: the caller's RNG stream is untouched;
* :func:`torch_eig_shim`: ``torch.eig`` answered by ``torch.linalg.eigh`` (the Lanczos matrix is symmetric)
  for the duration of the call, the original restored afterwards;
* :func:`_counting`: PyHessian's product functions wrapped to count HVPs, restored afterwards;
* :func:`~basinscope.hessian._second_order.math_attention`: attention on its twice-differentiable math backend.

Parameter subsets (``layers``) set ``requires_grad=False`` on the other parameters for the call, which is how
PyHessian selects coordinates (it takes every parameter with ``requires_grad``).
"""

from __future__ import annotations

import contextlib
import importlib
import time
import warnings
from collections.abc import Iterator

import torch

from .._checks import fail
from .._state import preserve_state
from ..objective import Cost, Objective
from ._second_order import math_attention
from .hvp import HessianOperator
from .results import EigenResult, TraceResult

__all__ = ["torch_eig_shim"]


def _eig(input: torch.Tensor, eigenvectors: bool = False, *, out=None):
    """``torch.eig`` of torch < 1.9 for a symmetric matrix: eigenvalues as (n, 2) real/imaginary columns."""
    values, vectors = torch.linalg.eigh(input)
    pairs = torch.stack([values, torch.zeros_like(values)], dim=1)
    return pairs, (vectors if eigenvectors else torch.empty(0, dtype=input.dtype, device=input.device))


@contextlib.contextmanager
def torch_eig_shim() -> Iterator[None]:
    """Provide the removed ``torch.eig`` (symmetric input) inside the block; restore what was there after."""
    missing = object()
    old = vars(torch).get("eig", missing)
    torch.eig = _eig
    try:
        yield
    finally:
        if old is missing:
            del torch.eig
        else:
            torch.eig = old


class _Counter:
    def __init__(self) -> None:
        self.hvps = 0
        self.passes = 0
        self.iterations: dict[int, int] = {}


@contextlib.contextmanager
def _counting(module) -> Iterator[_Counter]:
    """Wrap PyHessian's module-level product and orthonormalization functions to count their calls."""
    counter = _Counter()
    old_hvp, old_orth = module.hessian_vector_product, module.orthnormal

    def hvp(*a, **kw):
        counter.hvps += 1
        return old_hvp(*a, **kw)

    def orth(w, v_list):
        counter.iterations[len(v_list)] = counter.iterations.get(len(v_list), 0) + 1
        return old_orth(w, v_list)

    module.hessian_vector_product, module.orthnormal = hvp, orth
    try:
        yield counter
    finally:
        module.hessian_vector_product, module.orthnormal = old_hvp, old_orth


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """PyHessian draws its vectors with ``torch.randn(shape)``: make them the model's dtype for the call."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@contextlib.contextmanager
def _session(obj: Objective, op: HessianOperator, seed: int):
    """Yield ``(hessian instance, counter, cost dict)``; everything PyHessian changes is put back on exit."""
    try:
        # ``pyhessian.hessian`` the attribute is the class (re-exported); the module is what we patch
        module = importlib.import_module("pyhessian.hessian")
    except ImportError:
        fail("backend", "the PyHessian package to be installed (pip install pyhessian)", "'pyhessian'", raw=True)
    if obj.is_function:
        fail("backend", "'native' for a function objective (PyHessian needs a model)", "'pyhessian'", raw=True)
    if obj.mode != "eval":
        fail("backend", "'native' for mode='train' (PyHessian forces model.eval())", "'pyhessian'", raw=True)
    model = obj.model
    device = op.device
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    cost = {"seconds": 0.0}
    with (
        _default_dtype(op.dtype),
        preserve_state(model),
        torch.random.fork_rng(devices=devices),
        torch_eig_shim(),
        math_attention(),  # PyHessian differentiates twice: fused attention kernels cannot be
        _counting(module) as counter,
    ):
        torch.manual_seed(seed)
        named = dict(model.named_parameters())
        with torch.no_grad():
            for n in obj.names:
                if not torch.equal(named[n], op.point[n]):
                    named[n].copy_(op.point[n])
        selected = set(op.names)
        for n, p in named.items():
            p.requires_grad_(n in selected)
            p.grad = None
        batches = obj.batches
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*create_graph=True will create a reference cycle.*")
            t0 = time.perf_counter()
            if len(batches) == 1:
                h = module.hessian(model, obj.loss_fn, data=batches[0], cuda=device.type == "cuda")
            else:
                h = module.hessian(model, obj.loss_fn, dataloader=batches, cuda=device.type == "cuda")
                inner = h.dataloader_hv_product

                def counted(v):
                    counter.hvps += 1
                    return inner(v)

                h.dataloader_hv_product = counted
            yield h, counter, cost
            cost["seconds"] = time.perf_counter() - t0
        for p in named.values():
            p.grad = None  # break the parameter ↔ graph cycle before the guard restores the grads
    n_batches = len(obj.batches)
    single = n_batches == 1
    c = Cost(
        forwards=1 if single else counter.hvps,
        gradients=1 if single else counter.hvps,
        hvps=counter.hvps,
        samples=obj.num_samples * (1 if single else counter.hvps),
        seconds=cost["seconds"],
    )
    obj.cost = obj.cost + Cost(**{**c.as_dict(), "seconds": 0.0})
    cost["cost"] = c


def pyhessian_eigenvalues(obj, op, *, k, tol, max_iter, seed, settings) -> EigenResult:
    with _session(obj, op, seed) as (h, counter, cost):
        values, vectors = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=k)
        vectors = [{n: t.detach().clone() for n, t in zip(op.names, v)} for v in vectors]
    iterations = [counter.iterations.get(i, 0) for i in range(k)]
    return EigenResult(
        eigenvalues=[float(v) for v in values],
        eigenvectors=vectors,
        residuals=[float("nan")] * k,
        error_estimates=[float("nan")] * k,
        converged=all(i < max_iter for i in iterations),
        iterations=iterations,
        which="largest",
        method="power",
        backend="pyhessian",
        settings=settings,
        cost=cost["cost"],
    )


def pyhessian_trace(obj, op, *, n_samples, seed, settings) -> TraceResult:
    with _session(obj, op, seed) as (h, _, cost):
        values = h.trace(maxIter=n_samples, tol=1e-3)
    samples = torch.tensor(values, dtype=torch.float64)
    if not bool(torch.isfinite(samples).all()):
        first = int((~torch.isfinite(samples)).nonzero()[0, 0])
        fail(
            "trace",
            "finite Hessian-vector products",
            f"a non-finite one for PyHessian's probe {first + 1} of {len(values)} "
            "(the loss or the model produce NaN/inf at this point)",
            raw=True,
        )
    se = samples.std(unbiased=True) / len(values) ** 0.5 if len(values) > 1 else torch.tensor(float("inf"))
    return TraceResult(
        value=float(samples.mean()),
        standard_error=float(se),
        samples=samples,
        method="hutchinson",
        backend="pyhessian",
        settings={**settings, "pyhessian_tol": 1e-3},
        cost=cost["cost"],
    )


def pyhessian_density(obj, op, *, n_runs, n_iter, seed):
    with _session(obj, op, seed) as (h, _, cost):
        eigen_list, weight_list = h.density(iter=n_iter, n_v=n_runs)
    nodes = torch.tensor([list(map(float, e)) for e in eigen_list], dtype=torch.float64)
    weights = torch.tensor([list(map(float, w)) for w in weight_list], dtype=torch.float64)
    return nodes, weights, cost["cost"]
