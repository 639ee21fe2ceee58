"""The measurements the demo takes of every solution (SALR paper §III; Hessian spectra), the cheap per-seed
evaluation, and the convergence check of an SGD run."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import torch

from ..experiments._run_files import metrics_doc
from ..objective import Objective
from .config import DemoConfig

__all__ = ["convergence_check", "evaluate_solution", "measure_solution"]


def evaluate_solution(
    obj: Objective, test: Objective, params: Mapping[str, torch.Tensor], buffers=None
) -> dict[str, float]:
    """Test and training accuracy and loss at ``params`` (what every seed's solution gets)."""
    te = test.evaluate(params, buffers=buffers)
    return metrics_doc(te, obj.evaluate(params, buffers=buffers))


def measure_solution(
    obj: Objective,
    test: Objective,
    params: Mapping[str, torch.Tensor],
    cfg: DemoConfig,
    *,
    seed: int = 0,
    buffers: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Test accuracy, ϕ(ε), S(ε), Ŝ(γ), the top Hessian eigenvalue and the trace at ``params``.

    ``obj`` is the training objective (the measurements' f), ``test`` the test objective. ``buffers`` are
    BatchNorm statistics for ``params`` (none for the demo's models). Returns plain floats and the seconds
    each measurement took.
    """
    from .. import hessian, sharpness

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    out: dict[str, Any] = evaluate_solution(obj, test, params, buffers)
    seconds["evaluate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["phi"] = sharpness.keskar(obj, cfg.epsilon, steps=cfg.ascent_steps, seed=seed, params=params).value
    seconds["phi"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["S"] = sharpness.two_sided(obj, cfg.epsilon, steps=cfg.ascent_steps, seed=seed, params=params).value
    seconds["S"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["S_hat"] = sharpness.probe(obj, cfg.gamma, cfg.probe_steps, cfg.probe_steps, params=params).value
    seconds["S_hat"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    eig = hessian.top_eigenvalues(obj, k=1, max_iter=cfg.lanczos_iterations, seed=seed, params=params)
    out["lambda_max"] = float(eig.eigenvalues[0])
    out["lambda_max_converged"] = bool(eig.converged)
    seconds["lambda_max"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr_res = hessian.trace(obj, n_samples=cfg.trace_samples, seed=seed, params=params)
    out["trace"] = float(tr_res.value)
    out["trace_standard_error"] = float(tr_res.standard_error)
    seconds["trace"] = time.perf_counter() - t0
    out["measure_seconds"] = seconds
    return out


def convergence_check(
    full: Objective, params: Mapping[str, torch.Tensor], loss_at_90: float, history_loss: torch.Tensor
) -> dict[str, float]:
    """Whether an SGD run on the Fig. 9 schedule has converged: the full training loss at the end and at 90 %
    of L (where the constant C_l segment starts), their relative change, the full-batch gradient norm ‖∇f‖
    at the end, and the mean minibatch loss over the last and the previous 10 % of the iterations."""
    end = full.evaluate(params)
    g = full.grad(params)
    gnorm = math.sqrt(sum(float((v.double() ** 2).sum()) for v in g.values()))
    h = history_loss.double()
    w = max(1, h.numel() // 10)
    last, prev = float(h[-w:].mean()), float(h[-2 * w : -w].mean()) if h.numel() >= 2 * w else float("nan")
    return {
        "train_loss_end": end["loss"],
        "train_accuracy_end": end["accuracy"],
        "train_loss_at_90": loss_at_90,
        "relative_change_last_10": (loss_at_90 - end["loss"]) / loss_at_90 if loss_at_90 > 0 else 0.0,
        "grad_norm_end": gnorm,
        "minibatch_loss_last_10": last,
        "minibatch_loss_previous_10": prev,
    }
