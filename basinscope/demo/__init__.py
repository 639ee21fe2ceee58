"""``basinscope demo``: SWA/DSWA/TSWA (Cases I and II) and SGD-SALR on MNIST-1D, measured, as a report.

See :func:`run_demo` (the stages) and :class:`DemoConfig` (the settings of the full and quick runs).
"""

from .config import DemoConfig
from .run import run_demo

__all__ = ["DemoConfig", "run_demo"]
