"""Mean ± sample standard deviation over seeds, and its ``"mean ± sd"`` text (the report's per-seed tables)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["mean_sd"]


def mean_sd(values: list[float]) -> dict[str, Any]:
    """``{"mean", "sd", "n", "values"}``: sd is the sample standard deviation (n − 1), ``None`` for n < 2.

    Example:
        >>> mean_sd([1.0, 2.0, 3.0])["sd"]
        1.0
    """
    n = len(values)
    if n == 0:
        return {"mean": None, "sd": None, "n": 0, "values": []}
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "sd": sd, "n": n, "values": list(values)}


def fmt(stat: dict[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± sd"`` (scaled, e.g. by 100 for percentages)."""
    if stat["mean"] is None:
        return "—"
    if stat["sd"] is None:
        return f"{stat['mean'] * scale:.{digits}f}"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['sd'] * scale:.{digits}f}"
