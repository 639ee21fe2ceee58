"""Grid axes whose nodes include given coordinates exactly (so marked points are evaluated, not interpolated)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import check_int, fail

MAX_GRID_POINTS = 1 << 22  # 2048 x 2048: ~200 MB of result arrays, and one evaluation each
BYTES_PER_POINT = 49  # float64 coordinates (2) and values (4), one "done" flag


def check_grid_size(name: str, n_points: int, shape: str) -> None:
    """Refuse a grid of more than :data:`MAX_GRID_POINTS` points before anything is allocated."""
    if n_points > MAX_GRID_POINTS:
        size = n_points * BYTES_PER_POINT
        fail(
            name,
            f"at most {MAX_GRID_POINTS} grid points (each one evaluation and {BYTES_PER_POINT} bytes of result arrays)",
            f"{shape} = {n_points} points (~{size / 2**30:.3g} GiB before any evaluation)",
            raw=True,
        )


def resolution_pair(resolution: int | Sequence[int]) -> tuple[int, int]:
    """``21`` → ``(21, 21)``; ``(nx, ny)`` → itself; each at least 2, at most :data:`MAX_GRID_POINTS` in all."""
    if isinstance(resolution, (list, tuple)):
        if len(resolution) != 2:
            fail("resolution", "an integer or a pair (nx, ny)", resolution)
        nx = check_int("resolution[0]", resolution[0], minimum=2)
        ny = check_int("resolution[1]", resolution[1], minimum=2)
    else:
        nx = ny = check_int("resolution", resolution, minimum=2)
    check_grid_size("resolution", nx * ny, f"{nx} x {ny}")
    return nx, ny


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


def grid_coords(alphas: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """The nodes of the grid ``alphas × betas`` as ``(α, β)`` rows, α varying fastest (row-major in (β, α))."""
    aa, bb = np.meshgrid(alphas, betas)
    return np.stack([aa.reshape(-1), bb.reshape(-1)], axis=1)
