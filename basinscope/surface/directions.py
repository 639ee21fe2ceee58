"""Filter-normalized random directions (Li, Xu, Taylor, Studer, Goldstein, "Visualizing the Loss Landscape of
Neural Nets", NeurIPS 2018, §4).

A direction d is drawn i.i.d. N(0, 1) with the shape of the weights θ, then every filter is rescaled to the
norm of the matching filter of θ,

    d_{i,j} ← d_{i,j} / ‖d_{i,j}‖ · ‖θ_{i,j}‖          (Li et al. 2018, §4, filter normalization)

so that plots of f(θ + α·d) (or f(θ + α·d₁ + β·d₂)) are comparable between networks and scale-invariant
layers. Biases and BatchNorm parameters (all 1-D tensors) are set to zero by default (``ignore="biasbn"``),
as in the authors' code; ``ignore=None`` copies them from θ instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .. import params as P
from .._checks import check_choice, check_int, fail
from ..objective import Objective

__all__ = ["random_directions"]


def _weights(like: Objective | Mapping[str, torch.Tensor]) -> P.Params:
    if isinstance(like, Objective):
        return like.point()
    if isinstance(like, Mapping) and like and all(isinstance(v, torch.Tensor) for v in like.values()):
        return {k: v.detach() for k, v in like.items()}
    fail("like", "an Objective or a non-empty dict[str, Tensor] of weights", like, exc=TypeError)


def random_directions(
    like: Objective | Mapping[str, torch.Tensor],
    n: int = 1,
    *,
    seed: int = 0,
    normalize: str | None = "filter",
    ignore: str | None = "biasbn",
    distribution: str = "normal",
) -> list[P.Params]:
    """``n`` random directions shaped like the weights, filter-normalized as in Li et al. 2018.

    Args:
        like: an :class:`~basinscope.objective.Objective` (its current point θ) or a weight dict θ.
        n: number of directions (1 for a line, 2 for a plane).
        seed: the directions are a function of ``seed`` alone (drawn on the CPU in float64, then cast), so
            the same seed gives the same directions on every device.
        normalize: ``"filter"`` (Li et al. §4) or ``None`` (raw Gaussian directions).
        ignore: ``"biasbn"`` zeroes the direction on 1-D tensors (biases, BatchNorm weights and biases);
            ``None`` sets it equal to θ there (Li et al.'s alternative). Only used with ``normalize="filter"``.
        distribution: ``"normal"`` or ``"rademacher"``.

    Returns:
        A list of ``n`` parameter dicts.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
        >>> (d,) = random_directions(dict(model.named_parameters()), seed=0)
        >>> bool(torch.allclose(d["0.weight"].norm(dim=1), model[0].weight.detach().norm(dim=1)))
        True
        >>> float(d["0.bias"].abs().sum())
        0.0
    """
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if normalize is not None:
        check_choice("normalize", normalize, ("filter",))
    weights = _weights(like)
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        d = P.random_direction(weights, generator=generator, distribution=distribution)
        if normalize == "filter":
            d = P.filter_normalize(d, weights, ignore=ignore)
        out.append(d)
    return out
