"""The one core object: an objective f(θ) that every measurement evaluates.

An :class:`Objective` binds a model, a loss and data (or a plain function of a tensor) and evaluates, at any
point ``params`` of weight space,

* ``loss(params)``                    f(θ) = (1/N) Σ_j ℓ(model(x_j; θ), y_j), the exact sample-weighted mean,
* ``grad(params)``                    ∇f(θ),
* ``hvp(v, params)``                  H(θ)·v (one vector or several per data pass),
* ``per_example_grads(params)``       ∇ℓ_j(θ) for every example j of a batch (``torch.func.vmap``),
* ``evaluate(params)``                mean loss and error rate / accuracy (test sets),

with ``torch.func.functional_call``: the model's tensors are never written. Each evaluation is counted in
``obj.cost`` (forward passes, gradients, HVPs, per-example gradients, samples seen, seconds) so every result
reports what it spent and methods can be compared at equal gradient calls.

Losses are combined per batch as Σ_b (n_b/N)·ℓ_b, where ℓ_b is ``loss_fn``'s mean over batch b, so results
do not depend on how the data are batched (a short last batch gets its true weight n_b/N). ``loss_fn`` must
therefore return the *mean* over its batch (PyTorch's default ``reduction="mean"``).

BatchNorm and dropout: measurements run in eval mode by default (running statistics, no dropout). With
``mode="train"`` they use batch statistics and active dropout, on private copies of the buffers, so the
model's running statistics are never updated. :meth:`Objective.recompute_bn` gives the running statistics at
another point θ from training data with the semantics of ``torch.optim.swa_utils.update_bn``.

Data parallel: with ``distributed=True`` every rank of the default ``torch.distributed`` process group holds a
shard of the data (shards may differ in size). N is then the total over all ranks, each rank sums the terms
(n_b/N)·ℓ_b of its own batches, and one ``all_reduce`` (sum) makes loss, gradient, HVP, evaluation and
recomputed BatchNorm statistics those of the union of the shards on every rank
(:mod:`basinscope._data_parallel`). With ``distributed=False`` (default) nothing is communicated.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from . import _data_parallel as DP
from . import params as P
from ._checks import check_choice, check_device, check_finite_tensor, check_params_like, check_type, fail
from ._datachecks import check_class_targets, checked_forward, checked_loss
from ._state import preserve_modes

__all__ = ["Cost", "Objective"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Cost:
    """What a computation spent. ``gradients`` counts evaluations of ∇f on the objective's data (a full
    pass for a multi-batch objective, one minibatch for a minibatch objective); ``hvps`` counts H·v products
    (one per vector); ``samples`` counts examples pushed through the model."""

    forwards: int = 0
    gradients: int = 0
    hvps: int = 0
    per_example_gradients: int = 0
    samples: int = 0
    seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __sub__(self, other: Cost) -> Cost:
        return Cost(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def copy(self) -> Cost:
        return Cost(**asdict(self))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class _Tracker:
    """Context manager returned by :meth:`Objective.track`; ``.cost`` holds the delta after exit."""

    def __init__(self, obj: Objective):
        self._obj = obj
        self.cost = Cost()

    def __enter__(self) -> _Tracker:
        self._start = self._obj.cost.copy()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cost = self._obj.cost - self._start
        self.cost.seconds = time.perf_counter() - self._t0


def _is_pair(data: Any) -> bool:
    return (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and isinstance(data[0], torch.Tensor)
        and isinstance(data[1], torch.Tensor)
    )


def _check_batch(i: int, batch: Any) -> Batch:
    if not _is_pair(batch):
        fail(f"data[{i}]", "an (inputs, targets) pair of tensors", batch, exc=TypeError)
    x, y = batch
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        fail(
            f"data[{i}]",
            "inputs and targets with the same leading batch dimension",
            f"inputs {tuple(x.shape)} and targets {tuple(y.shape)}",
            raw=True,
        )
    if x.shape[0] == 0:
        fail(f"data[{i}]", "a non-empty batch", "a batch of 0 examples", raw=True)
    return x, y


class Objective:
    """f(θ) for a model, a loss and data; evaluated anywhere in weight space without touching the model.

    Args:
        model: the network. Its trainable parameters (``requires_grad=True``) are the coordinates θ;
            frozen parameters and buffers are taken from the model as they are.
        loss_fn: ``loss_fn(outputs, targets)`` returning the mean loss over the batch
            (e.g. ``torch.nn.functional.cross_entropy``).
        data: a DataLoader, any re-iterable of ``(inputs, targets)`` batches, or one ``(inputs, targets)`` pair.
        device: where to evaluate; default the device of the model's first parameter.
        mode: ``"eval"`` (default: BatchNorm running statistics, no dropout) or ``"train"``.
        cache: move all batches to ``device`` once at construction (default). ``False`` re-iterates
            ``data`` on every pass (for data too large for the device).
        check_finite: raise ``ValueError`` when the loss is NaN/inf (one host sync per evaluation).
        distributed: ``data`` is this rank's shard of the data; every evaluation is combined over the ranks
            of the default ``torch.distributed`` process group (module docstring). Every rank must construct
            the objective, with the same trainable parameter names and shapes, and make the same calls.
            ``batches``, ``per_example_grads`` and ``cost`` stay local to the rank; ``num_samples`` is the
            total and ``local_samples`` this rank's.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> model = torch.nn.Linear(3, 2)
        >>> x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
        >>> obj = Objective(model, F.cross_entropy, (x, y))
        >>> g = obj.grad()                # dict keyed like model.named_parameters()
        >>> obj.cost.gradients
        1
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        data: Any,
        *,
        device: torch.device | str | None = None,
        mode: str = "eval",
        cache: bool = True,
        check_finite: bool = True,
        distributed: bool = False,
    ) -> None:
        check_type("model", model, nn.Module, "a torch.nn.Module")
        check_type("distributed", distributed, bool, "True or False")
        if distributed:
            DP.require_group()
        self.distributed = distributed
        if not callable(loss_fn):
            fail("loss_fn", "a callable loss_fn(outputs, targets)", loss_fn, exc=TypeError)
        self.mode = check_choice("mode", mode, ("eval", "train"))
        self.model = model
        self.loss_fn = loss_fn
        self.check_finite = bool(check_finite)
        self._fn: Callable[[torch.Tensor], torch.Tensor] | None = None
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not trainable:
            fail("model", "at least one parameter with requires_grad=True", "none", raw=True)
        self._names = [n for n, _ in trainable]
        first = trainable[0][1]
        self.device = check_device("device", device) if device is not None else first.device
        # model, data and loss are checked on the first pass over the data (see basinscope._datachecks)
        self._checked = False
        self._float_dtype = first.dtype if first.is_floating_point() else torch.get_default_dtype()
        self.cost = Cost()
        self._source = data
        self._batches: list[Batch] | None = None
        if not distributed:
            self._take_data(data, cache)
            self.local_samples = self.num_samples
            return
        # every rank reaches the one collective below, also when its own shard is bad, so all raise together
        error: str | None = None
        try:
            self._take_data(data, cache)
        except (TypeError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        shapes = [(n, tuple(p.shape)) for n, p in trainable]
        gathered = DP.all_gather_objects((error, shapes, 0 if error else self.num_samples))
        DP.check_shards(gathered, DP.rank_and_world()[0])
        self.local_samples = self.num_samples
        self.num_samples = sum(n for _, _, n in gathered)

    def _take_data(self, data: Any, cache: bool) -> None:
        if _is_pair(data):
            self._batches = [self._to_device(_check_batch(0, data))]
        elif isinstance(data, (torch.Tensor, str, bytes)) or not isinstance(data, Iterable):
            fail(
                "data",
                "a DataLoader, an iterable of (inputs, targets) batches or one such pair",
                data,
                exc=TypeError,
            )
        elif cache:
            self._batches = [self._to_device(_check_batch(i, b)) for i, b in enumerate(data)]
            if not self._batches:
                fail("data", "at least one (inputs, targets) batch", "an empty iterable", raw=True)
        self.num_samples = sum(int(x.shape[0]) for x, _ in self._iter_batches())
        if self.num_samples == 0:
            fail("data", "at least one (inputs, targets) batch", "an empty iterable", raw=True)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_function(cls, fn: Callable[[torch.Tensor], torch.Tensor], x0: Any, *, name: str = "theta") -> Objective:
        """The same interface over a plain differentiable function f: Rⁿ → R.

        ``params`` are then ``{name: θ}``; ``x0`` (number or tensor; numbers become float64) is the default
        point. Used by the 1-D teaching demos, e.g. ``Objective.from_function(lambda t: 0.5*t*torch.sin(3*t)+1,
        1.0)``.
        """
        if not callable(fn):
            fail("fn", "a callable f(theta) -> scalar tensor", fn, exc=TypeError)
        try:
            x = torch.as_tensor(x0, dtype=torch.float64 if not isinstance(x0, torch.Tensor) else None)
        except (TypeError, ValueError, RuntimeError):
            fail("x0", "a number or a floating-point tensor", x0, exc=TypeError)
        if not x.is_floating_point():
            x = x.to(torch.float64)
        obj = cls.__new__(cls)
        obj.mode = "eval"
        obj.model = None
        obj.loss_fn = None
        obj.check_finite = True
        obj.distributed = False
        obj._fn = fn
        obj._names = [name]
        obj._x0 = x.detach().clone()
        obj.device = x.device
        obj._float_dtype = x.dtype
        obj.cost = Cost()
        obj._source = None
        obj._batches = None
        obj.num_samples = 1
        obj._checked = True
        obj.local_samples = 1
        out = fn(x.detach())
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            fail("fn", "a function returning a scalar tensor", out, exc=TypeError)
        return obj

    def _to_device(self, batch: Batch) -> Batch:
        x, y = batch
        if x.is_floating_point():
            x = x.to(device=self.device, dtype=self._float_dtype, non_blocking=True)
        else:
            x = x.to(self.device, non_blocking=True)
        if y.is_floating_point():
            y = y.to(device=self.device, dtype=self._float_dtype, non_blocking=True)
        else:
            y = y.to(self.device, non_blocking=True)
        return x, y

    def _iter_batches(self) -> Iterable[Batch]:
        if self._batches is not None:
            yield from self._batches
            return
        n = 0
        for i, b in enumerate(self._source):
            n += 1
            yield self._to_device(_check_batch(i, b))
        if n == 0:
            fail(
                "data",
                "a re-iterable of batches (it yielded nothing on a later pass)",
                "an exhausted iterable",
                raw=True,
            )

    # ------------------------------------------------------------------ points
    @property
    def is_function(self) -> bool:
        """True for objectives built with :meth:`from_function`."""
        return self._fn is not None

    @property
    def names(self) -> list[str]:
        """Names of the coordinates (the model's trainable parameters)."""
        return list(self._names)

    @property
    def batches(self) -> list[Batch]:
        """The batches on the device (materialized on first access when ``cache=False``)."""
        if self._batches is None:
            return list(self._iter_batches())
        return self._batches

    @property
    def dim(self) -> int:
        """Number of scalar coordinates."""
        return P.numel(self.point())

    def point(self) -> P.Params:
        """The current point θ: detached copies of the model's trainable parameters (or ``x0``)."""
        if self.is_function:
            return {self._names[0]: self._x0.clone()}
        named = dict(self.model.named_parameters())
        return {n: named[n].detach().clone() for n in self._names}

    def _reference(self) -> Mapping[str, torch.Tensor]:
        if self.is_function:
            return {self._names[0]: self._x0}
        named = dict(self.model.named_parameters())
        return {n: named[n] for n in self._names}

    def _select_batch(self, batch: int | Batch) -> Batch:
        """One batch: an index into :attr:`batches` or an ``(inputs, targets)`` pair (checked, moved to the device)."""
        if isinstance(batch, int) and not isinstance(batch, bool):
            bl = self.batches
            if not 0 <= batch < len(bl):
                fail("batch", f"an index in [0, {len(bl) - 1}] or an (inputs, targets) pair", batch)
            return bl[batch]
        return self._to_device(_check_batch(0, batch))

    def _resolve(self, params: Mapping[str, torch.Tensor] | None, arg: str = "params") -> P.Params:
        if params is None:
            ref = self._reference()
            return {k: v.detach() for k, v in ref.items()}
        check_params_like(arg, params, self._reference())
        return {k: params[k].detach() for k in self._names}

    def common_seed(self, seed: int) -> int:
        """``seed`` as rank 0 has it when distributed (random probes are then the same on every rank)."""
        return DP.broadcast_seed(seed) if self.distributed else seed

    def _sum_over_ranks(self, tensors: Sequence[torch.Tensor]) -> None:
        """Sum per-rank partial results in place over the ranks (one all-reduce); nothing when not distributed."""
        if self.distributed:
            DP.sum_(tensors)

    def track(self) -> _Tracker:
        """``with obj.track() as t: ...`` then ``t.cost`` is what the block spent (with seconds)."""
        return _Tracker(self)

    # ------------------------------------------------------------------ evaluation kernels
    def _buffers(self, buffers: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        if buffers is not None:
            return dict(buffers)
        bufs = dict(self.model.named_buffers())
        if self.mode == "train":
            # batch statistics are used, running statistics would be written: give private copies
            bufs = {k: v.clone() for k, v in bufs.items()}
        return bufs

    def _forward(self, p: Mapping[str, torch.Tensor], bufs: Mapping[str, torch.Tensor], x: torch.Tensor):
        return functional_call(self.model, {**bufs, **p}, (x,))

    def _batch_outputs(self, p: Mapping[str, torch.Tensor], buffers: Mapping[str, torch.Tensor] | None = None):
        """Yield ``(outputs, targets, n_b)`` per batch at θ = ``p``. Model must be in measurement mode.

        The first complete pass checks the model's outputs and the targets (class indices in range: one host
        synchronization per data set); later passes run the plain forward.
        """
        bufs = self._buffers(buffers)
        first = not self._checked
        for i, (x, y) in enumerate(self._iter_batches()):
            if not first:
                yield self._forward(p, bufs, x), y, int(x.shape[0])
                continue
            out = checked_forward(lambda xb: self._forward(p, bufs, xb), x, data="data", float_dtype=self._float_dtype)
            if self._batches is None:
                check_class_targets(out, [y], data="data")
            elif i == 0:
                check_class_targets(out, [t for _, t in self._batches], data="data")
            yield out, y, int(x.shape[0])
        if first:
            self._checked = True

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``loss_fn(out, y)``; on the first pass checked to be a 0-d floating tensor (metadata only, no sync)."""
        if self._checked:
            return self.loss_fn(out, y)
        return checked_loss(self.loss_fn, out, y, data="data")

    def _batch_terms(self, p: Mapping[str, torch.Tensor], buffers: Mapping[str, torch.Tensor] | None = None):
        """Yield ``(weighted loss term, n_b)`` per batch; Σ terms = f(θ). Model must be in measurement mode."""
        if self.is_function:
            yield self._fn(p[self._names[0]]).reshape(()), 1
            return
        for out, y, n_b in self._batch_outputs(p, buffers):
            yield self._loss(out, y) * (n_b / self.num_samples), n_b

    @contextlib.contextmanager
    def _measuring(self) -> Iterator[None]:
        """Context setting the measurement mode on the model and restoring its flags afterwards."""
        if self.is_function:
            yield
            return
        with preserve_modes(self.model):
            self.model.train(self.mode == "train")
            yield

    def _finite(self, value: torch.Tensor, what: str = "loss") -> None:
        if self.check_finite:
            check_finite_tensor(what, value.detach())

    # ------------------------------------------------------------------ public evaluations
    def loss(self, params: Mapping[str, torch.Tensor] | None = None, *, buffers=None) -> torch.Tensor:
        """f(θ) as a 0-d tensor (exact sample-weighted mean over all data)."""
        p = self._resolve(params)
        with self._measuring(), torch.no_grad():
            total = None
            for term, n_b in self._batch_terms(p, buffers):
                total = term if total is None else total + term
                self.cost.samples += n_b
        self.cost.forwards += 1
        self._sum_over_ranks([total])
        self._finite(total)
        return total.detach()

    def loss_and_grad(
        self, params: Mapping[str, torch.Tensor] | None = None, *, buffers=None
    ) -> tuple[torch.Tensor, P.Params]:
        """(f(θ), ∇f(θ)) in one pass over the data."""
        p = {k: v.detach().requires_grad_(True) for k, v in self._resolve(params).items()}
        keys = list(p)
        total = None
        grads: list[torch.Tensor] | None = None
        with self._measuring(), torch.enable_grad():
            for term, n_b in self._batch_terms(p, buffers):
                g = torch.autograd.grad(term, [p[k] for k in keys], allow_unused=True)
                g = [torch.zeros_like(p[k]) if gi is None else gi for k, gi in zip(keys, g)]
                if grads is None:
                    grads = list(g)
                else:
                    torch._foreach_add_(grads, g)
                total = term.detach() if total is None else total + term.detach()
                self.cost.samples += n_b
        self.cost.forwards += 1
        self.cost.gradients += 1
        self._sum_over_ranks([total, *grads])
        self._finite(total)
        return total, dict(zip(keys, grads))

    def grad(self, params: Mapping[str, torch.Tensor] | None = None, *, buffers=None) -> P.Params:
        """∇f(θ) as a parameter dict."""
        return self.loss_and_grad(params, buffers=buffers)[1]

    def hvp(
        self,
        vector: Mapping[str, torch.Tensor] | Sequence[Mapping[str, torch.Tensor]],
        params: Mapping[str, torch.Tensor] | None = None,
        *,
        buffers=None,
    ) -> P.Params | list[P.Params]:
        """Hessian-vector product H(θ)·v by double backpropagation.

        ``vector`` may be one parameter dict or a list of them; a list is applied in a single pass over the
        data (one gradient graph per batch, reused for every vector), which is what the trace and density
        estimators exploit.
        """
        single = isinstance(vector, Mapping)
        vectors = [vector] if single else list(vector)
        if not vectors:
            fail("vector", "a parameter dict or a non-empty list of them", vector)
        for i, v in enumerate(vectors):
            check_params_like("vector" if single else f"vector[{i}]", v, self._reference())
        p = {k: v.detach().requires_grad_(True) for k, v in self._resolve(params).items()}
        keys = list(p)
        leaves = [p[k] for k in keys]
        vs = [[v[k].to(device=p[k].device, dtype=p[k].dtype) for k in keys] for v in vectors]
        outs: list[list[torch.Tensor] | None] = [None] * len(vectors)
        from .hessian._second_order import second_order_mode

        with self._measuring(), torch.enable_grad(), second_order_mode():
            for term, n_b in self._batch_terms(p, buffers):
                g = torch.autograd.grad(term, leaves, create_graph=True, allow_unused=True)
                live = [(gi, leaf, j) for j, (gi, leaf) in enumerate(zip(g, leaves)) if gi is not None]
                for i, v in enumerate(vs):
                    hv_live = torch.autograd.grad(
                        [gi for gi, _, _ in live],
                        leaves,
                        grad_outputs=[v[j] for _, _, j in live],
                        retain_graph=i < len(vs) - 1,
                        allow_unused=True,
                    )
                    hv = [torch.zeros_like(leaf) if h is None else h for h, leaf in zip(hv_live, leaves)]
                    if outs[i] is None:
                        outs[i] = hv
                    else:
                        torch._foreach_add_(outs[i], hv)
                self.cost.samples += n_b
        self.cost.hvps += len(vectors)
        self._sum_over_ranks([t for o in outs for t in o])
        result = [dict(zip(keys, [t.detach() for t in o])) for o in outs]
        return result[0] if single else result

    def per_example_grads(
        self,
        params: Mapping[str, torch.Tensor] | None = None,
        *,
        batch: int | Batch = 0,
        buffers=None,
        chunk_size: int | None = None,
    ) -> P.Params:
        """∇ℓ_j(θ) for each example j of one batch, vectorized with ``torch.func.vmap``.

        ``batch`` is an index into :attr:`batches` or an ``(inputs, targets)`` pair. Returns a dict of
        tensors of shape ``(B, *param.shape)``. Requires ``mode="eval"`` (BatchNorm in train mode couples the
        examples of a batch and cannot be vmapped).
        """
        if self.is_function:
            fail(
                "per_example_grads",
                "an objective built from a model and data",
                "a function objective",
                raw=True,
            )
        if self.mode != "eval":
            fail("mode", "'eval' for per-example gradients", self.mode)
        x, y = self._select_batch(batch)
        p = self._resolve(params)
        bufs = self._buffers(buffers)
        if not self._checked:  # the same checks as a first pass, on this batch (one forward, not counted)
            with self._measuring(), torch.no_grad():
                out = checked_forward(
                    lambda xb: self._forward(p, bufs, xb), x, data="batch", float_dtype=self._float_dtype
                )
                check_class_targets(out, [y], data="batch")
                checked_loss(self.loss_fn, out, y, data="batch")

        def one(pp, xi, yi):
            out = functional_call(self.model, {**bufs, **pp}, (xi.unsqueeze(0),))
            return self.loss_fn(out, yi.unsqueeze(0))

        with self._measuring():
            g = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0, 0), chunk_size=chunk_size)(p, x, y)
        n = int(x.shape[0])
        self.cost.per_example_gradients += n
        self.cost.samples += n
        return {k: g[k].detach() for k in self._names}

    def evaluate(self, params: Mapping[str, torch.Tensor] | None = None, *, buffers=None) -> dict[str, float]:
        """Mean loss and, for classification (outputs ``(B, C)``, integer targets), accuracy and error rate.

        Returns ``{"loss", "accuracy", "error", "samples"}``; accuracy/error are ``nan`` when the task is not
        classification.
        """
        loss, correct = self.evaluate_tensors(params, buffers=buffers)
        acc = float(correct) / self.num_samples if correct is not None else float("nan")
        return {"loss": float(loss), "accuracy": acc, "error": 1.0 - acc, "samples": self.num_samples}

    def evaluate_tensors(
        self, params: Mapping[str, torch.Tensor] | None = None, *, buffers=None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean loss, number of correct predictions) as device tensors: no host sync (for grid loops)."""
        if self.is_function:
            return self.loss(params), None
        p = self._resolve(params)
        total = None
        correct = None
        classify = True
        with self._measuring(), torch.no_grad():
            for out, y, n_b in self._batch_outputs(p, buffers):
                term = self._loss(out, y) * (n_b / self.num_samples)
                total = term if total is None else total + term
                if classify and out.dim() == 2 and not y.is_floating_point() and y.dim() == 1:
                    c = (out.argmax(dim=1) == y).sum()
                    correct = c if correct is None else correct + c
                else:
                    classify = False
                    correct = None
                self.cost.samples += n_b
        self.cost.forwards += 1
        total = total.detach()
        if self.distributed:
            if correct is None:
                self._sum_over_ranks([total])
            else:
                both = torch.stack([total.to(torch.float64), correct.to(torch.float64)])
                self._sum_over_ranks([both])
                total, correct = both[0].to(total.dtype), both[1].round().to(correct.dtype)
        return total, correct

    # ------------------------------------------------------------------ BatchNorm statistics
    def recompute_bn(
        self, params: Mapping[str, torch.Tensor] | None = None, data: Any = None
    ) -> dict[str, torch.Tensor]:
        """Running statistics of every BatchNorm layer at θ, recomputed from ``data`` (default: this
        objective's data), with the semantics of ``torch.optim.swa_utils.update_bn``: statistics reset,
        ``momentum=None`` (cumulative average, each *batch* weighted equally, so a short last batch counts
        as much as a full one), one pass in train mode. Returns a full buffer dict to pass as ``buffers=``;
        the model's own buffers are not touched.

        Distributed: each rank passes over its own batches and the statistics are combined with one
        all-reduce into those of one pass over the batches of all ranks (each batch weighted equally, as
        above; ``num_batches_tracked`` is the total count)."""
        if self.is_function:
            fail("recompute_bn", "an objective built from a model", "a function objective", raw=True)
        p = self._resolve(params)
        bufs = {k: v.detach().clone() for k, v in self.model.named_buffers()}
        bn_modules = [
            (name, m)
            for name, m in self.model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        ]
        if not bn_modules:
            return bufs
        for name, _ in bn_modules:
            prefix = f"{name}." if name else ""
            bufs[prefix + "running_mean"].zero_()
            bufs[prefix + "running_var"].fill_(1.0)
            bufs[prefix + "num_batches_tracked"].zero_()
        source = self.batches if data is None else Objective(self.model, self.loss_fn, data, device=self.device).batches
        with preserve_modes(self.model), torch.no_grad():
            self.model.train()
            for _, m in bn_modules:
                m.momentum = None
            for x, _ in source:
                functional_call(self.model, {**bufs, **p}, (x,))
                self.cost.samples += int(x.shape[0])
        self.cost.forwards += 1
        if self.distributed and DP.rank_and_world()[1] > 1:
            DP.combine_bn_statistics(bufs, [name for name, _ in bn_modules])
        return bufs
