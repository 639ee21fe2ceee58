"""Settings of ``basinscope demo``: the full run and the quick one (see :class:`DemoConfig`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

__all__ = ["DEFAULT_EXPERIMENTS", "DemoConfig"]

#: the paper experiments the demo runs (``basinscope reproduce --list``); a name not registered in this
#: installation is skipped with a note in the report.
DEFAULT_EXPERIMENTS = ("swa-case2", "swa-case1", "swa-line", "salr-budget", "salr-table2")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Every setting of the demo that is not an experiment's own: the experiments run at size ``"demo"`` (or
    ``"quick"``) with their settings (:data:`basinscope.experiments.swa_revisited.SETTINGS` and the like); the
    demo measures the first seed's solutions they expose and draws the plane through three SWA samples.

    Attributes:
        experiments: registered experiment names to run, in report order.
        seeds: number of seeds (``seed``, ``seed + 1``, …) every experiment runs (≥ 5 for the full demo: the
            verdicts' intervals are over seeds).
        model: zoo model of the solutions (the experiments' model; the measured weights are its state_dicts).
        measure_samples: training examples the measurements use (the objective f).
        epsilon: radius ε of ϕ and S; gamma, probe_steps: Ŝ of Definition 1 (SALR paper).
        ascent_steps: projected gradient steps of ϕ and S.
        lanczos_iterations, trace_samples: Hessian settings.
        plane_resolution: grid of the test-error plane through three SWA samples (SWA Revisited Fig. 6).
        threads: torch intra-op threads during the run (restored afterwards). The demo's networks are small:
            one thread is as fast as two for them and, on a loaded machine, avoids the many-fold slowdown of
            oversubscribed OpenMP threads (measured: 200 SGD steps 0.65 s on one thread vs 48 s on two while
            other jobs kept the 2-core machine busy).
    """

    experiments: tuple[str, ...] = DEFAULT_EXPERIMENTS
    seeds: int = 5
    model: str = "cnn1d"
    measure_samples: int = 4000
    epsilon: float = 0.05
    gamma: float = 0.01
    probe_steps: int = 5
    ascent_steps: int = 20
    lanczos_iterations: int = 60
    trace_samples: int = 30
    plane_resolution: int = 21
    threads: int = 1

    @property
    def size(self) -> str:
        """The experiments' size: ``"quick"`` for :meth:`quick`'s measurement settings, else ``"demo"``."""
        quick = DemoConfig.quick()
        mine = dataclasses.replace(self, threads=quick.threads, experiments=quick.experiments, seeds=quick.seeds)
        return "quick" if mine == quick else "demo"

    @classmethod
    def quick(cls) -> DemoConfig:
        """Small budgets for tests and smoke runs (under a minute on 2 CPU cores; its numbers are not evidence)."""
        return cls(
            seeds=3,
            measure_samples=500,
            ascent_steps=5,
            lanczos_iterations=15,
            trace_samples=5,
            plane_resolution=7,
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self, seed: int) -> str:
        """Hash of the measurement settings and ``seed``: a finished measurement is reused only under the same
        fingerprint (the experiments keep their own runs)."""
        cfg = self.as_dict()
        for key in ("seeds", "experiments", "threads"):
            cfg.pop(key)
        text = json.dumps({"config": cfg, "seed": seed}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
