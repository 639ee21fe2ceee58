"""Loss surfaces: the plane through three points, lines between two points, random filter-normalized slices.

* :func:`plane` — train/test loss and error on the plane through three weight vectors (Garipov et al. 2018;
  SWA-revisited paper, Fig. 6).
* :func:`line` — along (1 − t)·start + t·end (SWA-revisited paper, Figs. 7–8).
* :func:`random_line`, :func:`random_plane`, :func:`random_directions` — Li et al. 2018 filter-normalized
  random directions.
* :func:`hessian_line`, :func:`hessian_plane` — along the top Hessian eigenvectors (:func:`hessian_directions`).
* :func:`pca_line`, :func:`pca_plane` — along the principal directions of a training trajectory, with the
  trajectory projected onto the plane (Li et al. 2018, §7; :func:`pca_directions`).
* :func:`curve` — a mode-connecting Bézier curve or polygonal chain between two solutions, trained
  (:func:`fit_curve`) and evaluated beside the straight line, with barrier heights (Garipov et al. 2018).

Every evaluation is resumable (``store=DIR``), splits its points across ranks under ``torchrun``, and returns
a :class:`Surface1D` / :class:`Surface2D` that saves, loads and plots (matplotlib or self-contained plotly
HTML). See ``docs/surfaces.md``.
"""

from .curve import CurveResult, barrier_height, curve, evaluate_curve
from .curve_fit import CurveFit, curve_coefficients, curve_point, fit_curve
from .directions import random_directions
from .directions_hessian import hessian_directions, hessian_line, hessian_plane
from .distributed import shutdown
from .grid import evaluate_points
from .line import line
from .pca import PCADirections, pca_directions, pca_line, pca_plane
from .plane import plane, plane_basis
from .random import random_line, random_plane
from .results import Surface1D, Surface2D
from .store import SurfaceStore

__all__ = [
    "CurveFit",
    "CurveResult",
    "PCADirections",
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
    "hessian_directions",
    "hessian_line",
    "hessian_plane",
    "line",
    "pca_directions",
    "pca_line",
    "pca_plane",
    "plane",
    "plane_basis",
    "random_directions",
    "random_line",
    "random_plane",
    "shutdown",
]
