"""Stochastic weight averaging and its k-round form ("SWA Revisited", Guo, Jin, Liu: Algorithms 1–3).

SWA (Algorithm 1): from weights w_sgd run n SGD iterations under a CHC learning-rate schedule
(:func:`~basinscope.optim.schedules.chc_lr`); every c iterations (i mod c = 0) add w to the sample set S;
return w_swa = mean(S).

DSWA / TSWA (Algorithms 2–3) and the k-round form: the same total budget n split into k rounds of n/k
iterations; each round restarts from the previous round's average (BatchNorm statistics recomputed first) with a
fresh optimizer state. ``swa`` = 1 round, ``dswa`` = 2, ``tswa`` = 3, ``swa_rounds(k=...)`` any k.

Averaging: :class:`WeightAverager` keeps the running mean ā_{m+1} = ā_m + (w − ā_m)/(m + 1) with
``torch._foreach_*`` kernels — the update of ``torch.optim.swa_utils.AveragedModel`` (bit-identical to it on CPU,
where AveragedModel uses this formula; on CUDA AveragedModel uses ``lerp``, which may differ in the last bit).

BatchNorm: the averaged weights get running statistics recomputed from the training data with the semantics of
``torch.optim.swa_utils.update_bn`` (:meth:`basinscope.objective.Objective.recompute_bn`: statistics reset,
``momentum=None``, one pass in train mode over the training set in its stored order, batches of the run's batch
size). With ``momentum=None`` BatchNorm keeps a cumulative average over *batches*: each batch counts equally, so
a short last batch is weighted as much as a full one (exactly as ``update_bn``).

Every sample (CPU copies, in order, with the round it belongs to) and every round's average are returned in the
:class:`~basinscope.optim.result.TrainResult` (``samples``, ``sample_rounds``, ``round_averages``) and saved
with it: the surfaces module draws the plane through three SWA samples and the SWA↔DSWA line from them.
Long runs keep them on disk instead of in memory with ``samples_dir=``: each sample and each round's average
is written atomically to its own file as it is taken (``sample_00000.pt``, ``round_0.pt``) and the result holds
a :class:`~basinscope.results.ParamFiles` sequence that loads them on access (``weights_only=True``).

Example:
    >>> import torch
    >>> from basinscope.optim import swa
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> res = swa(model, (x, y), n=20, c=4, lr=0.05, batch_size=16, progress=False)
    >>> len(res.samples)
    5
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .._checks import check_int, fail
from ..objective import Objective

__all__ = ["WeightAverager", "dswa", "recompute_bn_", "swa", "swa_rounds", "tswa"]


class WeightAverager:
    """Running mean of parameter dicts, AveragedModel's update with foreach kernels.

    Example:
        >>> avg = WeightAverager()
        >>> for v in (1.0, 2.0, 6.0):
        ...     avg.update({"w": torch.tensor([v])})
        >>> avg.average["w"].item(), avg.n
        (3.0, 3)
    """

    def __init__(self) -> None:
        self.n = 0
        self.average: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def update(self, params: Mapping[str, torch.Tensor]) -> None:
        if self.average is None or self.n == 0:
            self.average = {k: v.detach().clone() for k, v in params.items()}
        else:
            avg = list(self.average.values())
            diff = torch._foreach_sub([params[k].detach() for k in self.average], avg)
            torch._foreach_div_(diff, float(self.n + 1))
            torch._foreach_add_(avg, diff)
        self.n += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "average": None if self.average is None else {k: v.clone() for k, v in self.average.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.n = int(state["n"])
        self.average = None if state["average"] is None else {k: v.clone() for k, v in state["average"].items()}


@torch.no_grad()
def recompute_bn_(model: nn.Module, loss_fn, batches: Any, *, distributed: bool | None = None) -> None:
    """Recompute the model's BatchNorm running statistics at its current weights from ``batches`` (a list of
    ``(inputs, targets)`` pairs or a DataLoader, read once) in place (``update_bn`` semantics, see the module
    docstring). No-op for models without BatchNorm.

    ``distributed``: ``batches`` are this rank's and the statistics become those of one pass over the batches
    of every rank (each batch counted once), the same on every rank. ``None`` (default): when ``model`` is
    wrapped in ``DistributedDataParallel`` (:mod:`basinscope.optim.ddp`); the wrapped module is updated."""
    from .ddp import is_ddp, unwrap

    distributed = is_ddp(model) if distributed is None else bool(distributed)
    model = unwrap(model)
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return
    obj = Objective(model, loss_fn, batches, cache=isinstance(batches, list), distributed=distributed)
    new = obj.recompute_bn()
    for name, buf in model.named_buffers():
        buf.copy_(new[name])


def swa_rounds(
    model: nn.Module,
    train_data: Any,
    *,
    k: int,
    n: int,
    c: int,
    lr: float = 0.01,
    lr_min: float | None = None,
    momentum: float = 0.0,
    **train_kwargs: Any,
):
    """k-round SWA (SWA Revisited, Algorithms 1–3 generalized): n iterations in k rounds of n/k.

    Args:
        model: trained in place; ends with the last round's average and recomputed BN statistics.
        train_data: ``(inputs, targets)`` tensors (or an object with ``x_train``/``y_train``).
        k: number of rounds (1 = SWA, 2 = DSWA, 3 = TSWA).
        n: total SGD iterations (a multiple of k).
        c: cycle length: a sample every c iterations within a round (c ≤ n/k).
        lr: α₁, the high constant (or cycle-start) rate of the CHC schedule.
        lr_min: α₂ for the cyclical schedule (``None``: high constant).
        momentum: SGD momentum (the paper uses none).
        **train_kwargs: passed to :func:`basinscope.optim.runner.train` (``batch_size``, ``loss_fn``, ``seed``,
            ``test_data``, ``checkpoint``, ``samples_dir``, ``progress``, …).

    Returns:
        the :class:`~basinscope.optim.result.TrainResult` with ``samples``, ``sample_rounds``, ``round_averages``.
    """
    from .runner import train

    k = check_int("k", k, minimum=1)
    n = check_int("n", n, minimum=1)
    c = check_int("c", c, minimum=1)
    if n % k != 0:
        fail("n", f"a multiple of k={k} (n/k iterations per round)", n)
    if c > n // k:
        fail("c", f"a cycle length <= n/k={n // k} (at least one sample per round)", c)
    options = dict(rounds=k, swa_start=0.0, swa_lr=lr, swa_lr_min=lr_min, c=c, momentum=momentum)
    return train("swa", model, train_data, budget=n, **options, **train_kwargs)


def swa(model: nn.Module, train_data: Any, *, n: int, c: int, **kwargs: Any):
    """SWA (Algorithm 1): :func:`swa_rounds` with k = 1."""
    return swa_rounds(model, train_data, k=1, n=n, c=c, **kwargs)


def dswa(model: nn.Module, train_data: Any, *, n: int, c: int, **kwargs: Any):
    """Double SWA (Algorithm 2): :func:`swa_rounds` with k = 2 (n/2 iterations per round)."""
    return swa_rounds(model, train_data, k=2, n=n, c=c, **kwargs)


def tswa(model: nn.Module, train_data: Any, *, n: int, c: int, **kwargs: Any):
    """Triple SWA (Algorithm 3): :func:`swa_rounds` with k = 3 (n/3 iterations per round)."""
    return swa_rounds(model, train_data, k=3, n=n, c=c, **kwargs)
