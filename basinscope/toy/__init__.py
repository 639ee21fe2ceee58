"""1-D teaching functions and demos of the SALR paper (Figs. 1–3, Theorems 1–2)."""

from .demos import escape_demo, gd, gd_salr, salr_trace, sharpness_profile
from .functions import SHARP_FLAT_MINIMA, salr_toy, salr_toy_critical_points, sharp_flat
from .results import EscapeResult, SALRTrace, SharpnessProfile

__all__ = [
    "SHARP_FLAT_MINIMA",
    "EscapeResult",
    "SALRTrace",
    "SharpnessProfile",
    "escape_demo",
    "gd",
    "gd_salr",
    "salr_toy",
    "salr_toy_critical_points",
    "salr_trace",
    "sharp_flat",
    "sharpness_profile",
]
