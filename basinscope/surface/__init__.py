"""Loss surfaces: the plane through three points, lines between two points, random filter-normalized slices.

* :func:`plane` — train/test loss and error on the plane through three weight vectors (Garipov et al. 2018;
  SWA-revisited paper, Fig. 6).
* :func:`line` — along (1 − t)·start + t·end (SWA-revisited paper, Figs. 7–8).
* :func:`random_line`, :func:`random_plane`, :func:`random_directions` — Li et al. 2018 filter-normalized
  random directions.

Every evaluation is resumable (``store=DIR``), splits its points across ranks under ``torchrun``, and returns
a :class:`Surface1D` / :class:`Surface2D` that saves, loads and plots (matplotlib or self-contained plotly
HTML). See ``docs/surfaces.md``.
"""

from .curve import CurveResult, barrier_height, curve, evaluate_curve
from .curve_fit import CurveFit, curve_coefficients, curve_point, fit_curve
from .directions import random_directions
from .distributed import shutdown
from .grid import evaluate_points
from .line import line
from .plane import plane, plane_basis
from .random import random_line, random_plane
from .results import Surface1D, Surface2D
from .store import SurfaceStore

__all__ = [
    "CurveFit",
    "CurveResult",
    "Surface1D",
    "Surface2D",
    "SurfaceStore",
    "barrier_height",
    "curve",
    "curve_coefficients",
    "curve_point",
    "evaluate_curve",
    "evaluate_points",
    "fit_curve",
    "line",
    "plane",
    "plane_basis",
    "random_directions",
    "random_line",
    "random_plane",
    "shutdown",
]
