"""landscape: a measurement-first loss-landscape toolkit for PyTorch.

The one core object is :class:`Objective` (model + loss + data, or a plain function): f(θ), ∇f(θ), H(θ)v and
per-example gradients at any point θ, without mutating the model, counting what it spends. Everything else is a
function of an Objective returning a result object.
"""

from . import data, models, params
from ._state import preserve_state
from .objective import Cost, Objective
from .params import Params
from .results import Result

__version__ = "0.1.0"

__all__ = [
    # core
    "Cost",
    "Objective",
    "Params",
    "Result",
    "__version__",
    # modules
    "data",
    "models",
    "params",
    "preserve_state",
]
