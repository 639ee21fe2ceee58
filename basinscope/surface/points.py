"""The points of a surface: weight dicts or full state_dicts, validated against the objective.

:func:`prepare_points` checks parameter dicts (keys and shapes of ``obj``'s trainable parameters) and moves them
to the objective's device and dtype. :func:`prepare_states` also accepts full state_dicts and splits them into the
weights and the *state* (buffers such as BatchNorm running statistics, frozen parameters); :func:`state_directions`
turns the states of the defining points into directions that :func:`~basinscope.surface.grid.evaluate_points`
follows with the same coordinates as the weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import params as P
from .._checks import check_params_like, fail
from ..objective import Objective

__all__ = ["check_labels", "prepare_points", "prepare_states", "state_directions"]


def prepare_states(
    obj: Objective, points: Sequence[tuple[str, Any]]
) -> tuple[list[P.Params], list[dict[str, torch.Tensor]] | None]:
    """Split points given as parameter dicts or as full state_dicts into (weights, states).

    A point holding any state entry (a buffer or frozen parameter of ``obj.model``) must hold the whole
    ``state_dict``; then every point must. Returns the validated weights (as :func:`prepare_points`) and the
    states (detached copies on the device, each entry in its buffer's dtype), or ``None`` when the points are
    parameter dicts.
    """
    params = obj.point()
    model_state = {} if obj.is_function else obj.model.state_dict()
    state_ref = {k: v for k, v in model_state.items() if k not in params}
    full = [isinstance(w, Mapping) and any(k in state_ref for k in w) for _, w in points]
    if not any(full):
        return prepare_points(obj, points), None
    first = full.index(True)
    for (name, w), is_full in zip(points, full):
        if not is_full:
            fail(
                name,
                f"a full state_dict (parameters and buffers) like {points[first][0]}",
                "trainable parameters only",
                raw=True,
            )
        check_params_like(name, w, model_state, keys="the keys of the model's state_dict (parameters and buffers)")
    weights = prepare_points(obj, [(name, {k: w[k] for k in params}) for name, w in points])
    states = [
        {k: w[k].detach().to(device=ref.device, dtype=ref.dtype).clone() for k, ref in state_ref.items()}
        for _, w in points
    ]
    return weights, states


def state_directions(
    states: Sequence[Mapping[str, torch.Tensor]], weights: np.ndarray
) -> list[dict[str, torch.Tensor]]:
    """Directions of the floating state entries: ``Σ_j weights[i, j]·states[j]`` for each row i (float64 sums,
    cast to each entry's dtype)."""
    names = [k for k, v in states[0].items() if v.is_floating_point()]
    out = []
    for row in np.asarray(weights, dtype=np.float64):
        d = {}
        for k in names:
            acc = torch.zeros_like(states[0][k], dtype=torch.float64)
            for c, st in zip(row, states):
                if c != 0.0:
                    acc.add_(st[k].to(torch.float64), alpha=float(c))
            d[k] = acc.to(states[0][k].dtype)
        out.append(d)
    return out


def prepare_points(obj: Objective, points: Sequence[tuple[str, Any]]) -> list[P.Params]:
    """Validate weight dicts against ``obj`` and move them to its device and dtype (detached copies)."""
    ref = obj.point()
    out = []
    for name, w in points:
        check_params_like(name, w, ref)
        out.append({k: w[k].detach().to(device=ref[k].device, dtype=ref[k].dtype).clone() for k in ref})
    return out


def check_labels(labels: Sequence[str], count: int) -> list[str]:
    """The names of a surface's ``count`` defining points as a list, refused unless they are ``count`` strings."""
    labels = list(labels)
    if len(labels) != count or not all(isinstance(s, str) for s in labels):
        fail("labels", f"{_COUNT_WORDS[count]} strings", labels)
    return labels


_COUNT_WORDS = {2: "two", 3: "three"}
