"""The two SALR update rules, ``variant="paper"`` and ``variant="released"``: their options, defaults, checks.

``"paper"`` — Definition 1 / Algorithm 2 of the SALR paper as printed: before the step, Ŝ_k = f_B(θ₊) − f_B(θ₋)
from two walks of normalized steps of size γ that both start at θ_k (the model is not moved), then
η_k = η₀·Ŝ_k/median(Ŝ), then the step.

``"released"`` — the authors' released training script (``CIFAR10/main.py``): the step first, at the current
rate; then, at the new weights and on the same minibatch, the clamped walk of
:mod:`basinscope.sharpness.clamped_walk` (``walk_lr`` 1e-3, ``walk_clamp`` 5e-4, 5 ascent then 5 descent steps
from the ascent's end, summed gradient), Ŝ = (f(θ⁺) − f(θ)) + (f(θ⁺) − f(θ⁺⁻)); the rate for the next step is
η₀·Ŝ/P50(Ŝ) outside the (49, 51) percentile band, else η₀, capped at ``max_ratio``·η₀ = 5·η₀, no lower bound;
the walk is not undone (training continues from θ⁺⁻).

Options used by one variant only are rejected with the other (``walk_lr`` with ``"paper"``, ``gamma`` with
``"released"``, ...), so a setting never silently does nothing. ``None`` means "the variant's default".
"""

from __future__ import annotations

import math
from typing import Any

from .._checks import check_choice, check_int, check_positive, check_type, fail
from ..sharpness.clamped_walk import check_walk_settings
from ..sharpness.stochastic import NORMALIZE, check_probe_settings, check_probe_steps
from .salr_rule import check_band

__all__ = ["PAPER_ONLY", "RELEASED_ONLY", "VARIANTS", "VARIANT_DEFAULTS", "resolve_salr_options"]

VARIANTS = ("paper", "released")
PAPER_ONLY = ("gamma", "normalize", "chunk_size")
RELEASED_ONLY = ("walk_lr", "walk_clamp", "band")
VARIANT_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": dict(
        gamma=0.005, normalize="per_example", chunk_size=None, min_ratio=0.0, max_ratio=math.inf, restore_walk=True
    ),
    "released": dict(
        walk_lr=1e-3, walk_clamp=5e-4, band=(49.0, 51.0), min_ratio=-math.inf, max_ratio=5.0, restore_walk=False
    ),
}


def resolve_salr_options(
    variant: str,
    *,
    n_descent: int,
    n_ascent: int,
    probe_eval_mode: bool,
    **given: Any,
) -> dict[str, Any]:
    """The variant's settings: ``given`` (``None`` = default) validated, defaults filled in.

    ``given`` holds ``gamma, normalize, chunk_size, walk_lr, walk_clamp, band, min_ratio, max_ratio,
    restore_walk``. Returns all of them plus ``variant``, ``n_descent``, ``n_ascent``, ``probe_eval_mode``;
    options of the other variant stay ``None``.
    """
    variant = check_choice("variant", variant, VARIANTS)
    other, foreign = ("released", RELEASED_ONLY) if variant == "paper" else ("paper", PAPER_ONLY)
    for name in foreign:
        if given.get(name) is not None:
            fail(name, f"None with variant={variant!r} (only variant={other!r} uses it)", given[name])
    o = {name: given.get(name) for name in (*PAPER_ONLY, *RELEASED_ONLY, "min_ratio", "max_ratio", "restore_walk")}
    for name, default in VARIANT_DEFAULTS[variant].items():
        if o[name] is None:
            o[name] = default
    check_type("restore_walk", o["restore_walk"], bool, "True, False or None (the variant's default)")
    check_type("probe_eval_mode", probe_eval_mode, bool, "True or False")
    if variant == "paper":
        o["gamma"], n_descent, n_ascent, o["normalize"] = check_probe_settings(
            o["gamma"], n_descent, n_ascent, check_choice("normalize", o["normalize"], NORMALIZE)
        )
        if o["chunk_size"] is not None:
            check_int("chunk_size", o["chunk_size"], minimum=1)
        check_positive("min_ratio", o["min_ratio"], allow_zero=True)
    else:
        o["walk_lr"], o["walk_clamp"] = check_walk_settings(o["walk_lr"], o["walk_clamp"])
        o["band"] = check_band(o["band"])
        n_descent, n_ascent = check_probe_steps(n_descent, n_ascent)
        lo = o["min_ratio"]
        if isinstance(lo, bool) or not isinstance(lo, (int, float)) or math.isnan(lo):
            fail("min_ratio", "a number (-inf for no lower bound)", lo)
    lo, hi = float(o["min_ratio"]), o["max_ratio"]
    if isinstance(hi, bool) or not isinstance(hi, (int, float)) or math.isnan(hi) or not hi > lo:
        fail("max_ratio", f"a number > min_ratio={lo} (inf for no bound)", hi)
    o["min_ratio"], o["max_ratio"] = lo, float(hi)
    return {"variant": variant, "n_descent": n_descent, "n_ascent": n_ascent, "probe_eval_mode": probe_eval_mode, **o}
