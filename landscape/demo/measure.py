"""The measurements the demo takes of every solution (SALR paper §III; Hessian spectra)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch

from ..objective import Objective
from .config import DemoConfig

__all__ = ["measure_solution"]


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
    te = test.evaluate(params, buffers=buffers)
    tr = obj.evaluate(params, buffers=buffers)
    seconds["evaluate"] = time.perf_counter() - t0
    out: dict[str, Any] = {
        "test_accuracy": te["accuracy"],
        "test_loss": te["loss"],
        "train_accuracy": tr["accuracy"],
        "train_loss": tr["loss"],
    }
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
