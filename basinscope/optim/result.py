"""The result of a training run (:func:`basinscope.optim.runner.train`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from ..params import Params
from ..results import ParamFiles, Result

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
        samples: SWA samples (CPU parameter dicts, in order); empty for other methods. With ``samples_dir``
            a :class:`~basinscope.results.ParamFiles` sequence that loads each sample from its file on access.
        sample_rounds: round index of each sample.
        round_averages: each SWA round's average (CPU parameter dicts, or ``ParamFiles``).
        seconds: wall time of the (last) call.
    """

    method: str
    history: dict[str, torch.Tensor]
    test: dict[str, Any]
    iterations: int
    grad_calls: int
    settings: dict[str, Any]
    samples: list[Params] | ParamFiles = dataclasses.field(default_factory=list)
    sample_rounds: list[int] = dataclasses.field(default_factory=list)
    round_averages: list[Params] | ParamFiles = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def plot(self, backend: str = "matplotlib", ax=None, path=None, **kw):
        """Loss, learning rate and sharpness against the iteration (the panels of SALR Fig. 3).

        ``backend="matplotlib"`` returns a Figure (``ax``: a sequence of Axes to draw into; ``path``: save a
        PNG/PDF); ``backend="plotly"`` returns a ``plotly.graph_objects.Figure`` (``path``: write a
        self-contained HTML file). Sharpness is only measured on some iterations: NaN elsewhere, drawn as
        markers.
        """
        from .._checks import check_choice

        check_choice("backend", backend, ("matplotlib", "plotly"))
        keys = [k for k in ("loss", "lr", "sharpness") if k in self.history]
        if backend == "plotly":
            return self._plotly(keys, path)
        from .. import style

        titles = {"loss": "training loss", "lr": "learning rate", "sharpness": "sharpness Ŝ"}
        with style.context():
            if ax is None:
                fig, axes = style.new_figure(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
                axes = list(axes[0])
            else:
                axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
                fig = axes[0].figure
            for a, k in zip(axes, keys):
                values = self.history[k].numpy()
                if k == "sharpness":
                    it = np.flatnonzero(np.isfinite(values))
                    a.plot(it, values[it], marker=".", linestyle="", **kw)
                    values = values[it]
                else:
                    a.plot(values, **kw)
                style.apply_scale(a, values)  # a loss falling over decades gets a log axis, a flat one does not
                a.set_xlabel("iteration")
                a.set_title(titles[k])
            style.finish(fig)
        if path is not None:
            style.save(fig, path)
        return fig

    def _plotly(self, keys: list[str], path):
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=len(keys), subplot_titles=keys)
        for col, k in enumerate(keys, start=1):
            values = self.history[k].numpy()
            it = np.arange(len(values))
            mode = "lines"
            if k == "sharpness":
                keep = np.isfinite(values)
                it, values, mode = it[keep], values[keep], "markers"
            fig.add_trace(go.Scatter(x=it, y=values, mode=mode, name=k), row=1, col=col)
            fig.update_xaxes(title_text="iteration", row=1, col=col)
        fig.update_layout(title=f"{self.method}: training history", showlegend=False)
        from .. import style

        log_axes = []
        for col, k in enumerate(keys, start=1):
            if style.choose_scale(self.history[k].numpy()) == "log":
                log_axes.append("yaxis" if col == 1 else f"yaxis{col}")
        style.plotly_style(fig, log_axes=log_axes)
        if path is not None:
            from ..results import atomic_write_bytes

            atomic_write_bytes(path, fig.to_html(include_plotlyjs=True, full_html=True).encode())
        return fig
