"""The evaluation loop shared by every surface: f at θ_k = origin + Σ_i c_{k,i}·d_i for a list of points k.

What makes it fast (measured in ``docs/benchmarks/surface.md``):

* the objectives' batches are on the device once (``Objective`` caches them);
* no model copy and no ``load_state_dict`` per point: one reusable parameter dict is overwritten with
  ``torch._foreach_copy_`` / ``torch._foreach_add_`` and passed to ``functional_call``;
* ``torch.no_grad``; losses and correct counts stay device tensors (``Objective.evaluate_tensors``) and are
  copied to the host once per checkpoint (every ``checkpoint_every`` seconds), not once per point.

Points listed in ``exact`` are evaluated at the given weights instead of their reconstruction from the
coordinates, so a plane's defining points get exactly ``obj.loss(w)`` (Gram–Schmidt coordinates reproduce
them only up to rounding).

Full state_dicts as points (:mod:`basinscope.surface.points`): the entries of a state_dict that are not
trainable parameters (BatchNorm running statistics, other buffers, frozen parameters) are the point's *state*.
Floating state moves along the surface with the same coordinates as the weights, ``state_k = state_origin + Σ_i
c_{k,i}·s_i`` (the "states" directions of Li et al.'s loss-landscape code, which include BatchNorm buffers);
integer state such as ``num_batches_tracked`` is taken from the origin. It is passed to the model as its
buffers, so at a point given exactly the model runs with that point's own statistics.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._checks import check_positive, check_type, fail
from ..objective import Cost, Objective
from . import distributed as D
from .store import SurfaceStore, fingerprint

__all__ = ["COLUMNS", "bn_recompute_kind", "evaluate_points", "warn_batchnorm"]

COLUMNS = ("train_loss", "train_correct", "test_loss", "test_correct")


def warn_batchnorm(obj: Objective, bn_data: Any) -> None:
    """Warn when a surface through given points (SWA samples and averages, interpolations) of a BatchNorm model
    would reuse the model's running statistics: they belong to none of those points (SWA needs update_bn)."""
    if bn_data is None and not obj.is_function and _has_batchnorm(obj.model):
        warnings.warn(
            "bn_data: the model has BatchNorm layers and bn_data=None evaluates every parameter-only point with the "
            "model's current running statistics; pass bn_data=True to recompute them at every point (as update_bn "
            "does for SWA averages), or bn_data=False to keep them without this warning",
            UserWarning,
            stacklevel=3,
        )


def bn_recompute_kind(bn_data: Any) -> str | None:
    """How BatchNorm statistics are recomputed at every point, as recorded in settings and store keys: ``None``
    (not recomputed), ``"train"`` (from the objective's data, ``bn_data=True``) or ``"data"`` (from given data)."""
    return None if bn_data is None or bn_data is False else ("train" if bn_data is True else "data")


def _bn_objective(obj: Objective, bn_data: Any) -> Objective | None:
    if bn_data is None or bn_data is False:
        return None
    if obj.is_function:
        fail("bn_data", "None for an objective built from a function", bn_data)
    if bn_data is True:
        return obj
    return Objective(obj.model, obj.loss_fn, bn_data, device=obj.device, distributed=obj.distributed)


def _bn_state_names(model: torch.nn.Module) -> set[str]:
    """Names of the buffers that ``Objective.recompute_bn`` recomputes."""
    out = set()
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            prefix = f"{name}." if name else ""
            out.update(prefix + b for b in ("running_mean", "running_var", "num_batches_tracked"))
    return out


def _has_batchnorm(model: Any) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _data_key(o: Objective | None) -> Any:
    if o is None:
        return None
    if o.is_function:
        return {"function": repr(o._fn), "x0": o._x0}
    extra = {n: p for n, p in o.model.named_parameters() if n not in set(o.names)}
    return {
        "loss_fn": getattr(o.loss_fn, "__qualname__", type(o.loss_fn).__qualname__),
        "mode": o.mode,
        "n": o.num_samples,
        "batches": [list(b) for b in o.batches],
        "buffers": dict(o.model.named_buffers()),
        "frozen": extra,
    }


def _to_host(pending: list[tuple[int, torch.Tensor, Any, Any, Any]], values: np.ndarray, done: np.ndarray) -> None:
    """Copy pending device results into ``values`` (one stack + one device→host copy per column)."""
    if not pending:
        return
    idx = np.array([p[0] for p in pending], dtype=np.int64)
    for col in range(4):
        ts = [p[1 + col] for p in pending]
        if ts[0] is None:
            values[idx, col] = np.nan
        else:
            values[idx, col] = torch.stack([t.to(torch.float64) for t in ts]).cpu().numpy()
    done[idx] = True
    pending.clear()


