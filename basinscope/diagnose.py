"""Diagnose a trained network: sharpness, Hessian spectrum and loss surfaces, as one report.

:func:`diagnose` measures a model on its training objective:

* sharpness (SALR paper, §III): Keskar's ϕ(ε) (eq. 1), the two-sided S(ε) (eq. 2) and the probe Ŝ(γ)
  (Definition 1) — :mod:`basinscope.sharpness`;
* the Hessian's top-k eigenvalues (Lanczos), its trace (Hutchinson) and spectral density (stochastic Lanczos
  quadrature, Ghorbani et al. 2019) — :mod:`basinscope.hessian`;
* a filter-normalized random line and plane through the weights (Li et al. 2018) with train loss and test
  error — :mod:`basinscope.surface`;

and :func:`write_diagnosis` writes them as ``report.html`` (tables, PNG figures, interactive plotly figures)
and ``metrics.json``. :func:`diagnose_checkpoint` is the ``basinscope diagnose`` command: it resolves the
``--model``/``--data`` specs, loads the checkpoint safely (:mod:`basinscope.checkpoint`) and does both.

Example:
    >>> import torch, torch.nn.functional as F
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> d = diagnose(model, (x, y), (x, y), quick=True, surfaces=False)
    >>> sorted(d.metrics["sharpness"])
    ['S', 'S_hat', 'phi', 'settings']
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_device
from .objective import Objective

__all__ = ["Diagnosis", "diagnose", "diagnose_checkpoint", "write_diagnosis"]


@dataclasses.dataclass
class Diagnosis:
    """Everything :func:`diagnose` measured.

    Attributes:
        metrics: the numbers (JSON-ready after :func:`basinscope.report.jsonable`).
        results: the result objects by name (``phi``, ``S``, ``S_hat``, ``eigen``, ``trace``, ``density``,
            ``line``, ``plane``; absent when skipped).
    """

    metrics: dict[str, Any]
    results: dict[str, Any]


def default_loss(targets: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy for integer class targets, mean squared error otherwise."""
    return F.mse_loss if targets.is_floating_point() else F.cross_entropy


