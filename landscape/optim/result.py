"""The result of a training run (:func:`landscape.optim.runner.train`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..params import Params
from ..results import Result

__all__ = ["TrainResult"]


@dataclasses.dataclass(frozen=True)
class TrainResult(Result):
    """What a run did, per iteration, and where it ended.

    Attributes:
        method: the method name (``"sgd"``, ``"swa"``, ``"salr-sgd"``, …).
        history: per-iteration CPU tensors: ``loss`` (training minibatch loss at the iterate), ``lr`` (rate in
            force), ``sharpness`` (Ŝ_k on measuring iterations of SALR methods, NaN elsewhere), ``grad_calls``
            (cumulative gradient calls, probe steps included); with ``eval_every``: ``test_iteration``,
            ``test_loss``, ``test_error``.
        test: final test metrics ``{"loss", "accuracy", "error", "samples"}`` (empty without test data).
        iterations: optimizer steps taken.
        grad_calls: gradient calls spent (≤ the budget).
        settings: the method's resolved options plus ``budget``, ``batch_size``, ``seed``.
        samples: SWA samples (CPU parameter dicts, in order); empty for other methods.
        sample_rounds: round index of each sample.
        round_averages: each SWA round's average (CPU parameter dicts).
        seconds: wall time of the (last) call.
    """

    method: str
    history: dict[str, torch.Tensor]
    test: dict[str, Any]
    iterations: int
    grad_calls: int
    settings: dict[str, Any]
    samples: list[Params] = dataclasses.field(default_factory=list)
    sample_rounds: list[int] = dataclasses.field(default_factory=list)
    round_averages: list[Params] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def plot(self, backend: str = "matplotlib", ax=None, path=None, **kw):
        """Loss, learning rate and sharpness against the iteration (the panels of SALR Fig. 3)."""
        if backend != "matplotlib":
            from .._checks import fail

            fail("backend", "'matplotlib'", backend)
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        keys = [k for k in ("loss", "lr", "sharpness") if k in self.history]
        if ax is None:
            fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3))
        else:
            axes = ax
            fig = axes[0].figure
        for a, k in zip(axes, keys):
            a.plot(self.history[k].numpy(), **kw)
            a.set_xlabel("iteration")
            a.set_title(k)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig
