"""Mean ± sample standard deviation over seeds of every solution's evaluation (the demo's headline numbers)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["mean_sd", "summarize"]

_KEYS = ("test_accuracy", "test_loss", "train_accuracy", "train_loss")


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


def summarize(per_seed: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """For every solution name: :func:`mean_sd` of each evaluated quantity over the seeds where it exists, and
    the seeds on which the run diverged (excluded from the statistics)."""
    names: list[str] = []
    for docs in per_seed.values():
        names += [n for n in docs if n not in names]
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = [(seed, docs[name]) for seed, docs in per_seed.items() if name in docs]
        ok = [r for _, r in rows if "diverged" not in r]
        out[name] = {k: mean_sd([float(r[k]) for r in ok]) for k in _KEYS}
        out[name]["diverged"] = [seed for seed, r in rows if "diverged" in r]
    return out


def fmt(stat: dict[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± sd"`` (scaled, e.g. by 100 for percentages)."""
    if stat["mean"] is None:
        return "—"
    if stat["sd"] is None:
        return f"{stat['mean'] * scale:.{digits}f}"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['sd'] * scale:.{digits}f}"
