"""Hessian spectra of an :class:`~basinscope.objective.Objective`: extreme eigenpairs (Lanczos, power
iteration), the trace (Hutchinson, Hutch++) and the spectral density (stochastic Lanczos quadrature), of all
parameters or a subset (``layers=``), natively or through PyHessian (``backend="pyhessian"``).

Example:
    >>> import torch, torch.nn.functional as F
    >>> from basinscope.objective import Objective
    >>> from basinscope.hessian import top_eigenvalues, trace, density
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    >>> obj = Objective(model, F.cross_entropy, (torch.randn(64, 4).double(), torch.randint(0, 3, (64,))))
    >>> top = top_eigenvalues(obj, k=2)          # Lanczos, eigenvectors as parameter dicts
    >>> tr = trace(obj, method="hutch++", n_samples=30)
    >>> rho = density(obj, n_runs=4, n_iter=30)
"""

from .density import broaden, density
from .eigen import top_eigenvalues
from .hvp import HessianOperator, select_names
from .lanczos import LanczosRuns, ritz
from .results import DensityResult, EigenResult, TraceResult
from .trace import trace

__all__ = [
    "DensityResult",
    "EigenResult",
    "HessianOperator",
    "LanczosRuns",
    "TraceResult",
    "broaden",
    "density",
    "ritz",
    "select_names",
    "top_eigenvalues",
    "trace",
]
