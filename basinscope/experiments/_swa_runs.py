"""The training runs behind the SWA Revisited experiments, each kept on disk once finished.

One run is one call of the runner for one seed: the pre-SWA SGD on the Fig. 9 schedule (C_h for the first half of
L, a linear decrease until 0.9·L, then C_l; SWA Revisited §5), or SWA/DSWA/TSWA (Algorithms 1–3, k = 1, 2, 3
rounds of n/k iterations) from that SGD solution at a constant SWA rate — the high-constant option of the CHC
schedule. Momentum 0 and weight decay 0 everywhere (§5: "trained without using the L2 weight regularization and
the momentum technique"), minibatch 128, a sample every c = one epoch.

A finished run is a :class:`~basinscope.demo.stages.StageStore` entry (numbers as JSON, weights as weights-only
checkpoints) under a fingerprint of exactly the settings it depends on, so the experiments that share a run
(``swa-case2`` and ``swa-line``) train it once, and a sweep that adds a rate keeps the others. A run interrupted
half-way resumes from its runner checkpoint (``train(checkpoint=...)``) to the identical weights.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..checkpoint import load_state_dict
from ..objective import Objective
from ..results import atomic_write_bytes
from ._run_files import copy_state, fingerprint, metrics_doc, partial_path

__all__ = ["METHODS", "Problem", "pre_sgd", "swa_run"]

#: averaging method → number of rounds k (Algorithms 1–3).
METHODS = {"swa": 1, "dswa": 2, "tswa": 3}

_CHECKPOINT_EVERY = 500  # iterations between runner checkpoints of an unfinished run


class Problem:
    """MNIST-1D, the model zoo's ``model``, and the objectives every solution is evaluated on.

    Args:
        model: zoo name of the network (``cnn1d``: the MNIST-1D paper's CNN).
        root: folder the finished runs are kept in (shared by the SWA experiments).
        batch_size: minibatch size of every run.
        progress: progress bars of the training runs.
    """

    def __init__(self, model: str, root: Path, *, batch_size: int, progress: bool) -> None:
        from ..data import mnist1d

        self.model = model
        self.root = Path(root)
        self.batch_size = batch_size
        self.progress = progress
        data = mnist1d()
        self.train_xy, self.test_xy = data.train, data.test
        self.num_classes = data.num_classes
        net = self.network(0)
        self.train_obj = Objective(net, F.cross_entropy, [self.train_xy])
        self.test_obj = Objective(net, F.cross_entropy, [self.test_xy])

    def network(self, seed: int, state: Mapping[str, torch.Tensor] | None = None) -> torch.nn.Module:
        """The network with seed ``seed``'s initial weights (or ``state``)."""
        from ..models import build_model

        torch.manual_seed(seed)
        net = build_model(self.model, num_classes=self.num_classes)
        if state is not None:
            net.load_state_dict(state)
        return net

    def evaluate(self, params: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Test accuracy/loss and training accuracy/loss (all 4,000 training examples) at ``params``."""
        p = {k: params[k] for k in self.train_obj.names}
        return metrics_doc(self.test_obj.evaluate(p), self.train_obj.evaluate(p))

    def test_accuracy(self, params: Mapping[str, torch.Tensor]) -> float:
        return self.test_obj.evaluate({k: params[k] for k in self.test_obj.names})["accuracy"]

    def store(self, **settings: Any):
        """The stage store of the runs with ``settings`` (its fingerprint is a hash of them and the model)."""
        from ..demo.stages import StageStore

        return StageStore(self.root, fingerprint({"model": self.model, "batch_size": self.batch_size, **settings}))

    def run_options(self, seed: int, partial: Path) -> dict[str, Any]:
        """The options every run shares: momentum 0 and weight decay 0 (§5), this problem's minibatch size and
        progress bars, the run's seed, and its runner checkpoint ``partial``."""
        return dict(
            momentum=0.0,
            weight_decay=0.0,
            batch_size=self.batch_size,
            seed=seed,
            progress=self.progress,
            checkpoint=partial,
            checkpoint_every=_CHECKPOINT_EVERY,
        )


def _with_sample(average: dict[str, torch.Tensor], sample: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``average`` with the parameters of ``sample`` in place of its own (buffers stay the average's)."""
    return {**average, **{key: v.detach().cpu().clone() for key, v in sample.items()}}


def pre_sgd(
    prob: Problem, seed: int, *, iterations: int, lr_high: float, lr_low: float
) -> tuple[dict, dict, dict[str, Path]]:
    """SGD on the Fig. 9 schedule for L = ``iterations`` from seed ``seed``'s initial weights.

    Returns the run's document (evaluation, convergence check: full training loss at 0.9·L and at L, their
    relative change, ‖∇f‖ at L), its final weights and ``{"final": path of those weights}``.
    """
    from ..demo.measure import convergence_check
    from ..optim import train

    settings = dict(run="pre-sgd", seed=seed, iterations=iterations, lr_high=lr_high, lr_low=lr_low)
    store = prob.store(**settings)
    name = f"seed{seed}/pre-sgd-L{iterations}"
    doc = store.load(name)
    if doc is None:
        net = prob.network(seed)
        mark = round(0.9 * iterations)
        partial = partial_path(store.root, name)
        # the full training loss at 0.9·L, kept beside the runner checkpoint so that a resumed run still has it
        mark_file = partial.with_suffix(".at90.json")
        at90: dict[str, float] = json.loads(mark_file.read_text()) if mark_file.is_file() else {}

        def at_mark(it: int, info: dict[str, Any]) -> None:
            if it == mark:
                at90["loss"] = prob.train_obj.evaluate({n: p.detach() for n, p in net.named_parameters()})["loss"]
                atomic_write_bytes(mark_file, json.dumps(at90).encode())

        res = train(
            "sgd",
            net,
            prob.train_xy,
            budget=iterations,
            lr=lr_high,
            lr_low=lr_low,
            schedule="pre_swa",
            callback=at_mark,
            **prob.run_options(seed, partial),
        )
        params = {n: p.detach() for n, p in net.named_parameters()}
        doc = {
            **prob.evaluate(params),
            "iterations": int(res.iterations),
            "gradient_calls": int(res.grad_calls),
            "convergence": convergence_check(prob.train_obj, params, at90["loss"], res.history["loss"]),
            "seconds": float(res.seconds),
        }
        store.save(name, doc, copy_state(net, cpu=True))
        partial.unlink(missing_ok=True)
        mark_file.unlink(missing_ok=True)
    return doc, store.load_weights(name), {"final": store.weights_path(name)}


def swa_run(
    prob: Problem,
    seed: int,
    start: Mapping[str, torch.Tensor],
    start_key: dict[str, Any],
    *,
    method: str,
    n: int,
    cycle: int,
    rate: float,
) -> tuple[dict, dict, dict[str, Path]]:
    """SWA/DSWA/TSWA (``method``) for n iterations at the constant rate ``rate`` from ``start``.

    ``start_key`` are the settings that produced ``start`` (part of this run's fingerprint). Returns the run's
    document — the final average evaluated; every sample's and round average's test accuracy; for SWA also
    its last iterate (SGD continued for the same n iterations at the same rate) evaluated — the weights
    ``{"average": ..., "last": ..., "sample0"/"sample1"/"sample2": ...}`` (the last iterate and three samples,
    first/middle/last, for SWA only) and the paths of their checkpoints under the same keys.
    """
    from ..optim import swa_rounds

    k = METHODS[method]
    settings = dict(run=method, seed=seed, start=start_key, n=n, cycle=cycle, rate=rate)
    store = prob.store(**settings)
    name = f"seed{seed}/L{start_key['iterations']}-{method}-n{n}-lr{rate:g}"  # Case I and II runs apart
    doc = store.load(name)
    if doc is None:
        net = prob.network(seed, start)
        partial = partial_path(store.root, name)
        res = swa_rounds(
            net,
            prob.train_xy,
            k=k,
            n=n,
            c=cycle,
            lr=rate,
            **prob.run_options(seed, partial),
        )
        average = copy_state(net, cpu=True)
        doc = {
            **prob.evaluate(average),
            "iterations": int(res.iterations),
            "gradient_calls": int(res.grad_calls),
            "samples": len(res.samples),
            "sample_rounds": list(res.sample_rounds),
            "sample_test_accuracy": [prob.test_accuracy(p) for p in res.samples],
            "round_average_test_accuracy": [prob.test_accuracy(p) for p in res.round_averages],
            "seconds": float(res.seconds),
        }
        if k == 1:
            # SGD continued for the same n iterations at the same rate is this run's last iterate (its last
            # sample, taken at iteration n): the same-budget baseline costs no extra training
            last = _with_sample(average, res.samples[-1])
            doc["last"] = prob.evaluate(last)
            picks = [0, len(res.samples) // 2, len(res.samples) - 1]
            doc["plane_samples"] = picks
            for i, j in enumerate(picks):
                store.save(f"{name}-sample{i}", {"index": j}, _with_sample(average, res.samples[j]))
            store.save(f"{name}-last", {"of": name}, last)
        store.save(name, doc, average)
        partial.unlink(missing_ok=True)
    parts = ["average"] + (["last", "sample0", "sample1", "sample2"] if k == 1 else [])
    paths = {p: store.weights_path(name if p == "average" else f"{name}-{p}") for p in parts}
    return doc, {p: load_state_dict(path) for p, path in paths.items()}, paths