def diagnose(
    model: nn.Module,
    train: Any,
    test: Any = None,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    epsilon: float = 1e-2,
    gamma: float = 1e-2,
    steps: int = 5,
    top_k: int = 3,
    trace_samples: int = 30,
    density: bool = True,
    surfaces: bool = True,
    resolution: int = 15,
    span: float = 1.0,
    quick: bool = False,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
    distributed: bool = False,
) -> Diagnosis:
    """Measure ``model`` at its current weights on ``train`` (and evaluate on ``test``).

    Args:
        model: the network (left bit-identical).
        train: training data: an ``(x, y)`` pair, a list of batches or a DataLoader (the objective f).
        test: optional test data for accuracy/error and the surfaces' test error.
        loss_fn: mean loss over a batch (default: cross-entropy for integer targets, else MSE).
        epsilon: radius ε of ϕ and S.
        gamma: step length γ of Ŝ; ``steps`` descent and ``steps`` ascent steps.
        top_k: number of top Hessian eigenvalues.
        trace_samples: Hutchinson probes for the trace.
        density: compute the spectral density.
        surfaces: evaluate a random line and a random plane.
        resolution: grid nodes per axis of the random plane (the line gets ``2·resolution + 1`` points).
        span: the surfaces cover [−span, span] in filter-normalized direction units.
        quick: cheap settings throughout (fewer steps, probes, iterations, grid points) for smoke tests.
        seed: seeds every random choice.
        device: where to evaluate (default: the model's).
        progress: show progress bars on stderr: one over the stages (evaluation, sharpness, Hessian top-k,
            trace, density, surfaces) and the surfaces' bars over grid points.
        distributed: ``train`` and ``test`` are this rank's shards; every measurement is of the union of the
            shards over the ranks of the default process group (``Objective(..., distributed=True)``), the
            same numbers on every rank.

    Returns:
        :class:`Diagnosis`.
    """
    from . import hessian, sharpness, surface

    if surfaces:
        from .surface._axes import resolution_pair

        resolution_pair(resolution)  # a grid too large for memory is refused before any evaluation
    first_batch = train if isinstance(train, (tuple, list)) and len(train) == 2 and torch.is_tensor(train[0]) else None
    if loss_fn is None:
        y0 = first_batch[1] if first_batch is not None else next(iter(train))[1]
        loss_fn = default_loss(y0)
    obj = Objective(model, loss_fn, train, device=device, distributed=distributed)
    test_obj = Objective(model, loss_fn, test, device=device, distributed=distributed) if test is not None else None
    theta = obj.point()
    ascent_steps = 5 if quick else 20
    lanczos_iter = 20 if quick else 60
    n_trace = min(trace_samples, 5) if quick else trace_samples
    res = min(resolution, 5) if quick else resolution
    timings: dict[str, float] = {}
    results: dict[str, Any] = {}
    stages = ["evaluate_train", "phi", "S", "S_hat", "eigen", "trace"]
    stages += ["evaluate_test"] if test_obj is not None else []
    stages += ["density"] if density else []
    stages += ["line", "plane"] if surfaces else []
    from ._progress import progress as progress_bar

    # one bar over the stages (the estimators add their own bars below it); stderr, as every bar here
    bar = progress_bar(total=len(stages), desc="diagnose", unit="stage", enabled=progress)

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        bar.set_postfix_str(name, refresh=True)
        t0 = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t0
        bar.update(1)
        return out

    try:
        tr = timed("evaluate_train", lambda: obj.evaluate(theta))
        te = timed("evaluate_test", lambda: test_obj.evaluate(theta)) if test_obj is not None else None
        ball = {"steps": ascent_steps, "seed": seed, "params": theta, "progress": progress}
        results["phi"] = timed("phi", lambda: sharpness.keskar(obj, epsilon, **ball))
        results["S"] = timed("S", lambda: sharpness.two_sided(obj, epsilon, **ball))
        results["S_hat"] = timed("S_hat", lambda: sharpness.probe(obj, gamma, steps, steps, params=theta))
        k = min(top_k, obj.dim - 1)
        results["eigen"] = timed(
            "eigen",
            lambda: hessian.top_eigenvalues(
                obj, k=k, params=theta, max_iter=lanczos_iter, seed=seed, progress=progress
            ),
        )
        results["trace"] = timed(
            "trace", lambda: hessian.trace(obj, n_samples=n_trace, params=theta, seed=seed, progress=progress)
        )
        if density:
            results["density"] = timed(
                "density",
                lambda: hessian.density(
                    obj, n_runs=1 if quick else 3, n_iter=lanczos_iter, params=theta, seed=seed, progress=progress
                ),
            )
        if surfaces:
            n_line = 2 * res + 1
            import numpy as np

            results["line"] = timed(
                "line",
                lambda: surface.random_line(
                    obj, seed=seed, center=theta, ts=np.linspace(-span, span, n_line), test=test_obj, progress=progress
                ),
            )
            results["plane"] = timed(
                "plane",
                lambda: surface.random_plane(
                    obj, seed=seed + 1, center=theta, span=span, resolution=res, test=test_obj, progress=progress
                ),
            )
    except BaseException:
        bar.leave = False  # clear the bar so that the error is the last thing on the terminal
        raise
    finally:
        bar.close()
    eig = results["eigen"]
    trace_res = results["trace"]
    metrics: dict[str, Any] = {
        "parameters": obj.dim,
        "train": {"loss": tr["loss"], "accuracy": tr["accuracy"], "samples": tr["samples"]},
        "test": None if te is None else {"loss": te["loss"], "accuracy": te["accuracy"], "samples": te["samples"]},
        "sharpness": {
            "phi": results["phi"].value,
            "S": results["S"].value,
            "S_hat": results["S_hat"].value,
            "settings": {"epsilon": epsilon, "gamma": gamma, "n_descent": steps, "n_ascent": steps},
        },
        "hessian": {
            "top_eigenvalues": list(eig.eigenvalues),
            "converged": bool(eig.converged),
            "trace": float(trace_res.value),
            "trace_standard_error": float(trace_res.standard_error),
            "hvps": int(eig.cost.hvps + trace_res.cost.hvps),
        },
        "seconds": timings,
    }
    if "density" in results:
        d = results["density"]
        metrics["hessian"]["density_moment1"] = d.moment(1)
        metrics["hessian"]["density_moment2"] = d.moment(2)
    if surfaces:
        line_res, plane_res = results["line"], results["plane"]
        metrics["surfaces"] = {
            "line": _summary(line_res),
            "plane": _summary(plane_res),
        }
    return Diagnosis(metrics=metrics, results=results)


def _summary(surf: Any) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {"kind": surf.kind, "seconds": surf.seconds}
    for m in ("train_loss", "test_error"):
        values = getattr(surf, m)
        if values is not None:
            arr = np.asarray(values, dtype=np.float64)
            out[f"{m}_min"] = float(np.nanmin(arr))
            out[f"{m}_max"] = float(np.nanmax(arr))
    return out