def _check_finite(values: np.ndarray, done: np.ndarray, coords: np.ndarray, checks: Sequence[tuple[int, str]]) -> None:
    for col, name in checks:
        bad = np.flatnonzero(done & ~np.isfinite(values[:, col]))
        if bad.size:
            k = int(bad[0])
            where = ", ".join(f"{c:.4g}" for c in coords[k])
            fail(
                name,
                "a finite value at every grid point (pass check_finite=False to the Objective to keep them)",
                f"{values[k, col]} at {bad.size} point(s), first at point {k} (coordinates ({where}))",
                raw=True,
            )


def evaluate_points(
    obj: Objective,
    origin: Mapping[str, torch.Tensor],
    directions: Sequence[Mapping[str, torch.Tensor]],
    coords: np.ndarray,
    *,
    exact: Mapping[int, Mapping[str, torch.Tensor]] | None = None,
    test: Objective | None = None,
    bn_data: Any = None,
    store: Any = None,
    checkpoint_every: float = 10.0,
    progress: bool = True,
    distributed: bool | None = None,
    desc: str = "surface",
    key: Any = None,
    states: tuple[Mapping[str, torch.Tensor], Sequence[Mapping[str, torch.Tensor]]] | None = None,
    exact_states: Mapping[int, Mapping[str, torch.Tensor]] | None = None,
) -> tuple[dict[str, np.ndarray | None], Cost, float]:
    """Evaluate train (and test) loss and error at ``origin + coords[k] @ directions`` for every k.

    Args:
        obj: the training objective.
        origin, directions: weight dicts keyed like ``obj.names``.
        coords: ``(n_points, len(directions))`` coordinates (float64).
        exact: ``{k: weights}`` for points evaluated at the given weights instead of their reconstruction.
        test: optional second objective (test loss and error).
        bn_data: ``None`` (use the model's BatchNorm statistics), ``True`` (recompute them at every point from
            ``obj``'s data) or data to recompute them from, with ``Objective.recompute_bn``.
        store: a directory for partial results (resumable), or ``None``.
        checkpoint_every: seconds between writes to the store (0: after every point).
        progress: show a tqdm bar.
        distributed: split points across torch.distributed ranks (``None``: when initialized or
            ``WORLD_SIZE > 1``). Points are never split for a distributed objective
            (``Objective(..., distributed=True)``): every rank evaluates every point on its shard.
        desc: progress-bar label.
        key: extra settings that change the values (part of the store's fingerprint).
        states: ``(state at the origin, one state direction per direction)``: the non-parameter entries of
            a state_dict (buffers, frozen parameters) at ``origin + coords[k] @ state_directions`` are passed to
            the model as its buffers (directions hold only the floating entries; the others stay as at the
            origin). With ``bn_data`` the BatchNorm statistics are recomputed instead and the rest of the
            state is kept. ``None``: the model's own buffers.
        exact_states: ``{k: state}`` for the points in ``exact`` (default: reconstructed from the coordinates).

    Returns:
        ``({"train_loss", "train_error", "test_loss", "test_error"} → (n_points,) arrays or None``,
        cost, seconds).
    """
    check_type("obj", obj, Objective, "an Objective")
    if test is not None:
        check_type("test", test, Objective, "an Objective or None")
        if sorted(test.names) != sorted(obj.names):
            missing = sorted(set(obj.names) - set(test.names))[:3]
            extra = sorted(set(test.names) - set(obj.names))[:3]
            fail(
                "test",
                "an Objective over the same trainable parameter names as obj",
                f"missing {missing}, extra {extra}",
                raw=True,
            )
    checkpoint_every = check_positive("checkpoint_every", checkpoint_every, allow_zero=True)
    coords = np.asarray(coords, dtype=np.float64)
    n_points = coords.shape[0]
    if coords.ndim != 2 or n_points == 0 or coords.shape[1] != len(directions):
        fail("grid", f"a non-empty grid of points with {len(directions)} coordinates each", coords, raw=False)
    exact = dict(exact or {})
    exact_states = {int(k): v for k, v in (exact_states or {}).items()}
    if states is not None and len(states[1]) != len(directions):
        fail("states", f"a state origin and {len(directions)} state directions", f"{len(states[1])}", raw=True)
    bn_obj = _bn_objective(obj, bn_data)
    data_parallel = any(o is not None and o.distributed for o in (obj, test, bn_obj))
    # a distributed objective already spreads each point's data over the ranks: the points are not split
    on = False if data_parallel else D.active(obj.device, distributed)
    rank, world = D.rank_and_world(on)
    store_rank = torch.distributed.get_rank() if data_parallel else rank

    t0 = time.perf_counter()
    done = np.zeros(n_points, dtype=bool)
    values = np.full((n_points, 4), np.nan, dtype=np.float64)
    saver = None
    if store is not None:
        fp = fingerprint(
            coords=coords,
            origin=dict(origin),
            directions=[dict(d) for d in directions],
            exact={int(k): dict(v) for k, v in exact.items()},
            train=_data_key(obj),
            test=_data_key(test),
            test_is_train=test is obj,
            bn=_data_key(bn_obj),
            key=key,
            **(
                {}
                if states is None
                else {"states": [dict(states[0]), [dict(d) for d in states[1]]], "exact_states": exact_states}
            ),
        )
        saver = SurfaceStore(store, fingerprint=fp, n_points=n_points, columns=list(COLUMNS), rank=store_rank)
        done, values = saver.open()
        if on or data_parallel:
            D.barrier(obj.device)  # every rank has read the same parts before anyone writes
    loaded = done.copy()
    todo = np.flatnonzero(~done)[rank::world]
    new_mask = np.zeros(n_points, dtype=bool)

    keys = obj.names
    buf = {k: origin[k].detach().clone() for k in keys}
    buf_vals = [buf[k] for k in keys]
    origin_vals = [origin[k].detach() for k in keys]
    dir_vals = [[d[k].detach() for k in keys] for d in directions]
    objs = [o for o in (obj, test, bn_obj) if o is not None]
    objs = [o for i, o in enumerate(objs) if all(o is not p for p in objs[:i])]
    # the state at a reconstructed point: one reusable dict, its floating entries rewritten per point
    state_buf: dict[str, torch.Tensor] | None = None
    moving: list[str] = []
    moving_buf: list[torch.Tensor] = []
    moving_origin: list[torch.Tensor] = []
    moving_dirs: list[list[torch.Tensor]] = []
    kept: dict[str, torch.Tensor] = {}
    if states is not None:
        state_origin, state_dirs = states
        moving = list(state_dirs[0]) if state_dirs else []
        state_buf = {k: v.detach().clone() for k, v in state_origin.items()}
        moving_buf = [state_buf[k] for k in moving]
        moving_origin = [state_origin[k].detach() for k in moving]
        moving_dirs = [[d[k].detach() for k in moving] for d in state_dirs]
        bn_names = _bn_state_names(obj.model) if bn_obj is not None else set()
        kept = {k: v for k, v in state_buf.items() if k not in bn_names}

    def state_at(k: int, c: np.ndarray) -> dict[str, torch.Tensor] | None:
        if state_buf is None:
            return None
        if k in exact_states:
            return {n: t.detach().clone() for n, t in exact_states[k].items()}  # train-mode BN may write to it
        if moving:
            torch._foreach_copy_(moving_buf, moving_origin)
            for ci, dv in zip(c, moving_dirs):
                torch._foreach_add_(moving_buf, dv, alpha=float(ci))
        return state_buf

    checks = [(0, "train_loss")] if obj.check_finite else []
    if test is not None and test.check_finite:
        checks.append((2, "test_loss"))

    pending: list[tuple[int, Any, Any, Any, Any]] = []
    bar = None
    if progress and len(todo):
        from .._progress import progress as progress_bar
        from .._progress import showing

        bar = progress_bar(total=len(todo), desc=f"surface: {desc}", unit="point") if showing() else None
    last = time.perf_counter()
    start_cost = [o.cost.copy() for o in objs]
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.no_grad())
            for k in todo:
                k = int(k)
                p = exact.get(k)
                if p is None:
                    torch._foreach_copy_(buf_vals, origin_vals)
                    for c, dv in zip(coords[k], dir_vals):
                        torch._foreach_add_(buf_vals, dv, alpha=float(c))
                    p = buf
                bufs = state_at(k, coords[k])
                if bn_obj is not None:
                    recomputed = bn_obj.recompute_bn(p)
                    bufs = recomputed if bufs is None else {**recomputed, **{n: bufs[n] for n in kept}}
                loss, correct = obj.evaluate_tensors(p, buffers=bufs)
                t_loss = t_correct = None
                if test is not None:
                    t_loss, t_correct = test.evaluate_tensors(p, buffers=bufs)
                pending.append((k, loss, correct, t_loss, t_correct))
                new_mask[k] = True
                if bar is not None:
                    bar.update(1)
                if saver is not None and time.perf_counter() - last >= checkpoint_every:
                    _to_host(pending, values, done)
                    saver.write(done, values)
                    last = time.perf_counter()
                    if not on:
                        _check_finite(values, done, coords, checks)
    finally:
        if bar is not None:
            bar.close()
        _to_host(pending, values, done)
        if saver is not None:
            saver.write(done, values)
    if on:
        local = np.where(new_mask[:, None], values, 0.0)
        summed = D.sum_across(local, obj.device)
        values = np.where(loaded[:, None], values, summed)
        done = np.ones(n_points, dtype=bool)
        if saver is not None and rank == 0:
            saver.write(done, values)
    _check_finite(values, done, coords, checks)
    cost = Cost()
    for o, c0 in zip(objs, start_cost):
        cost = cost + (o.cost - c0)
    seconds = time.perf_counter() - t0
    cost.seconds = seconds

    def error(col: int, o: Objective | None) -> np.ndarray | None:
        if o is None or np.isnan(values[:, col]).all():
            return None
        return 1.0 - values[:, col] / o.num_samples

    out = {
        "train_loss": values[:, 0].copy(),
        "train_error": error(1, obj),
        "test_loss": values[:, 2].copy() if test is not None else None,
        "test_error": error(3, test),
    }
    return out, cost, seconds
