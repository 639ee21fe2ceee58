"""Settings of ``landscape demo``: the full run (about 10 minutes on 2 CPU cores) and the quick one (< 2 min)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

__all__ = ["DemoConfig"]


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Every setting of the demo. Budgets are in iterations of minibatch SGD (one gradient call each) unless
    named ``*_gradient_calls``.

    Attributes:
        model: zoo model trained on MNIST-1D.
        batch_size: training minibatch size (MNIST-1D has 4,000 training examples: 32 iterations per epoch).
        momentum, weight_decay: of SGD in every phase (the SWA reference code's values).
        lr_high, lr_low: C_h and C_l of the pre-SWA schedule (SWA Revisited, Fig. 9); the SWA phase runs at the
            high constant rate ``swa_lr`` (the "high constant" option of the CHC schedule, Algorithm 1).
        case2_iterations: SGD at the constant rate C_h, stopped before convergence (Case II).
        case1_iterations: SGD under the pre-SWA schedule, run to convergence (Case I).
        swa_iterations: the budget n of each of SWA, DSWA (2 rounds of n/2) and TSWA (3 rounds of n/3).
        swa_cycle: c, iterations between SWA samples.
        salr_gradient_calls: the equal budget of SGD and SGD-SALR (probe gradients counted).
        salr_lr, salr_every, salr_gamma, salr_steps: SGD-SALR's η₀ (also the rate of the SGD it is compared
            with), c (iterations between sharpness probes), γ and n_descent = n_ascent (SALR paper, Algorithms 2–3).
            η₀ is lower than C_h because η_k = η₀·Ŝ_k/median(Ŝ) peaks at several times η₀.
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
    batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_high: float = 0.05
    lr_low: float = 0.01
    case2_iterations: int = 480
    case1_iterations: int = 4800
    swa_iterations: int = 1920
    swa_cycle: int = 32
    swa_lr: float = 0.05
    salr_gradient_calls: int = 3000
    salr_lr: float = 0.01
    salr_every: int = 2
    salr_gamma: float = 0.01
    salr_steps: int = 2
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
        """Small budgets for tests and smoke runs (under 2 minutes on 2 CPU cores)."""
        return cls(
            case2_iterations=96,
            case1_iterations=384,
            swa_iterations=192,
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
        """Hash of the settings and seed: finished stages are reused only under the same fingerprint."""
        text = json.dumps({"config": self.as_dict(), "seed": seed}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
