"""Settings of ``basinscope demo``: the full run and the quick one (see :class:`DemoConfig`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any

__all__ = ["DemoConfig"]


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Every setting of the demo. Budgets are in iterations of minibatch SGD (one gradient call each) unless
    named ``*_gradient_calls``. MNIST-1D has 4,000 training examples: 32 iterations per epoch at batch 128.

    Attributes:
        model: zoo model trained on MNIST-1D.
        seeds: number of seeds (``seed``, ``seed + 1``, …); every training stage runs once per seed and the
            report gives mean ± sample standard deviation over them.
        batch_size: training minibatch size (128, as SWA Revisited §5).
        momentum, weight_decay: of SGD in every phase and of SGD-SALR: 0 and 0 (SWA Revisited §5 trains
            "without using the L2 weight regularization and the momentum technique"; SALR's Algorithm 3 has
            neither).
        lr_high, lr_low: C_h and C_l of the Fig. 9 schedule (SWA Revisited §5: 0.05 and 0.01): C_h for the first
            half of L, a linear decrease until 90 % of L, then C_l.
        case2_iterations: L of Case II (SGD on the Fig. 9 schedule with a short L — §5 uses "a small value like
            30" epochs — so that it does not converge).
        case1_iterations: L of Case I (the Fig. 9 schedule with a long L, to convergence; the report checks it).
        swa_iterations: the budget n of each of SWA, DSWA (2 rounds of n/2) and TSWA (3 rounds of n/3).
        swa_cycle: c, iterations between SWA samples (one epoch, as §5).
        swa_lr: the SWA phase's rate: the high-constant option of the CHC schedule (Algorithm 1) at C_l, the
            rate the Fig. 9 schedule ends on (the SWA reference code's ``swa_lr`` for VGG16, C_h = 0.05).
        salr_gradient_calls: the equal budget of SGD and SGD-SALR (probe gradients counted) — about where SGD
            at ``salr_lr`` has converged on this problem.
        salr_lr, salr_every, salr_gamma, salr_steps: SGD-SALR's η₀ (also the constant rate of the SGD it is
            compared with), c (iterations between sharpness probes), γ and n_descent = n_ascent (SALR paper,
            Algorithms 2–3). With c = 10 and n₁ = n₂ = 5 a probe costs one extra gradient call per iteration.
        salr_max_ratios: one SGD-SALR run per entry, each with η_k/η₀ bounded by it (``inf``: Algorithm 1
            exactly, unbounded; a finite bound keeps early rates — when the median rests on a few Ŝ — in check).
        salr_min_ratio: lower bound on η_k/η₀ of every SGD-SALR run (0: Algorithm 1's rule, never a reversed step).
        measure_samples: training examples the measurements use (the objective f).
        epsilon: radius ε of ϕ and S; gamma, probe_steps: Ŝ of Definition 1.
        ascent_steps: projected gradient steps of ϕ and S.
        lanczos_iterations, trace_samples: Hessian settings.
        plane_resolution, line_points: surface grids.
        threads: torch intra-op threads during the run (restored afterwards). The demo's networks are small:
            one thread is as fast as two for them and, on a loaded machine, avoids the many-fold slowdown of
            oversubscribed OpenMP threads (measured: 200 SGD steps 0.65 s on one thread vs 48 s on two while
            other jobs kept the 2-core machine busy).
    """

    model: str = "cnn1d"
    seeds: int = 3
    batch_size: int = 128
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_high: float = 0.05
    lr_low: float = 0.01
    case2_iterations: int = 960
    case1_iterations: int = 9600
    swa_iterations: int = 960
    swa_cycle: int = 32
    swa_lr: float = 0.01
    salr_gradient_calls: int = 9000
    salr_lr: float = 0.05
    salr_every: int = 10
    salr_gamma: float = 0.01
    salr_steps: int = 5
    salr_max_ratios: tuple[float, ...] = (math.inf, 2.0)
    salr_min_ratio: float = 0.0
    measure_samples: int = 4000
    epsilon: float = 0.05
    gamma: float = 0.01
    probe_steps: int = 5
    ascent_steps: int = 20
    lanczos_iterations: int = 60
    trace_samples: int = 30
    plane_resolution: int = 21
    line_points: int = 41
    threads: int = 1

    @classmethod
    def quick(cls) -> DemoConfig:
        """Small budgets for tests and smoke runs (about a minute on 2 CPU cores)."""
        return cls(
            case2_iterations=64,
            case1_iterations=320,
            swa_iterations=96,
            swa_cycle=16,
            salr_gradient_calls=240,
            measure_samples=500,
            ascent_steps=5,
            lanczos_iterations=15,
            trace_samples=5,
            plane_resolution=7,
            line_points=9,
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self, seed: int) -> str:
        """Hash of the settings (but the number of seeds) and ``seed``: a finished stage of that seed is reused
        only under the same fingerprint (adding seeds keeps the others' stages)."""
        cfg = self.as_dict()
        cfg["salr_max_ratios"] = [repr(float(v)) for v in cfg["salr_max_ratios"]]
        cfg.pop("seeds")
        text = json.dumps({"config": cfg, "seed": seed}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