def write_diagnosis(
    diag: Diagnosis, out_dir: str | os.PathLike, *, title: str = "basinscope diagnosis", subtitle: str | None = None
) -> dict[str, Path]:
    """Write ``report.html`` and ``metrics.json`` (and the figures under ``figures/``) into ``out_dir``.

    Nothing half-written: a previous diagnosis's ``report.html`` and ``metrics.json`` are removed first, the
    figures and the report are written next and ``metrics.json`` last, each atomically. A failure (a full
    disk) therefore never leaves a ``metrics.json`` without its report, nor a new report beside old numbers:
    ``metrics.json`` present means the whole diagnosis was written.

    Returns:
        ``{"report": path, "json": path}``.
    """
    from .report import Report, write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = diag.metrics
    json_path = out / "metrics.json"
    for old in (json_path, out / "report.html"):
        old.unlink(missing_ok=True)
    rep = Report(title, out, subtitle=subtitle)
    rep.heading("Accuracy")
    rows = [{"split": "train", **m["train"]}]
    if m.get("test"):
        rows.append({"split": "test", **m["test"]})
    rep.table(rows, columns=["split", "loss", "accuracy", "samples"])
    s = m["sharpness"]
    rep.heading("Sharpness")
    rep.text(
        "ϕ: Keskar sharpness, the largest loss increase in a Euclidean ball of radius ε relative to 1 + f (SALR "
        "paper eq. 1). S: the two-sided sharpness max − min of the loss in the ball (eq. 2). Ŝ: the probe of "
        "Definition 1, f(θ⁺) − f(θ⁻) after normalized ascent and descent steps of length γ."
    )
    rep.table(
        [{"ϕ": s["phi"], "S": s["S"], "Ŝ": s["S_hat"], **s["settings"]}],
        columns=["ϕ", "S", "Ŝ", "epsilon", "gamma", "n_descent", "n_ascent"],
    )
    h = m["hessian"]
    rep.heading("Hessian spectrum")
    rep.table(
        [{"eigenvalue": f"λ{i + 1}", "value": v} for i, v in enumerate(h["top_eigenvalues"])]
        + [
            {"eigenvalue": "trace", "value": h["trace"]},
            {"eigenvalue": "trace s.e.", "value": h["trace_standard_error"]},
        ],
        columns=["eigenvalue", "value"],
        caption="top eigenvalues (Lanczos) and trace (Hutchinson)",
    )
    if "density" in diag.results:
        dens = diag.results["density"]
        rep.matplotlib(dens.plot("matplotlib"), "density", caption="spectral density (stochastic Lanczos quadrature)")
    if "line" in diag.results:
        rep.heading("Loss surfaces")
        rep.matplotlib(diag.results["line"].plot("matplotlib"), "random_line", caption="random filter-normalized line")
        plane = diag.results["plane"]
        rep.matplotlib(plane.plot("matplotlib"), "random_plane", caption="random filter-normalized plane")
        rep.plotly(plane.plot("plotly"), caption="random plane (interactive)")
    rep.heading("Cost")
    rep.table([{"measurement": k, "seconds": v} for k, v in m["seconds"].items()], columns=["measurement", "seconds"])
    rep.link(json_path.absolute(), "all numbers (metrics.json)", must_exist=False)  # absolute: not written yet
    report = rep.write()
    write_json(json_path, m)  # last: its presence marks a complete diagnosis
    return {"report": report, "json": json_path}


def diagnose_checkpoint(
    checkpoint: str | os.PathLike,
    model: str,
    data: str,
    *,
    out_dir: str | os.PathLike = "basinscope-diagnose",
    batch_size: int = 500,
    train_samples: int | None = None,
    test_samples: int | None = None,
    device: torch.device | str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """``basinscope diagnose``: resolve the specs, load ``checkpoint`` safely, :func:`diagnose`, write the report.

    Under ``torchrun`` (``WORLD_SIZE > 1``; the process group is initialized here, gloo on CPU, nccl on CUDA)
    rank r keeps batches r, r + W, r + 2W, ... of each split, the measurements are data-parallel
    (``diagnose(..., distributed=True)``) and rank 0 alone writes the report (the other ranks return
    ``None`` for ``report`` and ``json``).

    Args:
        checkpoint: a state_dict file (weights only; files needing pickled code are refused).
        model: a model spec (see :mod:`basinscope.specs`).
        data: a data spec.
        out_dir: where ``report.html`` and ``metrics.json`` go.
        batch_size: evaluation batch size.
        train_samples, test_samples: use only the first N examples of each split.
        device: where to evaluate.
        **kwargs: passed to :func:`diagnose`.

    Returns:
        ``{"report", "json", "metrics"}``.
    """
    from .checkpoint import load_into, load_state_dict
    from .specs import resolve_data, resolve_model
    from .surface import distributed as D

    dev = check_device("device", device) if device is not None else torch.device("cpu")
    state = load_state_dict(checkpoint)  # fail fast on a bad file, before loading any data
    dataset = resolve_data(data).subset(train_samples, test_samples)
    net = resolve_model(model, defaults=dataset.model_defaults())
    load_into(net, state)
    on = D.active(dev)  # under torchrun: the process group (and each rank's CUDA device) is set up here
    rank, world = D.rank_and_world(on)
    if on and dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    net = net.to(dev)
    train, test = (dataset.batches(split, batch_size)[rank::world] for split in ("train", "test"))
    if rank != 0:
        kwargs["progress"] = False
    diag = diagnose(net, train, test, device=dev, distributed=on, **kwargs)
    if rank != 0:
        return {"report": None, "json": None, "metrics": diag.metrics}
    paths = write_diagnosis(
        diag, out_dir, title=f"basinscope diagnosis: {Path(checkpoint).name}", subtitle=f"model {model}, data {data}"
    )
    return {**paths, "metrics": diag.metrics}
