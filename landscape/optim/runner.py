"""The training runner: any reference method under an equal budget of gradient calls, resumable.

``train(method, model, train_data, budget=...)`` trains ``model`` in place with one of
:data:`~landscape.optim.methods.METHODS` until the next iteration would exceed ``budget`` gradient calls (the
SALR paper compares methods at the same number of gradient calls, §VI: SAM spends 2 per iteration,
Entropy-SGD L, SALR 1 + (n₁ + n₂) on every c-th iteration). It records a per-iteration history (loss,
learning rate, sharpness — SALR Fig. 3), evaluates on test data, and checkpoints.

Data: ``train_data`` is an ``(inputs, targets)`` pair of tensors (or has ``x_train``/``y_train``), moved to the
model's device once. Minibatches of ``batch_size`` follow a permutation per epoch drawn from a CPU
``torch.Generator`` seeded with ``seed`` (the last batch of an epoch may be short). ``torch.manual_seed(seed)``
seeds the global generators (dropout, Entropy-SGD noise) at the start of a fresh run.

SWA methods: the first ``swa_start`` fraction of the budget runs SGD under the pre-SWA schedule (SWA Revisited
§5, Fig. 9: C_h = ``lr``, C_l = ``swa_lr``), then ``rounds`` rounds of Algorithm 1 (see :mod:`.swa`).

Checkpoints (``checkpoint=path``, every ``checkpoint_every`` iterations and at the end) hold plain tensors and
containers only — weights, buffers, optimizer state, the SALR Ŝ history, the data order (generator state,
permutation, position), the CPU and CUDA RNG states, the history, SWA averages and samples — written
atomically (temporary file + ``os.replace``) and read with ``torch.load(weights_only=True)``. A run killed
mid-way and started again with the same arguments resumes from the file and ends with weights bit-identical to
an uninterrupted run (tested for SWA, DSWA and SALR).

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> res = train("salr-sgd", model, (x, y), budget=60, batch_size=16, progress=False)
    >>> res.grad_calls <= 60, res.history["sharpness"].shape[0] == res.iterations
    (True, True)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_type, fail
from .._state import preserve_modes
from ..objective import Objective
from ..results import ParamFiles
from .batches import LoaderSource, TensorSource, is_loader, pair, save_checkpoint
from .methods import SWA_METHODS, build_optimizer, fresh_batch_per_call, iteration_cost, resolve_options
from .result import TrainResult
from .salr import SALR
from .schedules import chc_lr, pre_swa_lr
from .swa import WeightAverager, recompute_bn_

__all__ = ["train"]

_FORMAT = "landscape.optim.train/2"
_HIST = ("loss", "lr", "sharpness", "grad_calls")
_CHECK_EVERY = 50  # iterations between finiteness checks (one host synchronization each)


class NonFiniteLossError(FloatingPointError, RuntimeError):
    """The training loss (or the weights) became NaN or infinite: the run diverged."""


class _Run:
    def __init__(self, method, model, source, *, budget, batch_size, loss_fn, o, test, samples_dir=None):
        self.method, self.model, self.loss_fn, self.o = method, model, loss_fn, o
        self.source, self.budget, self.batch_size, self.test = source, budget, batch_size, test
        self.it = self.spent = 0
        self.bad: torch.Tensor | None = None  # first iteration with a non-finite loss (-1: none), on the device
        self.opt: Any = None
        self.opt_key: str | None = None
        self.hist: dict[str, list] = {k: [] for k in _HIST}
        self.done: dict[str, torch.Tensor] = {}
        self.tests: dict[str, list] = {"test_iteration": [], "test_loss": [], "test_error": []}
        self.swa = method in SWA_METHODS
        self.averager = WeightAverager()
        self.samples: list[dict] | ParamFiles = [] if samples_dir is None else ParamFiles([], samples_dir)
        self.sample_rounds: list[int] = []
        self.round_averages: list[dict] | ParamFiles = [] if samples_dir is None else ParamFiles([], samples_dir)
        if self.swa:
            self.pre = round(o["swa_start"] * budget)
            self.k = o["rounds"]
            self.round_len = (budget - self.pre) // self.k
            if o["c"] is None and source.epoch_batches is None:
                fail("c", "a cycle length for a train_data without len() (one epoch is the default)", None)
            self.c = o["c"] if o["c"] is not None else source.epoch_batches
            if self.round_len < self.c:
                fail(
                    "budget",
                    f"at least c={self.c} SWA iterations per round (rounds={self.k}, swa_start={o['swa_start']})",
                    budget,
                )

    # -- plan
    def phase(self, it: int) -> tuple[str, int] | None:
        if not self.swa:
            return "main", it
        if it < self.pre:
            return "pre", it
        r = (it - self.pre) // self.round_len
        return None if r >= self.k else (f"round{r}", (it - self.pre) % self.round_len + 1)

    def lr_for(self, key: str, i: int) -> float | None:
        o = self.o
        if self.method == "sgd" and o["schedule"] == "pre_swa":
            low = o["lr_low"] if o["lr_low"] is not None else 0.01 * o["lr"]
            return pre_swa_lr(i, self.budget, high=o["lr"], low=low)
        if not self.swa:
            return None
        if key == "pre":
            return pre_swa_lr(i, self.pre, high=o["lr"], low=o["swa_lr"])
        return chc_lr(i, high=o["swa_lr"], low=o["swa_lr_min"], cycle=self.c)

    def params(self) -> dict[str, torch.Tensor]:
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def batch(self):
        return self.source.next()

    def check_finite(self, weights: bool = False) -> None:
        """Raise :class:`NonFiniteLossError` if a loss so far (or, with ``weights``, a weight) is not finite."""
        k = -1 if self.bad is None else int(self.bad)
        if k < 0 and weights:
            norms = torch._foreach_norm([p.detach() for p in self.params().values()])
            if not bool(torch.isfinite(torch.stack(norms)).all()):
                k = self.it - 1
        if k < 0:
            return
        lrs = self.hist["lr"]
        lr = float(lrs[k - (self.it - len(lrs))]) if 0 <= k - (self.it - len(lrs)) < len(lrs) else float("nan")
        hint = " or bound the SALR rate with max_ratio" if "max_ratio" in self.o else ""
        raise NonFiniteLossError(
            f"train: the loss became non-finite at iteration {k} (lr={lr:.4g}); lower the learning rate{hint}"
        )

    # -- one iteration
    def step(self) -> bool:
        ph = self.phase(self.it)
        if ph is None:
            return False
        key, i = ph
        if key != self.opt_key:
            self.opt = build_optimizer(self.method, self.model, self.loss_fn, self.o)
            self.opt_key = key
        lr = self.lr_for(key, i)
        if lr is not None:
            for g in self.opt.param_groups:
                g["lr"] = lr
        cost = iteration_cost(self.opt)
        if self.spent + cost > self.budget:
            return False
        first = self.batch()
        fresh = fresh_batch_per_call(self.method)
        calls = [0]

        def closure():
            xb, yb = self.batch() if fresh and calls[0] > 0 else first
            calls[0] += 1
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(xb), yb)
            loss.backward()
            return loss.detach()

        salr = isinstance(self.opt, SALR)
        measured = salr and self.opt.measures_next()
        loss = self.opt.step(closure, batch=first) if salr else self.opt.step(closure)
        dev = loss.device
        if self.bad is None:
            self.bad = torch.full((), -1, dtype=torch.int64, device=dev)
        self.bad = torch.where((self.bad < 0) & ~torch.isfinite(loss), self.it, self.bad)
        self.hist["loss"].append(loss.to(torch.float64))
        cur_lr = self.opt.lr if salr else self.opt.param_groups[0]["lr"]
        self.hist["lr"].append(torch.as_tensor(cur_lr, dtype=torch.float64, device=dev).detach().clone())
        s = self.opt.last_sharpness if measured else torch.tensor(float("nan"), dtype=torch.float64, device=dev)
        self.hist["sharpness"].append(s.to(device=dev, dtype=torch.float64))
        self.spent += cost
        self.hist["grad_calls"].append(self.spent)
        self.it += 1
        if self.swa and key != "pre":
            self._swa_after(int(key[5:]), i)
        return True

    def _swa_after(self, r: int, i: int) -> None:
        if i % self.c == 0:
            p = self.params()
            self.averager.update(p)
            _keep(self.samples, f"sample_{len(self.samples):05d}.pt", p)
            self.sample_rounds.append(r)
        if i == self.round_len:
            with torch.no_grad():
                for k, v in self.params().items():
                    v.copy_(self.averager.average[k])
            recompute_bn_(self.model, self.loss_fn, self.source.pass_batches())
            _keep(self.round_averages, f"round_{len(self.round_averages)}.pt", self.averager.average)
            self.averager = WeightAverager()

    # -- history and evaluation
    def flush(self) -> None:
        for k in _HIST:
            vals = self.hist[k]
            if not vals:
                new = torch.zeros(0, dtype=torch.int64 if k == "grad_calls" else torch.float64)
            elif k == "grad_calls":
                new = torch.tensor(vals, dtype=torch.int64)
            else:
                new = torch.stack(vals).cpu()
            self.done[k] = torch.cat([self.done[k], new]) if k in self.done else new
            self.hist[k] = []

    def evaluate(self) -> dict[str, Any]:
        if self.test is None:
            return {}
        if isinstance(self.test, tuple):
            xt, yt = self.test
            b = self.batch_size
            batches: Any = [(xt[j : j + b], yt[j : j + b]) for j in range(0, len(xt), b)]
            return Objective(self.model, self.loss_fn, batches, mode="eval", check_finite=False).evaluate()
        return Objective(self.model, self.loss_fn, self.test, mode="eval", check_finite=False, cache=False).evaluate()

    # -- checkpoints
    def state(self, settings: dict[str, Any]) -> dict[str, Any]:
        self.flush()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        return {
            "format": _FORMAT,
            "method": self.method,
            "settings": settings,
            "iteration": self.it,
            "spent": self.spent,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "opt_key": self.opt_key,
            "optimizer": None if self.opt is None else self.opt.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": list(cuda),
            "data": self.source.fingerprint,
            "stream": self.source.state_dict(),
            "history": dict(self.done),
            "tests": {k: list(v) for k, v in self.tests.items()},
            "averager": self.averager.state_dict(),
            "samples": _saved(self.samples),
            "sample_rounds": self.sample_rounds,
            "round_averages": _saved(self.round_averages),
        }

    def load(self, s: dict[str, Any], path: Path) -> None:
        self.model.load_state_dict(s["model"])
        self.it, self.spent = int(s["iteration"]), int(s["spent"])
        self.opt_key = s["opt_key"]
        if self.opt_key is not None:
            self.opt = build_optimizer(self.method, self.model, self.loss_fn, self.o)
            self.opt.load_state_dict(s["optimizer"])
        torch.set_rng_state(s["rng_cpu"])
        if s["rng_cuda"]:
            torch.cuda.set_rng_state_all(s["rng_cuda"])
        self.source.load_state_dict(s["stream"], path)
        self.done = dict(s["history"])
        self.tests = {k: list(v) for k, v in s["tests"].items()}
        self.averager.load_state_dict(s["averager"])
        self.sample_rounds = list(s["sample_rounds"])
        if isinstance(self.samples, ParamFiles):
            names = [f"sample_{i:05d}.pt" for i in range(int(s["samples"]))]
            rounds = [f"round_{i}.pt" for i in range(int(s["round_averages"]))]
            missing = [n for n in names + rounds if not (self.samples.root / n).is_file()]
            if missing:
                fail("samples_dir", "the sample files written before the checkpoint", f"{missing[0]} missing")
            self.samples = ParamFiles(names, self.samples.root)
            self.round_averages = ParamFiles(rounds, self.samples.root)
        else:
            self.samples, self.round_averages = list(s["samples"]), list(s["round_averages"])


def _keep(seq: list[dict] | ParamFiles, name: str, params: dict[str, torch.Tensor]) -> None:
    """Append a CPU copy of ``params`` to ``seq``: in memory, or written to ``name`` for :class:`ParamFiles`."""
    if isinstance(seq, ParamFiles):
        seq.write(name, params)
    else:
        seq.append({k: v.detach().cpu().clone() for k, v in params.items()})


def _saved(seq: list[dict] | ParamFiles) -> list[dict] | int:
    """What a checkpoint keeps of ``seq``: the dicts, or for files only their count (written as taken)."""
    return len(seq) if isinstance(seq, ParamFiles) else seq


def train(
    method: str,
    model: nn.Module,
    train_data: Any,
    *,
    budget: int,
    test_data: Any = None,
    batch_size: int = 128,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    resume: bool = True,
    progress: bool = True,
    eval_every: int | None = None,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
    samples_dir: str | os.PathLike | None = None,
    **options: Any,
) -> TrainResult:
    """Train ``model`` in place with ``method`` for at most ``budget`` gradient calls.

    Args:
        method: one of ``sgd, adam, swa, dswa, tswa, salr-sgd, salr-adam, sam, entropy-sgd, entropy-sgd-salr``.
        model: the network (trained in place; SWA methods leave the last average with recomputed BN).
        train_data: ``(inputs, targets)`` tensors, or an object with ``x_train``/``y_train``.
        budget: gradient calls to spend (probe steps included).
        test_data: ``(inputs, targets)`` or an object with ``x_test``/``y_test``; evaluated at the end (and every
            ``eval_every`` iterations).
        batch_size: minibatch size.
        loss_fn: mean loss ``loss_fn(outputs, targets)``.
        seed: data order and global RNG seed.
        checkpoint: file to write (and to resume from when it exists and ``resume``).
        checkpoint_every: iterations between checkpoints.
        progress: tqdm progress bar (in gradient calls).
        callback: ``callback(iteration, info)`` after every iteration (``info``: ``spent``, ``loss``); an
            exception raised there stops the run (the last checkpoint stays).
        samples_dir: SWA methods only: write every sample (``sample_00000.pt``, …) and round average
            (``round_0.pt``, …) to this directory as it is taken instead of keeping it in memory; the result's
            ``samples``/``round_averages`` are then :class:`~landscape.results.ParamFiles` that load on access
            (``torch.load(weights_only=True)``). Checkpoints then hold only the counts.
        **options: the method's hyperparameters (see :data:`landscape.optim.methods.DEFAULTS`), e.g. ``lr``,
            ``momentum``, ``c``, ``gamma``, ``n_descent``, ``n_ascent``, ``rho``, ``swa_lr``, ``rounds``.

    Returns:
        :class:`~landscape.optim.result.TrainResult`.
    """
    t0 = time.perf_counter()
    check_type("model", model, nn.Module, "a torch.nn.Module")
    budget = check_int("budget", budget, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    if eval_every is not None:
        eval_every = check_int("eval_every", eval_every, minimum=1)
    o = resolve_options(method, options)
    first = next((p for p in model.parameters() if p.requires_grad), None)
    if first is None:
        fail("model", "at least one parameter with requires_grad=True", "none", raw=True)
    fdtype = first.dtype if first.is_floating_point() else torch.get_default_dtype()
    source: TensorSource | LoaderSource
    if is_loader(train_data) and not (hasattr(train_data, "x_train") and hasattr(train_data, "y_train")):
        source = LoaderSource(train_data, first.device, fdtype)
    else:
        x, y = pair(train_data, "train_data", ("x_train", "y_train"))
        source = TensorSource(x, y, batch_size, seed, first.device, fdtype)
    test: Any = None
    if test_data is not None:
        if is_loader(test_data) and not (hasattr(test_data, "x_test") and hasattr(test_data, "y_test")):
            test = test_data
        else:
            xt, yt = pair(test_data, "test_data", ("x_test", "y_test"))
            test = (xt.to(first.device, fdtype if xt.is_floating_point() else xt.dtype), yt.to(first.device))
    if samples_dir is not None:
        if method not in SWA_METHODS:
            fail("samples_dir", f"None for method {method!r} (only SWA methods take samples)", samples_dir)
        check_type("samples_dir", samples_dir, (str, os.PathLike), "a directory path")
        samples_dir = Path(samples_dir)
        if samples_dir.exists() and not samples_dir.is_dir():
            fail("samples_dir", "a directory path", f"{str(samples_dir)!r} (an existing file)", raw=True)
    run = _Run(
        method,
        model,
        source,
        budget=budget,
        batch_size=batch_size,
        loss_fn=loss_fn,
        o=o,
        test=test,
        samples_dir=samples_dir,
    )
    settings = {**o, "budget": budget, "batch_size": batch_size, "seed": seed}
    if samples_dir is not None:
        settings["samples_dir"] = str(samples_dir.resolve())
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and resume and path.is_file():
        s = torch.load(path, weights_only=True, map_location=first.device)
        if s.get("format") != _FORMAT or s.get("method") != method or s.get("settings") != settings:
            fail(
                "checkpoint",
                f"a checkpoint of the same run (method {method!r}, same settings) to resume",
                f"'{path.name}' written by method {s.get('method')!r} with settings {s.get('settings')}",
                raw=True,
            )
        if s.get("data") != source.fingerprint:
            fail(
                "resume",
                f"the training data checkpoint '{path.name}' was written with (fingerprint {s.get('data')})",
                f"other data (fingerprint {source.fingerprint}); pass resume=False or another checkpoint file",
                raw=True,
            )
        run.load(s, path)
    else:
        torch.manual_seed(seed)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, initial=run.spent, desc=method, unit="grad")
    try:
        with preserve_modes(model):
            model.train()
            while True:
                before = run.spent
                if not run.step():
                    break
                if bar is not None:
                    bar.update(run.spent - before)
                    if run.it % 20 == 0:
                        bar.set_postfix(loss=f"{float(run.hist['loss'][-1]):.4f}")
                if run.it % _CHECK_EVERY == 0:
                    run.check_finite()
                if eval_every is not None and test is not None and run.it % eval_every == 0:
                    run.check_finite()
                    with preserve_modes(model):
                        m = run.evaluate()
                    run.tests["test_iteration"].append(run.it)
                    run.tests["test_loss"].append(m["loss"])
                    run.tests["test_error"].append(m["error"])
                if path is not None and run.it % checkpoint_every == 0:
                    run.check_finite(weights=True)  # a checkpoint only ever holds a finite state
                    save_checkpoint(path, run.state(settings))
                if callback is not None:
                    callback(run.it, {"spent": run.spent, "loss": run.hist["loss"][-1] if run.hist["loss"] else None})
    finally:
        if bar is not None:
            bar.close()
    run.check_finite(weights=True)
    if path is not None:
        save_checkpoint(path, run.state(settings))
    run.flush()
    history = dict(run.done)
    if run.tests["test_iteration"]:
        history["test_iteration"] = torch.tensor(run.tests["test_iteration"], dtype=torch.int64)
        history["test_loss"] = torch.tensor(run.tests["test_loss"], dtype=torch.float64)
        history["test_error"] = torch.tensor(run.tests["test_error"], dtype=torch.float64)
    return TrainResult(
        method=method,
        history=history,
        test=run.evaluate(),
        iterations=run.it,
        grad_calls=run.spent,
        settings=settings,
        samples=run.samples,
        sample_rounds=run.sample_rounds,
        round_averages=run.round_averages,
        seconds=time.perf_counter() - t0,
    )
