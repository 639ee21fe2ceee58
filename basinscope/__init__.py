"""basinscope: a measurement-first loss-landscape toolkit for PyTorch.

The one core object is :class:`Objective` (model + loss + data, or a plain function): f(θ), ∇f(θ), H(θ)v and
per-example gradients at any point θ, without mutating the model, counting what it spends. Everything else is a
function of an Objective returning a result object:

* sharpness (SALR paper, §III): :func:`keskar` (ϕ, eq. 1), :func:`two_sided` (S, eq. 2), :func:`probe`
  (Ŝ, Definition 1), :func:`stochastic_probe` (Algorithm 2);
* Hessian spectra: :func:`top_eigenvalues`, :func:`hessian_trace`, :func:`hessian_density`;
* loss surfaces: :func:`plane`, :func:`line`, :func:`random_line`, :func:`random_plane` (and in
  ``basinscope.surface``: Hessian and PCA directions, mode-connecting curves);
* optimizers (``basinscope.optim``): SWA / DSWA / TSWA, SALR, SAM, Entropy-SGD and the runner :func:`train`;
* 1-D teaching demos (``basinscope.toy``) and the demo report (:func:`run_demo`).
"""

from . import data, hessian, models, optim, params, sharpness, surface, toy
from ._state import preserve_state
from .checkpoint import load_state_dict, save_checkpoint
from .demo import run_demo
from .diagnose import diagnose
from .hessian import DensityResult, EigenResult, HessianOperator, TraceResult, top_eigenvalues
from .hessian import density as hessian_density
from .hessian import trace as hessian_trace
from .objective import Cost, Objective
from .optim import TrainResult, train
from .params import Params
from .results import Result
from .sharpness import SharpnessResult, keskar, probe, stochastic_probe, two_sided
from .surface import Surface1D, Surface2D, line, plane, random_line, random_plane

__version__ = "0.1.0"

__all__ = [
    # core
    "Cost",
    "Objective",
    "Params",
    "Result",
    "__version__",
    "preserve_state",
    # sharpness
    "SharpnessResult",
    "keskar",
    "probe",
    "stochastic_probe",
    "two_sided",
    # Hessian
    "DensityResult",
    "EigenResult",
    "HessianOperator",
    "TraceResult",
    "hessian_density",
    "hessian_trace",
    "top_eigenvalues",
    # surfaces
    "Surface1D",
    "Surface2D",
    "line",
    "plane",
    "random_line",
    "random_plane",
    # training
    "TrainResult",
    "train",
    # workflows
    "diagnose",
    "load_state_dict",
    "run_demo",
    "save_checkpoint",
    # modules
    "data",
    "hessian",
    "models",
    "optim",
    "params",
    "sharpness",
    "surface",
    "toy",
]
