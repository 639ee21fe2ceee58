"""Grid axes whose nodes include given coordinates exactly (so marked points are evaluated, not interpolated)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import check_int, fail


def resolution_pair(resolution: int | Sequence[int]) -> tuple[int, int]:
    """``21`` → ``(21, 21)``; ``(nx, ny)`` → itself; each at least 2."""
    if isinstance(resolution, (list, tuple)):
        if len(resolution) != 2:
            fail("resolution", "an integer or a pair (nx, ny)", resolution)
        return check_int("resolution[0]", resolution[0], minimum=2), check_int(
            "resolution[1]", resolution[1], minimum=2
        )
    r = check_int("resolution", resolution, minimum=2)
    return r, r


def axis_with_nodes(lo: float, hi: float, n: int, required: Sequence[float]) -> np.ndarray:
    """``n`` evenly spaced nodes on ``[lo, hi]`` where the node nearest each required coordinate is moved onto it.

    Moving a node by at most half a step keeps the axis increasing; when two different required values
    compete for one node the second is inserted instead (the axis then has more than ``n`` nodes).
    """
    nodes = np.linspace(lo, hi, n)
    taken: dict[int, float] = {}
    extra: list[float] = []
    for c in sorted(set(float(c) for c in required)):
        i = int(np.argmin(np.abs(nodes - c)))
        if i in taken and taken[i] != c:
            extra.append(c)
            continue
        taken[i] = c
    for i, c in taken.items():
        nodes[i] = c
    if extra:
        nodes = np.unique(np.concatenate([nodes, np.array(extra)]))
    return nodes
