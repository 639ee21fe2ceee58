"""The command line's jobs as functions: train from specs, surfaces from checkpoints, the toy demos.

Each function takes the same inputs as its ``basinscope`` subcommand (model/data specs, checkpoint paths, an
output directory), calls the public API (:mod:`basinscope.optim`, :mod:`basinscope.surface`,
:mod:`basinscope.toy`) and writes its files; the CLI only parses arguments. They are usable from Python as well.

Example:
    >>> import tempfile
    >>> out = toy_run("salr", out_dir=tempfile.mkdtemp(), fmt="png")
    >>> [p.name for p in out["files"]]
    ['toy_salr.png']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ._checks import check_choice, check_device, fail
from .objective import Objective

__all__ = ["curve_run", "make_objectives", "surface_run", "toy_run", "train_run"]


def make_objectives(
    model: torch.nn.Module, dataset: Any, *, batch_size: int = 500, device: torch.device | str | None = None
) -> tuple[Objective, Objective]:
    """(train objective, test objective) of a :class:`basinscope.specs.DataSet` with the default loss."""
    from .diagnose import default_loss

    loss_fn = default_loss(dataset.y_train)
    train = Objective(model, loss_fn, dataset.batches("train", batch_size), device=device)
    test = Objective(model, loss_fn, dataset.batches("test", batch_size), device=device)
    return train, test


_TOY = ("sharpness", "escape", "salr")


def toy_run(
    which: str = "all", *, out_dir: str | os.PathLike, fmt: str = "both", progress: bool = True
) -> dict[str, Any]:
    """``basinscope toy``: the 1-D demos of the SALR paper as figures (and a summary).

    Args:
        which: ``"sharpness"`` (ϕ, S, Ŝ across θ: Fig. 2), ``"escape"`` (GD trapped in a sharp minimum,
            GD-SALR thrown out: an illustration), ``"salr"`` (learning rate against sharpness: Fig. 3) or ``"all"``.
        out_dir: output directory; figures ``toy_<name>.png`` / ``toy_<name>.html``.
        fmt: ``"png"``, ``"html"`` or ``"both"``.
        progress: a bar over the demos (the sharpness profile alone takes seconds).

    Returns:
        ``{"files": [...], "summary": {...}}``.
    """
    from . import toy

    which = check_choice("which", which, (*_TOY, "all"))
    fmt = check_choice("fmt", fmt, ("png", "html", "both"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    summary: dict[str, Any] = {}
    from ._progress import progress as progress_bar

    names = _TOY if which == "all" else (which,)
    bar = progress_bar(total=len(names), desc="toy", unit="demo", enabled=progress)
    for name in names:
        bar.set_postfix_str(name)
        if name == "sharpness":
            res = toy.sharpness_profile()
            summary[name] = {"thetas": len(res.thetas), "settings": res.settings}
        elif name == "escape":
            res = toy.escape_demo()
            summary[name] = {n: {"final": res.final(n), "escaped": res.escaped(n)} for n in res.names}
        else:
            res = toy.salr_trace()
            summary[name] = {"steps": int(res.lrs.size), "lr_min": float(res.lrs.min()), "lr_max": float(res.lrs.max())}
        if fmt in ("png", "both"):
            import matplotlib.pyplot as plt

            fig = res.plot("matplotlib", path=out / f"toy_{name}.png")
            plt.close(fig)
            files.append(out / f"toy_{name}.png")
        if fmt in ("html", "both"):
            res.plot("plotly", path=out / f"toy_{name}.html")
            files.append(out / f"toy_{name}.html")
        bar.update(1)
    bar.close()
    return {"files": files, "summary": summary}


def train_run(
    method: str,
    model: str,
    data: str,
    *,
    out_dir: str | os.PathLike,
    budget: int = 2000,
    lr: float | None = None,
    batch_size: int = 128,
    init: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    train_samples: int | None = None,
    test_samples: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """``basinscope train``: :func:`basinscope.optim.train` on spec'd model and data, with checkpoints.

    Writes ``out_dir/checkpoint.pt`` while training (every ``checkpoint_every`` iterations), then ``final.pt``
    (weights-only state_dict), ``history.json`` (per-iteration loss, learning rate, sharpness, gradient calls)
    and ``metrics.json``. The SWA methods also stream every SWA sample and every round's average to
    ``out_dir/samples/`` (``sample_00000.pt``…, ``round_0.pt``…: parameters only), ready for
    ``basinscope surface plane`` (with ``--recompute-bn`` for BatchNorm models). With ``resume`` an interrupted
    run continues from ``checkpoint.pt`` and ends with the weights of an uninterrupted run; without it an
    existing checkpoint is an error (nothing is overwritten). A resume with other training data (another
    ``train_samples``, a changed data set) is refused: the checkpoint holds the data's fingerprint. A run whose
    loss becomes NaN/inf raises :class:`~basinscope.optim.runner.NonFiniteLossError` (a ``RuntimeError``).

    Args:
        method: a runner method (``sgd``, ``adam``, ``swa``, ``dswa``, ``tswa``, ``salr-sgd``, ``salr-adam``,
            ``sam``, ``entropy-sgd``, ``entropy-sgd-salr``).
        model, data: specs (see :mod:`basinscope.specs`).
        out_dir: output directory.
        budget: gradient calls (probe steps included).
        lr: base learning rate (the method's default when ``None``).
        batch_size: training minibatch size.
        init: a checkpoint to start from (weights only).
        checkpoint_every: iterations between checkpoints (runner default when ``None``).
        resume: continue from ``out_dir/checkpoint.pt``.
        seed: seeds the initial weights and the data order.
        options: further method hyperparameters (e.g. ``{"c": 2, "gamma": 0.01}``).
        train_samples, test_samples: use only the first N examples.
        device: where to train.
        progress: progress bar.

    Returns:
        ``{"final", "history", "metrics", "checkpoint", "samples", "test", "iterations", "gradient_calls",
        "seconds"}`` (``samples``: the sample directory and its file names, or ``None`` for non-SWA methods).
    """
    from .checkpoint import load_into, load_state_dict, save_checkpoint
    from .optim import train
    from .optim.methods import SWA_METHODS
    from .report import write_json
    from .specs import resolve_data, resolve_model

    dev = check_device("device", device) if device is not None else torch.device("cpu")
    out = Path(out_dir)
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not resume:
        fail(
            "--out",
            "a directory without a previous run's checkpoint.pt (or --resume to continue it)",
            f"'{ckpt}'",
            raw=True,
        )
    init_state = load_state_dict(init, what="--init") if init is not None else None
    dataset = resolve_data(data).subset(train_samples, test_samples)
    torch.manual_seed(seed)
    net = resolve_model(model, defaults=dataset.model_defaults())
    if init_state is not None:
        load_into(net, init_state, what="--init")
    net = net.to(dev)
    from .diagnose import default_loss

    opts = dict(options or {})
    if lr is not None:
        opts["lr"] = lr
    kw: dict[str, Any] = {}
    if checkpoint_every is not None:
        kw["checkpoint_every"] = checkpoint_every
    if method in SWA_METHODS:
        kw["samples_dir"] = out / "samples"
    out.mkdir(parents=True, exist_ok=True)
    res = train(
        method,
        net,
        (dataset.x_train, dataset.y_train),
        budget=budget,
        test_data=(dataset.x_test, dataset.y_test),
        batch_size=batch_size,
        loss_fn=default_loss(dataset.y_train),
        seed=seed,
        checkpoint=ckpt,
        resume=resume,
        progress=progress,
        **kw,
        **opts,
    )
    final = save_checkpoint(net, out / "final.pt", meta={"method": method, "model": model, "data": data})
    history = write_json(out / "history.json", {"method": method, **{k: v.tolist() for k, v in res.history.items()}})
    summary = {
        "method": method,
        "test": res.test,
        "iterations": res.iterations,
        "gradient_calls": res.grad_calls,
        "seconds": res.seconds,
        "settings": res.settings,
    }
    metrics = write_json(out / "metrics.json", summary)
    samples = None
    if method in SWA_METHODS:
        samples = {"dir": out / "samples", "samples": list(res.samples.names), "rounds": list(res.round_averages.names)}
    return {"final": final, "history": history, "metrics": metrics, "checkpoint": ckpt, "samples": samples, **summary}


from .workflows_surface import curve_run, surface_run  # noqa: E402  (the surface commands, one file)
