"""The plane through three points of weight space (Garipov, Izmailov, Podoprikhin, Vetrov, Wilson, "Loss
Surfaces, Mode Connectivity, and Fast Ensembling of DNNs", NeurIPS 2018, §5 and Fig. 1; used for the
test-error surface through three SWA samples in the SWA-revisited paper, Fig. 6).

With w1, w2, w3 the plane is spanned by an orthonormal basis from Gram–Schmidt,

    u = (w2 − w1) / ‖w2 − w1‖,    v = r / ‖r‖  with  r = (w3 − w1) − ⟨w3 − w1, u⟩·u,

and a grid point is θ(α, β) = w1 + α·u + β·v. The three points have plane coordinates
w1 → (0, 0), w2 → (‖w2 − w1‖, 0), w3 → (⟨w3 − w1, u⟩, ‖r‖). The grid covers the points' bounding box
widened by ``margin`` times its extent on each side; the node nearest each point is moved onto it, and the
points themselves are evaluated at their exact weights, so the surface there equals ``obj.loss(w_k)``.

The points may be full state_dicts (parameters and buffers): floating buffers then follow the affine map that
takes the plane coordinates of w1, w2, w3 to their states — at θ(α, β) = w1 + c₂·(w2 − w1) + c₃·(w3 − w1) the
state is s1 + c₂·(s2 − s1) + c₃·(s3 − s1) — so each point is evaluated with its own BatchNorm statistics;
integer buffers (``num_batches_tracked``) are those of w1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import params as P
from .._checks import check_positive, check_type, fail
from ..objective import Objective
from ._axes import axis_with_nodes, grid_coords, resolution_pair
from .grid import bn_recompute_kind, evaluate_points, warn_batchnorm
from .points import check_labels, prepare_states, state_directions
from .results import Surface2D

__all__ = ["plane", "plane_basis"]


def _f64(p: Mapping[str, torch.Tensor]) -> P.Params:
    return {k: v.detach().to(torch.float64) for k, v in p.items()}


def plane_basis(
    w1: Mapping[str, torch.Tensor], w2: Mapping[str, torch.Tensor], w3: Mapping[str, torch.Tensor]
) -> tuple[P.Params, P.Params, np.ndarray]:
    """Orthonormal basis (u, v) of the plane through w1, w2, w3 (float64) and the points' coordinates.

    Returns ``(u, v, coords)`` with ``coords`` of shape ``(3, 2)``. Raises ``ValueError`` for duplicate or
    collinear points."""
    a, b, c = _f64(w1), _f64(w2), _f64(w3)
    d2, d3 = P.sub(b, a), P.sub(c, a)
    if float(P.norm(d2)) == 0.0:
        fail("w2", "weights different from w1", "the same point as w1", raw=True)
    if float(P.norm(d3)) == 0.0:
        fail("w3", "weights different from w1", "the same point as w1", raw=True)
    if float(P.norm(P.sub(c, b))) == 0.0:
        fail("w3", "weights different from w2", "the same point as w2", raw=True)
    dtype = next(iter(w1.values())).dtype
    rtol = 100 * torch.finfo(dtype).eps if dtype.is_floating_point else 1e-12
    try:
        u, v = P.gram_schmidt([d2, d3], rtol=rtol)
    except ValueError as e:
        fail("w3", "a point off the line through w1 and w2", f"collinear points ({e})", raw=True)
    coords = np.array(
        [[0.0, 0.0], [float(P.norm(d2)), 0.0], [float(P.dot(d3, u)), float(P.dot(d3, v))]], dtype=np.float64
    )
    return u, v, coords


def plane(
    obj: Objective,
    w1: Mapping[str, torch.Tensor],
    w2: Mapping[str, torch.Tensor],
    w3: Mapping[str, torch.Tensor],
    *,
    test: Objective | None = None,
    resolution: int | Sequence[int] = 21,
    margin: float = 0.25,
    bn_data: Any = None,
    store: Any = None,
    progress: bool = True,
    labels: Sequence[str] = ("w1", "w2", "w3"),
    marks: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    checkpoint_every: float = 10.0,
    distributed: bool | None = None,
) -> Surface2D:
    """Train loss/error and test loss/error on the plane through three weight vectors.

    θ(α, β) = w1 + α·u + β·v with (u, v) the Gram–Schmidt basis of (w2 − w1, w3 − w1) (Garipov et al. 2018;
    SWA-revisited paper, Fig. 6).

    Args:
        obj: the training objective (train loss, and train error for classification).
        w1, w2, w3: weight dicts keyed like ``obj.names`` (e.g. three SWA samples, ``obj.point()``), or all
            three full state_dicts of ``obj.model``: their floating buffers are interpolated too (see above).
        test: optional test objective; adds ``test_loss`` and ``test_error``.
        resolution: grid nodes per axis (``int`` or ``(nx, ny)``), at least 2. An axis gains a node when two
            points need the same node.
        margin: the grid extends ``margin`` × the points' extent beyond them on each side.
        bn_data: recompute BatchNorm statistics at every grid point (``True``: from ``obj``'s data; or a
            DataLoader / batches / ``(x, y)`` pair), as ``torch.optim.swa_utils.update_bn`` would. ``None``
            (default) keeps the model's statistics and warns for a BatchNorm model; ``False`` keeps them silently.
        store: directory for partial results; rerun with the same arguments to resume (see
            :mod:`basinscope.surface.store`).
        progress: show a progress bar.
        labels: names of the three points.
        marks: further points to mark by their projection onto the plane (e.g. ``{"SWA": average}``).
        checkpoint_every: seconds between writes to ``store``.
        distributed: split the grid across torch.distributed ranks (default: when running under torchrun).

    Returns:
        :class:`Surface2D` with the three points at grid indices ``point_indices``.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> from basinscope import Objective
        >>> model = torch.nn.Linear(4, 3)
        >>> obj = Objective(model, F.cross_entropy, (torch.randn(32, 4), torch.randint(0, 3, (32,))))
        >>> w1 = obj.point(); w2 = {k: v + 0.5 for k, v in w1.items()}; w3 = {k: v * 1.5 for k, v in w1.items()}
        >>> s = plane(obj, w1, w2, w3, resolution=5, progress=False)
        >>> s.at_point("w1", "train_loss") == float(obj.loss(w1))
        True
    """
    check_type("obj", obj, Objective, "an Objective")
    margin = check_positive("margin", margin, allow_zero=True)
    nx, ny = resolution_pair(resolution)
    labels = check_labels(labels, 3)
    pts, states = prepare_states(obj, [("w1", w1), ("w2", w2), ("w3", w3)])
    if states is None:  # full state_dicts carry their own BatchNorm statistics
        warn_batchnorm(obj, bn_data)
    u, v, pc = plane_basis(*pts)

    lo, hi = pc.min(axis=0), pc.max(axis=0)
    ext = hi - lo
    alphas = axis_with_nodes(lo[0] - margin * ext[0], hi[0] + margin * ext[0], nx, pc[:, 0])
    betas = axis_with_nodes(lo[1] - margin * ext[1], hi[1] + margin * ext[1], ny, pc[:, 1])
    coords = grid_coords(alphas, betas)
    indices = [[int(np.flatnonzero(alphas == a)[0]), int(np.flatnonzero(betas == b)[0])] for a, b in pc]
    exact = {j * len(alphas) + i: pts[k] for k, (i, j) in enumerate(indices)}

    mark_coords, mark_labels, offsets = [], [], {}
    for name, m in (marks or {}).items():
        (mp,), _ = prepare_states(obj, [(f"marks[{name!r}]", m)])
        d = P.sub(_f64(mp), _f64(pts[0]))
        a, b = float(P.dot(d, u)), float(P.dot(d, v))
        mark_coords.append([a, b])
        mark_labels.append(str(name))
        offsets[str(name)] = float(max(float(P.dot(d, d)) - a * a - b * b, 0.0) ** 0.5)

    ref = pts[0]
    cast = [{k: t[k].to(ref[k].dtype) for k in ref} for t in (u, v)]
    state_path, exact_states = None, {}
    if states is not None:
        # α·u + β·v = c₂·(w2 − w1) + c₃·(w3 − w1) with c₃ = β / y3 and c₂ = (α − c₃·x3) / x2, (x2, 0) and (x3, y3)
        # the coordinates of w2 and w3: the state directions are the images of u (α = 1) and v (β = 1).
        (x2, _), (x3, y3) = pc[1], pc[2]
        rows = [[-1.0 / x2, 1.0 / x2, 0.0], [(x3 / x2 - 1.0) / y3, -x3 / x2 / y3, 1.0 / y3]]
        state_path = (states[0], state_directions(states, rows))
        exact_states = {j * len(alphas) + i: states[k] for k, (i, j) in enumerate(indices)}
    bn_kind = bn_recompute_kind(bn_data)
    values, cost, seconds = evaluate_points(
        obj,
        ref,
        cast,
        coords,
        exact=exact,
        test=test,
        bn_data=bn_data,
        store=store,
        checkpoint_every=checkpoint_every,
        progress=progress,
        distributed=distributed,
        desc="plane",
        key={"kind": "plane", "bn": bn_kind},
        states=state_path,
        exact_states=exact_states,
    )
    shape = (len(betas), len(alphas))
    grid = {k: None if a is None else a.reshape(shape) for k, a in values.items()}
    settings = {
        "resolution": [nx, ny],
        "margin": margin,
        "bn_recompute": bn_kind,
        "buffers": "interpolated" if states is not None else "model",
        "test": test is not None,
        "distances": {"w1_w2": float(pc[1, 0]), "w1_w3": float(np.hypot(*pc[2]))},
        "mark_offsets_from_plane": offsets,
    }
    return Surface2D(
        alphas=alphas,
        betas=betas,
        **grid,
        points=np.array(pc.tolist() + mark_coords, dtype=np.float64),
        point_labels=labels + mark_labels,
        point_indices=indices + [[-1, -1]] * len(mark_labels),
        kind="plane",
        settings=settings,
        cost=cost,
        seconds=seconds,
    )
