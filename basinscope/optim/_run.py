"""One training run's iterations and resumable state (the engine of :func:`basinscope.optim.runner.train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .._atomic import remove_stale_temporaries
from .._checks import fail
from ..objective import Objective
from ..results import ParamFiles
from .methods import SWA_METHODS, build_optimizer, fresh_batch_per_call, iteration_cost
from .salr import SALR
from .schedules import chc_lr, pre_swa_lr
from .swa import WeightAverager, recompute_bn_

__all__ = ["FORMAT", "NonFiniteLossError", "Run"]

FORMAT = "landscape.optim.train/2"  # on-disk tag from before the rename, kept so older files still load
_HIST = ("loss", "lr", "sharpness", "grad_calls")


class NonFiniteLossError(FloatingPointError, RuntimeError):
    """The training loss (or the weights) became NaN or infinite: the run diverged."""


class Run:
    """The state of one run: iteration, spent calls, optimizer, history, SWA averages; one :meth:`step` per
    iteration; :meth:`state`/:meth:`load` for checkpoints."""

    def __init__(self, method, model, source, *, budget, batch_size, loss_fn, o, test, samples_dir=None):
        self.method, self.model, self.loss_fn, self.o = method, model, loss_fn, o
        self.source, self.budget, self.batch_size, self.test = source, budget, batch_size, test
        self.it = self.spent = 0
        # probe_eval_mode (SALR): the epoch whose start last put the model back in train mode, as the released
        # script's network.train() at each epoch start; and the mode a resumed run continues in
        self.mode_epoch = 0
        self.resume_training = True
        self.bad: torch.Tensor | None = None  # first iteration with a non-finite loss (-1: none), on the device
        self.opt: Any = None
        self.opt_key: str | None = None
        self.hist: dict[str, list] = {k: [] for k in _HIST}
        self.done: dict[str, torch.Tensor] = {}
        self.tests: dict[str, list] = {"test_iteration": [], "test_loss": [], "test_error": []}
        self.swa = method in SWA_METHODS
        self.averager = WeightAverager()
        if samples_dir is not None:  # what killed writes of sample and round files left behind
            for pattern in ("sample_[0-9]*.pt", "round_[0-9]*.pt"):
                remove_stale_temporaries(samples_dir, pattern=pattern)
        self.samples: list[dict] | ParamFiles = [] if samples_dir is None else ParamFiles([], samples_dir)
        self.sample_rounds: list[int] = []
        self.round_averages: list[dict] | ParamFiles = [] if samples_dir is None else ParamFiles([], samples_dir)
        if o.get("lr_drop_every") is not None and source.epoch_batches is None:
            fail("lr_drop_every", "a train_data with len() (the drop is counted in epochs)", o["lr_drop_every"])
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
        if self.method == "entropy-sgd" and o["lr_drop_every"] is not None:
            # SALR paper §VI-A: the outer rate "drops by a factor of 5 every four epochs"; an epoch of Entropy-SGD
            # is one outer step per minibatch of the training set (40 such epochs match SGD's 200 in calls)
            return o["lr"] / o["lr_drop_factor"] ** (i // (o["lr_drop_every"] * self.source.epoch_batches))
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
        if self.o.get("probe_eval_mode") and self.source.epoch != self.mode_epoch:
            self.model.train()
            self.mode_epoch = self.source.epoch
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
        cur_lr = self.opt.step_lr if salr else self.opt.param_groups[0]["lr"]
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
            "format": FORMAT,
            "method": self.method,
            "settings": settings,
            "iteration": self.it,
            "spent": self.spent,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "opt_key": self.opt_key,
            "optimizer": None if self.opt is None else self.opt.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": list(cuda),
            "training": self.model.training,
            "mode_epoch": self.mode_epoch,
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
        # only probe_eval_mode leaves the model in eval mode between iterations; other runs resume in train mode
        self.resume_training = bool(s.get("training", True)) or not self.o.get("probe_eval_mode")
        self.mode_epoch = int(s.get("mode_epoch", 0))
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
