"""Sharpness estimators (SALR paper, §III): Keskar's ϕ (eq. 1), the two-sided S (eq. 2), the probe Ŝ
(Definition 1) and its minibatch version (Algorithm 2).

=====================  ==========================================================  ===========================
function               quantity                                                    search
=====================  ==========================================================  ===========================
``keskar``             ϕ = [max_{C_ε(θ)} f − f(θ)] / (1 + f(θ))                     ball: projected gradient
                                                                                   ascent; box: L-BFGS-B
``two_sided``          S = max_{B_ε(θ)} f − min_{B_ε(θ)} f                           projected gradient steps
``probe``              Ŝ = f(θ⁺) − f(θ⁻), normalized full gradients                 Definition 1
``stochastic_probe``   Ŝ on a minibatch, per-example normalized gradients           Algorithm 2
``clamped_walk_probe`` Ŝ on a minibatch as the SALR authors' released script:       clamped steps on a summed
                       (f(θ⁺) − f(θ)) + (f(θ⁺) − f(θ⁺⁻))                             gradient, descent from θ⁺
=====================  ==========================================================  ===========================
"""

from .clamped_walk import clamped_walk_probe
from .keskar import keskar
from .probe import probe
from .result import SharpnessResult
from .stochastic import stochastic_probe
from .two_sided import two_sided

__all__ = ["SharpnessResult", "clamped_walk_probe", "keskar", "probe", "stochastic_probe", "two_sided"]
