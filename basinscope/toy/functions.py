"""1-D test functions of the SALR paper's teaching figures, as plain differentiable torch functions.

* :func:`salr_toy` — f(θ) = 0.5·θ·sin(3θ) + 1 (SALR paper, Fig. 2): alternating minima and maxima whose
  curvature grows with |θ|.
* :func:`sharp_flat` — one sharp and one flat minimum of equal depth (the idea of the SALR paper's Fig. 1):

      f(θ) = 1 − G_s(θ) − G_w(θ) + κ (θ − b)² (1 − G_s(θ)),    G_σ(θ) = exp(−(θ − c_σ)²/(2σ²)),

  a sharp Gaussian well at a = −1 (width s = 0.1) and a flat one at b = 2 (width w = 0.5), inside a bowl
  κ(θ − b)² (κ = 0.05) that is switched off inside the sharp well (factor 1 − G_s) so it adds nothing to f
  or ∇f at a. Both minima sit at a and b (up to the other well's Gaussian tail, < 2e-8) with f ≈ 0 at both:
  equal depth to within 1e-7. Curvature: f''(a) = (1 + κ(a − b)²)/s² = 145, f''(b) = 1/w² + 2κ = 4.1.
  Outside the sharp well the bowl slopes towards the flat minimum and keeps every gradient method bounded.

All functions accept a tensor of any shape and apply elementwise; a one-element tensor gives the scalar the
:class:`~basinscope.objective.Objective` needs (``Objective.from_function(salr_toy, 1.0)``).
"""

from __future__ import annotations

import torch

__all__ = ["SHARP_FLAT_MINIMA", "salr_toy", "salr_toy_critical_points", "sharp_flat"]

#: (sharp minimum, flat minimum) of :func:`sharp_flat`
SHARP_FLAT_MINIMA = (-1.0, 2.0)
_SHARP_WIDTH = 0.1
_FLAT_WIDTH = 0.5
_KAPPA = 0.05


def salr_toy(theta: torch.Tensor) -> torch.Tensor:
    """f(θ) = 0.5·θ·sin(3θ) + 1 (SALR paper, Fig. 2).

    Example:
        >>> float(salr_toy(torch.tensor(0.0)))
        1.0
    """
    return 0.5 * theta * torch.sin(3.0 * theta) + 1.0


def salr_toy_critical_points(lo: float, hi: float) -> tuple[list[float], list[float]]:
    """(local minima, local maxima) of :func:`salr_toy` in [lo, hi], to machine precision.

    f'(θ) = 0.5 sin 3θ + 1.5 θ cos 3θ; sign changes on a fine grid are refined with ``scipy.optimize.brentq``.
    """
    import numpy as np
    from scipy.optimize import brentq

    def d1(t: float) -> float:
        return 0.5 * np.sin(3 * t) + 1.5 * t * np.cos(3 * t)

    def d2(t: float) -> float:
        return 3.0 * np.cos(3 * t) - 4.5 * t * np.sin(3 * t)

    grid = np.linspace(lo, hi, 20001)
    vals = d1(grid)
    minima, maxima = [], []
    for i in np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]:
        root = brentq(d1, grid[i], grid[i + 1], xtol=1e-15)
        (minima if d2(root) > 0 else maxima).append(float(root))
    return minima, maxima


def sharp_flat(theta: torch.Tensor) -> torch.Tensor:
    """A sharp minimum at θ = −1 and a flat one at θ = 2, both of depth ≈ 0 (see the module docstring).

    Example:
        >>> abs(float(sharp_flat(torch.tensor(-1.0)))) < 1e-7, abs(float(sharp_flat(torch.tensor(2.0)))) < 1e-7
        (True, True)
    """
    a, b = SHARP_FLAT_MINIMA
    sharp = torch.exp(-((theta - a) ** 2) / (2 * _SHARP_WIDTH**2))
    flat = torch.exp(-((theta - b) ** 2) / (2 * _FLAT_WIDTH**2))
    return 1.0 - sharp - flat + _KAPPA * (theta - b) ** 2 * (1.0 - sharp)
