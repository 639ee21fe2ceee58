"""The training methods of the runner: their options, defaults, optimizers and cost in gradient calls.

=====================  =====================================================  ==========================
method                 optimizer                                              gradient calls / iteration
=====================  =====================================================  ==========================
``sgd``                SGD, constant rate or the pre-SWA schedule (Fig. 9)    1
``adam``               Adam                                                   1
``swa``/``dswa``/      pre-SWA phase (``swa_start`` of the budget), then      1
``tswa``               k rounds of SWA under the CHC schedule
``salr-sgd``           SGD-SALR (SALR Algorithm 3)                            1 + (n₁ + n₂) every c-th
``salr-adam``          Adam-SALR (SALR Algorithm 4)                           1 + (n₁ + n₂) every c-th
``sam``                SAM around SGD                                         2
``entropy-sgd``        Entropy-SGD                                            L
``entropy-sgd-salr``   Entropy-SGD with the SALR outer rate                   L + (n₁ + n₂) every c-th
=====================  =====================================================  ==========================

The ``salr-*`` methods take ``variant="paper"`` or ``"released"`` (:mod:`.salr_variants`); options a variant
does not use default to ``None`` and are refused with it.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .._checks import check_choice, check_int, check_positive, fail
from .entropy_sgd import EntropySGD
from .salr import SALR
from .salr_variants import resolve_salr_options
from .sam import SAM
from .tensor_lr import SGD, Adam, check_lr

__all__ = ["METHODS", "build_optimizer", "resolve_options", "upgrade_settings"]

# None: the variant's default (basinscope.optim.salr_variants.VARIANT_DEFAULTS), filled in by resolve_options
_SALR = dict(c=2, variant="paper", gamma=None, n_descent=5, n_ascent=5, normalize=None, chunk_size=None)
_SALR.update(walk_lr=None, walk_clamp=None, band=None, min_ratio=None, max_ratio=None)
_SALR.update(restore_walk=None, probe_eval_mode=False)
# settings keys added with the variants, as a run from before them had them (older checkpoints resume)
_SALR_BEFORE_VARIANTS = dict(variant="paper", walk_lr=None, walk_clamp=None, band=None)
_SALR_BEFORE_VARIANTS.update(restore_walk=True, probe_eval_mode=False)
_ENTROPY_BEFORE_DROP = dict(lr_drop_every=None, lr_drop_factor=5.0)  # a run from before the drop had a constant rate
_ENTROPY = dict(langevin_steps=5, langevin_lr=0.1, noise=1e-4, entropy_gamma=0.03, scoping=1e-3, alpha=0.75)
_SWA = dict(lr=0.05, swa_lr=0.01, swa_lr_min=None, swa_start=0.5, c=None, rounds=None, momentum=0.0, weight_decay=0.0)

DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": dict(lr=0.05, momentum=0.0, weight_decay=0.0, schedule="constant", lr_low=None),
    "adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "swa": dict(_SWA, rounds=1),
    "dswa": dict(_SWA, rounds=2),
    "tswa": dict(_SWA, rounds=3),
    "salr-sgd": dict(lr=0.05, momentum=0.0, weight_decay=0.0, **_SALR),
    "salr-adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, **_SALR),
    "sam": dict(lr=0.05, momentum=0.0, weight_decay=0.0, rho=0.05, adaptive=False),
    # lr_drop_every: the outer rate is divided by lr_drop_factor every that many epochs (None: constant)
    "entropy-sgd": dict(lr=1.0, weight_decay=0.0, lr_drop_every=None, lr_drop_factor=5.0, **_ENTROPY),
    "entropy-sgd-salr": dict(lr=1.0, weight_decay=0.0, **_ENTROPY, **_SALR),
}
METHODS = tuple(DEFAULTS)
SWA_METHODS = ("swa", "dswa", "tswa")


def resolve_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """Defaults of ``method`` updated with ``options``; unknown names and bad values are rejected."""
    check_choice("method", method, METHODS)
    known = DEFAULTS[method]
    unknown = sorted(set(options) - set(known))
    if unknown:
        fail(
            f"options of {method!r}",
            "names among " + ", ".join(sorted(known)),
            "unknown " + ", ".join(unknown),
            raw=True,
        )
    o = {**known, **options}
    check_lr(o["lr"])
    check_positive("weight_decay", o["weight_decay"], allow_zero=True)
    if "momentum" in o:
        check_positive("momentum", o["momentum"], allow_zero=True)
    if method == "sgd":
        check_choice("schedule", o["schedule"], ("constant", "pre_swa"))
        if o["lr_low"] is not None:
            check_positive("lr_low", o["lr_low"], allow_zero=True)
    if method in SWA_METHODS:
        check_positive("swa_lr", o["swa_lr"])
        if o["swa_lr_min"] is not None:
            check_positive("swa_lr_min", o["swa_lr_min"], allow_zero=True)
        s = o["swa_start"]
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not (0.0 <= s < 1.0):
            fail("swa_start", "a fraction of the budget in [0, 1)", s)
        check_int("rounds", o["rounds"], minimum=1)
        if o["c"] is not None:
            check_int("c", o["c"], minimum=1)
    if "n_descent" in o:
        check_int("c", o["c"], minimum=1)
        o.update(resolve_salr_options(**{k: o[k] for k in _SALR if k != "c"}))
    if method == "sam":
        check_positive("rho", o["rho"])
    if method == "entropy-sgd":
        if o["lr_drop_every"] is not None:
            check_int("lr_drop_every", o["lr_drop_every"], minimum=1)
        check_positive("lr_drop_factor", o["lr_drop_factor"])
    if "langevin_steps" in o:
        check_int("langevin_steps", o["langevin_steps"], minimum=1)
        check_positive("entropy_gamma", o["entropy_gamma"])
    return o


def _salr_kwargs(o: dict[str, Any]) -> dict[str, Any]:
    return {k: o[k] for k in _SALR}


def upgrade_settings(method: str, settings: Any) -> Any:
    """A checkpoint's settings with the keys added since it was written (SALR variants, Entropy-SGD's rate drop),
    at the values it ran with."""
    if not (isinstance(settings, dict) and method in DEFAULTS):
        return settings
    if method == "entropy-sgd":
        return {**_ENTROPY_BEFORE_DROP, **settings}
    if "n_descent" not in DEFAULTS[method]:
        return settings
    return {**_SALR_BEFORE_VARIANTS, **settings}


def build_optimizer(method: str, model: nn.Module, loss_fn, o: dict[str, Any], lr: float | None = None):
    """The optimizer of ``method`` (for SWA methods: the SGD of one phase/round, rate set by the runner)."""
    params = [p for p in model.parameters() if p.requires_grad]
    lr = o["lr"] if lr is None else lr
    if method in ("sgd", *SWA_METHODS):
        return SGD(params, lr=lr, momentum=o["momentum"], weight_decay=o["weight_decay"])
    if method == "adam":
        return Adam(params, lr=lr, betas=o["betas"], eps=o["eps"], weight_decay=o["weight_decay"])
    if method == "sam":
        return SAM(
            params,
            SGD,
            rho=o["rho"],
            adaptive=o["adaptive"],
            lr=lr,
            momentum=o["momentum"],
            weight_decay=o["weight_decay"],
        )
    entropy = dict(
        langevin_steps=o.get("langevin_steps", 5),
        langevin_lr=o.get("langevin_lr", 0.1),
        noise=o.get("noise", 1e-4),
        gamma=o.get("entropy_gamma", 0.03),
        scoping=o.get("scoping", 1e-3),
        alpha=o.get("alpha", 0.75),
        weight_decay=o["weight_decay"],
    )
    if method == "entropy-sgd":
        return EntropySGD(params, lr=lr, **entropy)
    if method == "salr-sgd":
        inner = SGD(params, lr=lr, momentum=o["momentum"], weight_decay=o["weight_decay"])
    elif method == "salr-adam":
        inner = Adam(params, lr=lr, betas=o["betas"], eps=o["eps"], weight_decay=o["weight_decay"])
    else:
        inner = EntropySGD(params, lr=lr, **entropy)
    return SALR(inner, model, loss_fn, **_salr_kwargs(o))


def iteration_cost(opt: Any) -> int:
    """Gradient calls the next ``opt.step`` will spend (probe steps included)."""
    base = int(getattr(opt, "gradient_calls_per_step", 1))
    if isinstance(opt, SALR) and opt.measures_next():
        return base + opt.n_descent + opt.n_ascent
    return base


def fresh_batch_per_call(method: str) -> bool:
    """Entropy-SGD draws a new minibatch for each Langevin step; SAM's two passes share one."""
    return method.startswith("entropy")
