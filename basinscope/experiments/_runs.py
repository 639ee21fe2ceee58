"""Finished training runs of the paper experiments, kept on disk so that a re-run reuses them.

A run is identified by its *spec* (model, method, options, budget or budgets, data, batch size, seed): a JSON-ready
dict whose hash is the run's fingerprint. :class:`RunStore` keeps, per run, one
:class:`~basinscope.demo.stages.StageStore` document (the run's numbers) and its weights; while a run trains, its
:func:`~basinscope.optim.runner.train` checkpoint lives under ``partial/`` so that an interrupted run resumes
from it and ends with bit-identical weights (the runner's guarantee).

A *ladder* run (:meth:`RunStore.ladder`) trains once to the largest of several budgets and keeps the state at
each smaller one: the state after the last iteration whose cumulative gradient calls are ≤ B is exactly what
``train(..., budget=B)`` returns for a method whose iterations do not depend on the budget (SGD-SALR: the rate
is η₀·Ŝ_k/median, no schedule over the budget; tested). Each such snapshot is written when the run first passes
B; a resumed run whose checkpoint lies past a budget without its snapshot starts over (same result, the runs
are deterministic).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_checkpoint_meta, load_state_dict, load_weights_only, save_checkpoint
from ..demo.stages import StageStore
from ..objective import Objective
from ..optim import NonFiniteLossError, TrainResult, train
from ._run_files import copy_state, fingerprint, metrics_doc, partial_path

__all__ = ["RunStore", "fingerprint", "run_name"]

Data = tuple[torch.Tensor, torch.Tensor]


def run_name(spec: dict[str, Any]) -> str:
    """A readable file name of the run: ``model__label__seedS__<fingerprint>`` (label characters other than letters,
    digits, ``_.-`` become ``-``: ``SGD-SALR (released)`` → ``SGD-SALR-released``)."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec["label"]).strip("-")
    return f"{spec['model']}__{label}__seed{spec['seed']}__{fingerprint(spec)}"


