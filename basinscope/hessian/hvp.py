"""The Hessian of an :class:`~basinscope.objective.Objective` as a linear operator on flat vectors.

H(θ)·v is computed by double backpropagation (Pearlmutter 1994): with g(θ) = ∇f(θ) built with
``create_graph=True``, H·v = ∇_θ ⟨g(θ), v⟩. Two strategies, chosen by measurement (docs/benchmarks/hessian.md):

* ``graph="cached"``: build the gradient graph of every batch once and reuse it for every product (what
  PyHessian does for one batch). Each product is then one backward pass through the stored graph. On a
  ResNet-20 on CPU this was the fastest variant (one HVP ≈ 0.9 plain gradients), at the price of keeping
  the double-backward graph of all the data in memory.
* ``graph="stream"``: for each batch, build its gradient graph, apply it to all the vectors of the request
  and free it. Memory is one batch's graph; several vectors per data pass share the forward/backward.

``graph="auto"`` caches when the data are one batch and streams otherwise.

With a distributed objective (``Objective(..., distributed=True)``) each rank applies the Hessian of its shard
and one all-reduce of the ``dim × m`` result sums the shards' parts (the weights n_b/N already use the total N).

While the gradient graph is built, eval-mode BatchNorm and convolutions are computed in forms whose double
backward is cheaper (:mod:`basinscope.hessian._second_order`; same function; HVPs 1.6-1.8x faster on a
ResNet-20 in our measurements).

The operator works on flat float64 vectors (what Lanczos needs) and converts to the model's dtype for the
products. ``layers`` restricts the coordinates to a subset of the parameters: the operator is then the
principal sub-Hessian ∂²f/∂θ_S² (the other parameters are held fixed at their values).
:meth:`HessianOperator.to_scipy` wraps it as a ``scipy.sparse.linalg.LinearOperator`` for SciPy's solvers.
Attention layers run on their math kernel inside the products (:mod:`basinscope.hessian._second_order`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import _data_parallel as DP
from .. import params as P
from .._checks import check_choice, fail
from ..objective import Objective
from ._second_order import second_order_mode

if TYPE_CHECKING:
    from scipy.sparse.linalg import LinearOperator

__all__ = ["HessianOperator", "select_names"]


def select_names(names: Sequence[str], layers: Sequence[str] | str | None) -> list[str]:
    """The parameter names selected by ``layers`` (exact names or module prefixes such as ``"layer1"``).

    Example:
        >>> select_names(["0.weight", "0.bias", "2.weight"], ["0"])
        ['0.weight', '0.bias']
    """
    if layers is None:
        return list(names)
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, Sequence) or len(layers) == 0:
        fail("layers", "a non-empty list of parameter names or prefixes", layers, exc=TypeError)
    chosen: set[str] = set()
    for entry in layers:
        if not isinstance(entry, str):
            fail("layers", "parameter names or prefixes (strings)", entry, exc=TypeError)
        prefix = entry.rstrip(".")
        hit = [n for n in names if n == prefix or n.startswith(prefix + ".") or prefix == ""]
        if not hit:
            fail(
                "layers",
                "parameter names or module prefixes of the trainable parameters",
                f"{entry!r} (matches no trainable parameter)",
                raw=True,
            )
        chosen.update(hit)
    return [n for n in names if n in chosen]


class HessianOperator:
    """H(θ) (or a principal sub-Hessian) of an objective, applied to flat vectors.

    Args:
        obj: the objective; its ``cost`` counts every product (``hvps``) and data pass.
        params: the point θ (default: the model's current parameters).
        layers: parameter names or prefixes restricting the coordinates (default: all).
        graph: ``"auto"`` | ``"cached"`` | ``"stream"`` (module docstring).
        fast_second_order: build the gradient graph with the cheaper double-backward forms of
            :mod:`~basinscope.hessian._second_order` (default); ``False`` uses PyTorch's own formulas.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope.objective import Objective
        >>> model = torch.nn.Linear(3, 2).double()
        >>> obj = Objective(model, F.cross_entropy, (torch.randn(8, 3, dtype=torch.float64), torch.randint(0, 2, (8,))))
        >>> op = HessianOperator(obj)
        >>> op.matmat(torch.eye(op.dim, dtype=torch.float64)).shape   # the dense Hessian, column by column
        torch.Size([8, 8])
    """

    def __init__(
        self,
        obj: Objective,
        params: Mapping[str, torch.Tensor] | None = None,
        *,
        layers: Sequence[str] | str | None = None,
        graph: str = "auto",
        fast_second_order: bool = True,
    ) -> None:
        if not isinstance(obj, Objective):
            fail("obj", "a basinscope.Objective", obj, exc=TypeError)
        check_choice("graph", graph, ("auto", "cached", "stream"))
        self.obj = obj
        self.point = obj._resolve(params)
        self.names = select_names(obj.names, layers)
        self.shapes = [self.point[n].shape for n in self.names]
        self.numels = [self.point[n].numel() for n in self.names]
        self.dim = sum(self.numels)
        self.dtype = self.point[self.names[0]].dtype
        self.device = self.point[self.names[0]].device
        n_batches = 1 if obj.is_function else (len(obj._batches) if obj._batches is not None else 2)
        if obj.distributed and graph == "auto":
            # every rank must choose alike (the choice steers the estimators): cache when each rank has one batch
            n_batches = max(DP.all_gather_objects(n_batches))
        self.graph = ("cached" if n_batches == 1 else "stream") if graph == "auto" else graph
        self.fast_second_order = bool(fast_second_order)
        self._grads: list[torch.Tensor] | None = None
        self._leaves: list[torch.Tensor] | None = None

    # ------------------------------------------------------------------ conversions
    def to_params(self, flat: torch.Tensor) -> P.Params:
        """A flat vector as a parameter dict over the selected names (model dtype and device)."""
        parts = torch.split(flat, self.numels)
        return {n: t.reshape(s).to(self.dtype) for n, t, s in zip(self.names, parts, self.shapes)}

    def to_flat(self, vector: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A parameter dict over the selected names as a flat float64 vector."""
        return torch.cat([vector[n].reshape(-1).to(device=self.device, dtype=torch.float64) for n in self.names])

    def random(self, m: int, seed: int, distribution: str = "normal") -> torch.Tensor:
        """``m`` random flat float64 vectors ``(dim, m)`` from a CPU generator (same draws on every device)."""
        gen = torch.Generator().manual_seed(seed)
        if distribution == "normal":
            z = torch.randn(self.dim, m, generator=gen, dtype=torch.float64)
        else:
            z = torch.randint(0, 2, (self.dim, m), generator=gen).to(torch.float64).mul_(2).sub_(1)
        return z.to(self.device)

    # ------------------------------------------------------------------ products
    def _leaves_and_params(self) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        leaves = [self.point[n].detach().requires_grad_(True) for n in self.names]
        p = dict(self.point)
        p.update(zip(self.names, leaves))
        return leaves, p

    def _gradient_with_graph(self, term: torch.Tensor, leaves: list[torch.Tensor]) -> list[torch.Tensor | None]:
        return list(torch.autograd.grad(term, leaves, create_graph=True, allow_unused=True))

    def _build_cache(self) -> None:
        leaves, p = self._leaves_and_params()
        total: list[torch.Tensor | None] = [None] * len(leaves)
        with self.obj._measuring(), torch.enable_grad(), second_order_mode(self.fast_second_order):
            for term, n_b in self.obj._batch_terms(p):
                for i, gi in enumerate(self._gradient_with_graph(term, leaves)):
                    if gi is not None:
                        total[i] = gi if total[i] is None else total[i] + gi
                self.obj.cost.samples += n_b
        self.obj.cost.forwards += 1
        self.obj.cost.gradients += 1
        self._leaves, self._grads = leaves, total

    @staticmethod
    def _apply_graph(
        grads: list[torch.Tensor | None], leaves: list[torch.Tensor], columns: list[list[torch.Tensor]], retain: bool
    ) -> list[list[torch.Tensor]]:
        live = [j for j, g in enumerate(grads) if g is not None and g.requires_grad]
        out = []
        for i, col in enumerate(columns):
            if not live:
                out.append([torch.zeros_like(leaf) for leaf in leaves])
                continue
            hv = torch.autograd.grad(
                [grads[j] for j in live],
                leaves,
                grad_outputs=[col[j] for j in live],
                retain_graph=retain or i < len(columns) - 1,
                allow_unused=True,
            )
            out.append([torch.zeros_like(leaf) if h is None else h for h, leaf in zip(hv, leaves)])
        return out

    def matmat(self, vectors: torch.Tensor) -> torch.Tensor:
        """H·V for the columns of ``V`` (shape ``(dim,)`` or ``(dim, m)``); float64 result of the same shape.

        All columns are applied in one data pass (``graph="stream"``) or on the one cached graph."""
        single = vectors.dim() == 1
        V = vectors.reshape(self.dim, -1)
        m = V.shape[1]
        columns = [
            [t.reshape(s).to(self.dtype) for t, s in zip(torch.split(V[:, i], self.numels), self.shapes)]
            for i in range(m)
        ]
        if self.graph == "cached":
            if self._grads is None:
                self._build_cache()
            with torch.enable_grad():
                results = self._apply_graph(self._grads, self._leaves, columns, retain=True)
        else:
            leaves, p = self._leaves_and_params()
            results = None
            with self.obj._measuring(), torch.enable_grad(), second_order_mode(self.fast_second_order):
                for term, n_b in self.obj._batch_terms(p):
                    g = self._gradient_with_graph(term, leaves)
                    part = self._apply_graph(g, leaves, columns, retain=False)
                    if results is None:
                        results = part
                    else:
                        for acc, new in zip(results, part):
                            torch._foreach_add_(acc, new)
                    self.obj.cost.samples += n_b
            self.obj.cost.forwards += 1
            self.obj.cost.gradients += 1
        self.obj.cost.hvps += m
        # written piece by piece into the float64 result: no concatenated model-dtype copy on the way
        out = torch.empty(self.dim, m, dtype=torch.float64, device=self.device)
        for i, r in enumerate(results):
            for piece, h in zip(torch.split(out[:, i], self.numels), r):
                piece.copy_(h.detach().reshape(-1))
            r.clear()
        # distributed objective: each rank holds its shard's part of H·V; one all-reduce of dim·m floats
        self.obj._sum_over_ranks([out])
        return out[:, 0] if single else out

    def gradient(self) -> torch.Tensor:
        """∇f(θ) over the selected coordinates as a flat float64 vector.

        Free with ``graph="cached"`` (the cached graph's outputs are the gradient); one data pass otherwise."""
        if self.graph == "cached":
            if self._grads is None:
                self._build_cache()
            assert self._grads is not None and self._leaves is not None
            parts = [torch.zeros_like(leaf) if g is None else g.detach() for g, leaf in zip(self._grads, self._leaves)]
            flat = torch.cat([t.reshape(-1) for t in parts]).to(torch.float64)
            self.obj._sum_over_ranks([flat])  # the cached graph is this rank's shard only
            return flat
        g = self.obj.grad(self.point)
        return torch.cat([g[n].reshape(-1) for n in self.names]).to(torch.float64)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """H·v for one flat vector."""
        return self.matmat(v.reshape(-1))

    def to_scipy(self) -> LinearOperator:
        """This operator as a :class:`scipy.sparse.linalg.LinearOperator` of shape ``(dim, dim)``, float64.

        NumPy vectors and matrices in, NumPy float64 out; every product is one (or, for a matrix, one per
        column, all in one data pass) Hessian-vector product counted in ``obj.cost.hvps``. H is symmetric, so
        the adjoint products are the same. The model is not changed (as for :meth:`matmat`), but a cached graph
        stays alive until :meth:`release`.

        Example:
            >>> import scipy.sparse.linalg as sla, torch, torch.nn.functional as F
            >>> from basinscope.objective import Objective
            >>> model = torch.nn.Linear(3, 2).double()
            >>> x, y = torch.randn(16, 3, dtype=torch.float64), torch.randint(0, 2, (16,))
            >>> op = HessianOperator(Objective(model, F.cross_entropy, (x, y)))
            >>> top = sla.eigsh(op.to_scipy(), k=1, which="LA", return_eigenvectors=False)
            >>> op.obj.cost.hvps > 0
            True
        """
        from scipy.sparse.linalg import LinearOperator

        def apply(x: np.ndarray) -> np.ndarray:
            v = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(self.dim, -1), device=self.device)
            out = self.matmat(v).cpu().numpy()
            return out.reshape(np.shape(x)) if np.ndim(x) == 1 else out

        return LinearOperator(
            (self.dim, self.dim), matvec=apply, rmatvec=apply, matmat=apply, rmatmat=apply, dtype=np.float64
        )

    def release(self) -> None:
        """Free the cached graph (the operator rebuilds it on the next product)."""
        self._grads = None
        self._leaves = None

    def __enter__(self) -> HessianOperator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
