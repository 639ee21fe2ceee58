"""The training runner: any reference method under an equal budget of gradient calls, resumable.

``train(method, model, train_data, budget=...)`` trains ``model`` in place with one of
:data:`~basinscope.optim.methods.METHODS` until the next iteration would exceed ``budget`` gradient calls (the
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
from ._run import FORMAT, NonFiniteLossError, Run
from .batches import LoaderSource, TensorSource, is_loader, pair, save_checkpoint
from .methods import SWA_METHODS, resolve_options, upgrade_settings
from .result import TrainResult

__all__ = ["NonFiniteLossError", "train"]

_CHECK_EVERY = 50  # iterations between finiteness checks (one host synchronization each)


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
            ``samples``/``round_averages`` are then :class:`~basinscope.results.ParamFiles` that load on access
            (``torch.load(weights_only=True)``). Checkpoints then hold only the counts.
        **options: the method's hyperparameters (see :data:`basinscope.optim.methods.DEFAULTS`), e.g. ``lr``,
            ``momentum``, ``c``, ``gamma``, ``n_descent``, ``n_ascent``, ``rho``, ``swa_lr``, ``rounds``. SALR
            methods: ``variant="paper"`` (default) or ``"released"`` (the authors' released script's rule,
            :mod:`basinscope.optim.salr_variants`), ``restore_walk``, ``probe_eval_mode`` (the probe leaves
            the model in eval mode; the runner puts it back in train mode at every epoch start, and a checkpoint
            keeps the mode), ``walk_lr``, ``walk_clamp``, ``band``, ``min_ratio``, ``max_ratio``. The history's
            ``lr`` is the rate each step used.

    Returns:
        :class:`~basinscope.optim.result.TrainResult`.
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
    run = Run(
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
        from ..checkpoint import load_weights_only  # one-line errors for truncated or foreign files

        s = load_weights_only(path, map_location=first.device, what="checkpoint")
        if (
            s.get("format") != FORMAT
            or s.get("method") != method
            or upgrade_settings(method, s.get("settings")) != settings
        ):
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
    from .._progress import progress as progress_bar
    from .._progress import showing

    if showing(progress):
        bar = progress_bar(total=budget, initial=run.spent, desc=f"train {method}", unit="grad")
    try:
        with preserve_modes(model):
            model.train()
            if not run.resume_training:  # checkpointed while a probe_eval_mode probe had left it in eval mode
                model.eval()
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