def evaluate(model: nn.Module, data: Data, batch_size: int = 1000) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` (eval mode) on ``data``; the model is left as it was."""
    x, y = data
    batches = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    out = Objective(model, F.cross_entropy, batches, mode="eval", check_finite=False).evaluate()
    return {"loss": out["loss"], "accuracy": out["accuracy"]}


def _finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


class RunStore:
    """Training runs under ``root`` (``stages/``, ``checkpoints/`` and ``partial/``).

    Args:
        root: the folder.
        reuse: ``False`` ignores finished runs (they are retrained and overwritten).
    """

    def __init__(self, root: str | Path, *, reuse: bool = True) -> None:
        self.root = Path(root)
        self.reuse = reuse
        self.checkpoint_every = 200  # iterations between the runner's checkpoints
        (self.root / "partial").mkdir(parents=True, exist_ok=True)

    def _store(self, spec: dict[str, Any]) -> StageStore:
        return StageStore(self.root, fingerprint(spec), reuse=self.reuse)

    def weights(self, spec: dict[str, Any], point: str = "end") -> dict[str, torch.Tensor]:
        """The saved state_dict of a finished run (``point``: ``"end"`` or ``"B<budget>"`` of a ladder)."""
        return self._store(spec).load_weights(f"{run_name(spec)}@{point}")

    def _train(
        self,
        spec: dict[str, Any],
        model: nn.Module,
        train_data: Data,
        ckpt: Path,
        *,
        progress: bool,
        callback: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> TrainResult:
        """The runner on ``spec`` (method, budget, batch size, seed, options), checkpointing to ``ckpt``."""
        return train(
            spec["method"],
            model,
            train_data,
            budget=spec["budget"],
            batch_size=spec["batch_size"],
            seed=spec["seed"],
            checkpoint=ckpt,
            checkpoint_every=self.checkpoint_every,
            progress=progress,
            callback=callback,
            **spec["options"],
        )

    def single(
        self,
        spec: dict[str, Any],
        make_model: Callable[[], nn.Module],
        train_data: Data,
        test_data: Data,
        *,
        progress: bool,
    ) -> dict[str, Any]:
        """Train ``spec["method"]`` with ``spec["options"]`` for ``spec["budget"]`` calls (or reuse the finished run).

        Returns the run's document: ``iterations``, ``grad_calls``, ``test_accuracy``, ``test_loss``,
        ``train_loss``, ``train_accuracy``, ``diverged`` (``True``: the loss became non-finite; the metrics
        are then ``None``).
        """
        store, name = self._store(spec), run_name(spec)
        doc = store.load(name)
        if doc is not None:
            return doc
        model = make_model()
        ckpt = partial_path(self.root, name)
        try:
            res = self._train(spec, model, train_data, ckpt, progress=progress)
        except NonFiniteLossError:
            doc = _diverged()
            store.save(name, doc)
            ckpt.unlink(missing_ok=True)
            return doc
        doc = {"diverged": False, "iterations": res.iterations, "grad_calls": res.grad_calls}
        doc.update(_metrics(model, train_data, test_data))
        store.save(f"{name}@end", {}, weights=model.state_dict())
        store.save(name, doc)
        ckpt.unlink(missing_ok=True)
        return doc

    def ladder(
        self,
        spec: dict[str, Any],
        budgets: Sequence[int],
        make_model: Callable[[], nn.Module],
        train_data: Data,
        test_data: Data,
        *,
        progress: bool,
    ) -> dict[str, Any]:
        """One run to ``max(budgets)``, its state kept at every budget (see the module docstring).

        ``spec["budget"]`` must be ``max(budgets)``. Returns ``{"points": {str(B): doc}}`` with one document per
        budget as :meth:`single` returns.
        """
        budgets = sorted(budgets)
        if spec["budget"] != budgets[-1]:
            raise ValueError(f"spec['budget']: expected max(budgets)={budgets[-1]}, got {spec['budget']!r}")
        store, name = self._store(spec), run_name(spec)
        doc = store.load(name)
        if doc is not None:
            return doc
        folder = self.root / "partial" / name
        ckpt = folder / "train.pt"
        snap = {b: folder / f"at_{b}.pt" for b in budgets}
        model = make_model()
        prev: dict[str, Any] = {"state": copy_state(model), "iterations": 0, "grad_calls": 0}
        if ckpt.is_file():
            s = load_weights_only(ckpt, what="checkpoint")
            if any(b < int(s["spent"]) and not snap[b].is_file() for b in budgets):
                shutil.rmtree(folder)  # a snapshot was lost between a checkpoint and its callback: start over
            else:
                prev = {"state": dict(s["model"]), "iterations": int(s["iteration"]), "grad_calls": int(s["spent"])}
        folder.mkdir(parents=True, exist_ok=True)
        pending = [b for b in budgets[:-1] if not snap[b].is_file()]

        def keep(it: int, info: dict[str, Any]) -> None:
            while pending and info["spent"] > pending[0]:
                b = pending.pop(0)
                save_checkpoint(
                    prev["state"], snap[b], meta={"iterations": prev["iterations"], "grad_calls": prev["grad_calls"]}
                )
            if pending:  # past the last smaller budget nothing reads the previous state: no copy per step
                prev.update(state=copy_state(model), iterations=it, grad_calls=info["spent"])

        diverged = False
        try:
            res = self._train(spec, model, train_data, ckpt, progress=progress, callback=keep)
            save_checkpoint(
                model.state_dict(), snap[budgets[-1]], meta={"iterations": res.iterations, "grad_calls": res.grad_calls}
            )
        except NonFiniteLossError:
            diverged = True
        points: dict[str, Any] = {}
        for b in budgets:
            if not snap[b].is_file():
                points[str(b)] = _diverged()
                continue
            state = load_state_dict(snap[b])
            meta = load_checkpoint_meta(snap[b])
            if not _finite(state):
                points[str(b)] = _diverged()
                continue
            model.load_state_dict(state)
            d = {"diverged": False, "iterations": int(meta["iterations"]), "grad_calls": int(meta["grad_calls"])}
            d.update(_metrics(model, train_data, test_data))
            store.save(f"{name}@B{b}", {}, weights=state)
            points[str(b)] = d
        doc = {"points": points, "diverged": diverged}
        store.save(name, doc)
        shutil.rmtree(folder, ignore_errors=True)
        return doc


def _diverged() -> dict[str, Any]:
    """The document of a run (or ladder point) whose loss became non-finite."""
    return {"diverged": True, "iterations": None, "grad_calls": None}


def _metrics(model: nn.Module, train_data: Data, test_data: Data) -> dict[str, Any]:
    return metrics_doc(evaluate(model, test_data), evaluate(model, train_data))
