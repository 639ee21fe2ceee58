"""The 1-D teaching demos of the SALR paper, computed with the library's own estimators.

* :func:`sharpness_profile` — ϕ (eq. 1), S (eq. 2) and Ŝ (Definition 1) across θ (Fig. 2): ϕ ≈ 0 at local
  maxima, S and Ŝ are not.
* :func:`escape_demo` — GD and GD-SALR started on the slope outside the sharp minimum of :func:`sharp_flat`:
  both run into it, GD stays, GD-SALR (empty Ŝ history, Algorithm 1) is thrown out (an illustration of the
  paper's idea, not a reproduction of its Theorems 1–2).
* :func:`salr_trace` — the SALR learning rate η_k = η₀·Ŝ_k/median(Ŝ_1..Ŝ_k) against Ŝ_k over iterations
  (Fig. 3, right).

Every demo evaluates f through :meth:`Objective.from_function`, so the numbers come from the same code that
measures networks. Each returns a result object with ``.plot(backend="matplotlib"|"plotly", path=None)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .._checks import check_int, check_positive, fail
from ..objective import Objective
from ..optim.salr_rule import SALRRule
from ..sharpness import keskar, probe, two_sided
from .functions import SHARP_FLAT_MINIMA, salr_toy, sharp_flat
from .results import EscapeResult, SALRTrace, SharpnessProfile

__all__ = ["escape_demo", "gd", "gd_salr", "salr_trace", "sharpness_profile"]

Fn = Callable[[torch.Tensor], torch.Tensor]


def _objective(fn: Fn, theta0: float) -> Objective:
    if not callable(fn):
        fail("fn", "a callable f(theta) -> scalar tensor", fn, exc=TypeError)
    return Objective.from_function(fn, float(theta0))


def _at(theta: float | torch.Tensor) -> dict[str, torch.Tensor]:
    return {"theta": torch.as_tensor(theta, dtype=torch.float64).reshape(())}


def _grid(fn: Fn, lo: float, hi: float, n: int = 601) -> tuple[np.ndarray, np.ndarray]:
    xs = torch.linspace(lo, hi, n, dtype=torch.float64)
    with torch.no_grad():
        return xs.numpy(), fn(xs).numpy()


def sharpness_profile(
    fn: Fn = salr_toy,
    thetas: Sequence[float] | np.ndarray | None = None,
    epsilon: float = 0.1,
    *,
    n_probe: int = 2,
    steps: int = 20,
    restarts: int = 1,
    seed: int = 0,
) -> SharpnessProfile:
    """ϕ(ε, θ), S(ε, θ) and Ŝ(θ) on a grid of θ (SALR paper, Fig. 2).

    Args:
        fn: f: R → R as a torch function (default :func:`salr_toy`, the paper's 0.5·θ·sin(3θ) + 1).
        thetas: where to measure (default 121 points on [−3, 3]).
        epsilon: the radius ε of ϕ and S (the paper's Fig. 2 uses 0.1).
        n_probe: descent and ascent steps of Ŝ; γ = ε / n_probe, so Ŝ explores the same radius.
        steps, restarts, seed: the ball search of ϕ and S (see :func:`basinscope.sharpness.keskar`).

    Example:
        >>> prof = sharpness_profile(thetas=[0.676252612703478], epsilon=0.1)   # a local maximum
        >>> bool(prof.phi[0] < 1e-12 < prof.two_sided[0])
        True
    """
    eps = check_positive("epsilon", epsilon)
    n_probe = check_int("n_probe", n_probe, minimum=1)
    xs = np.linspace(-3.0, 3.0, 121) if thetas is None else np.asarray(thetas, dtype=np.float64).reshape(-1)
    if xs.size == 0 or not np.all(np.isfinite(xs)):
        fail("thetas", "a non-empty sequence of finite numbers", thetas)
    obj = _objective(fn, xs[0])
    gamma = eps / n_probe
    phi, s, s_hat, f0 = (np.empty(xs.size) for _ in range(4))
    kw = {"steps": steps, "restarts": restarts, "seed": seed}
    for i, t in enumerate(xs):
        p = _at(t)
        r_phi = keskar(obj, eps, params=p, **kw)
        phi[i], f0[i] = r_phi.value, r_phi.f0
        s[i] = two_sided(obj, eps, params=p, **kw).value
        s_hat[i] = probe(obj, gamma, n_probe, n_probe, params=p).value
    pad = 0.05 * (xs.max() - xs.min()) + eps
    gx, gf = _grid(fn, float(xs.min() - pad), float(xs.max() + pad))
    settings = {"epsilon": eps, "gamma": gamma, "n_descent": n_probe, "n_ascent": n_probe, **kw}
    return SharpnessProfile(
        thetas=xs, f=f0, phi=phi, two_sided=s, probe=s_hat, grid=gx, grid_f=gf, settings=settings, cost=obj.cost
    )


def gd(fn: Fn, theta0: float, eta: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain gradient descent θ_{k+1} = θ_k − η ∇f(θ_k); returns (θ_0..θ_K, η for each step)."""
    obj = _objective(fn, theta0)
    theta = _at(theta0)["theta"]
    path = [theta]
    for _ in range(steps):
        theta = theta - eta * obj.grad(_at(theta))["theta"]
        path.append(theta)
    return torch.stack(path).numpy(), np.full(steps, float(eta))


def gd_salr(
    fn: Fn,
    theta0: float,
    eta0: float,
    steps: int,
    *,
    gamma: float,
    n_descent: int,
    n_ascent: int,
    prior: Sequence[float] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GD-SALR (Algorithm 1 with Definition 1 and GD): Ŝ_k by :func:`basinscope.sharpness.probe`, then
    η_k = η₀·Ŝ_k/median(Ŝ_1..Ŝ_k) by :class:`~basinscope.optim.salr_rule.SALRRule`, then a GD step.

    ``prior`` are sharpness values fed to the rule before the first iteration (a history learned elsewhere).
    Returns (θ_0..θ_K, η_k, Ŝ_k).
    """
    obj = _objective(fn, theta0)
    rule = SALRRule(capacity=max(8, len(prior) + steps))
    for s in prior:
        rule.update(torch.tensor(float(s), dtype=torch.float64))
    theta = _at(theta0)["theta"]
    path, lrs, sharp = [theta], [], []
    for _ in range(steps):
        s_k = probe(obj, gamma, n_descent, n_ascent, params=_at(theta)).value
        eta = eta0 * float(rule.update(torch.tensor(s_k, dtype=torch.float64)))
        theta = theta - eta * obj.grad(_at(theta))["theta"]
        path.append(theta)
        lrs.append(eta)
        sharp.append(s_k)
    return torch.stack(path).numpy(), np.asarray(lrs), np.asarray(sharp)


def escape_demo(
    *,
    fn: Fn = sharp_flat,
    theta0: float | None = None,
    minimum: float | None = None,
    radius: float = 0.3,
    eta0: float = 0.01,
    steps: int = 200,
    gamma: float = 0.05,
    n_descent: int = 2,
    n_ascent: int = 2,
) -> EscapeResult:
    """GD and GD-SALR (Algorithm 1 exactly: the Ŝ history starts empty) started *outside* the sharp well of
    :func:`sharp_flat`, on the slope that leads into it; a third run starts GD-SALR inside the well.

    A qualitative illustration of the SALR paper's idea (§II: the median of the Ŝ seen so far is "a global
    sharpness parameter the algorithm is trying to learn"; Fig. 1), not a reproduction of its Theorems 1–2 (their
    thresholds on n₁, n₂ and γ are not checked here). All runs use η₀ = 0.01 < 2/f''(θ*) ≈ 0.0138, so GD that
    reaches the sharp minimum θ* = −1 stays there. GD-SALR measures Ŝ_k at every step: on the way in, the
    median learns the sharpness of the gentle slope; inside the well Ŝ_k is far above it, η_k = η₀·Ŝ_k/median
    exceeds 2/f''(θ*), and the iterate is thrown out of B_δ(θ*) and continues down the bowl towards the flat
    minimum. Started inside the well with an empty history ("GD-SALR (started inside)") the median *is* the
    well's own Ŝ, the ratio stays near 1 and GD-SALR stays like GD: SALR escapes minima that are sharp relative
    to what it has seen.

    Args:
        fn: the function (default :func:`sharp_flat`).
        theta0: the outside start (default θ* − 0.5, on the slope left of the sharp well).
        minimum: θ*, the centre of B_δ(θ*) (default the sharp minimum −1 of :func:`sharp_flat`).
        radius: δ of B_δ(θ*) (default 0.3).
        eta0: η₀ for every run. steps: K iterations.
        gamma, n_descent, n_ascent: Ŝ of Definition 1.

    Example:
        >>> r = escape_demo()
        >>> r.visited("GD"), r.escaped("GD"), r.visited("GD-SALR"), r.escaped("GD-SALR")
        (True, False, True, True)
    """
    steps = check_int("steps", steps, minimum=1)
    eta0 = check_positive("eta0", eta0)
    radius = check_positive("radius", radius)
    gamma = check_positive("gamma", gamma)
    centre = SHARP_FLAT_MINIMA[0] if minimum is None else float(minimum)
    start = centre - 0.5 if theta0 is None else float(theta0)
    inside = centre - 0.05
    kw = {"gamma": gamma, "n_descent": n_descent, "n_ascent": n_ascent}
    path_gd, lr_gd = gd(fn, start, eta0, steps)
    path_salr, lr_salr, s_salr = gd_salr(fn, start, eta0, steps, **kw)
    path_in, lr_in, s_in = gd_salr(fn, inside, eta0, steps, **kw)
    view = (-2.5, 3.5) if fn is sharp_flat else (centre - 1.5, centre + 1.5)
    lo = float(min(path_gd.min(), path_salr.min(), path_in.min(), view[0])) - 0.2
    hi = float(max(path_gd.max(), path_salr.max(), path_in.max(), view[1])) + 0.2
    gx, gf = _grid(fn, lo, hi)
    return EscapeResult(
        names=["GD", "GD-SALR", "GD-SALR (started inside)"],
        paths=np.stack([path_gd, path_salr, path_in]),
        lrs=np.stack([lr_gd, lr_salr, lr_in]),
        sharpness=np.stack([np.full(steps, np.nan), s_salr, s_in]),
        minimum=centre,
        radius=radius,
        grid=gx,
        grid_f=gf,
        settings={"theta0": start, "theta0_inside": inside, "eta0": eta0, "steps": steps, **kw},
    )


def salr_trace(
    *,
    fn: Fn = salr_toy,
    theta0: float = 2.9,
    eta0: float = 0.02,
    steps: int = 60,
    gamma: float = 0.05,
    n_descent: int = 2,
    n_ascent: int = 2,
) -> SALRTrace:
    """GD-SALR on f (default :func:`salr_toy`), recording Ŝ_k and η_k (SALR paper, Fig. 3, right).

    The rule starts empty (Algorithm 1 exactly): η_k/η₀ = Ŝ_k/median(Ŝ_1..Ŝ_k), so the learning rate rises
    and falls with the sharpness.

    Example:
        >>> tr = salr_trace(steps=10)
        >>> tr.lrs.shape, tr.sharpness.shape
        ((10,), (10,))
    """
    steps = check_int("steps", steps, minimum=1)
    eta0 = check_positive("eta0", eta0)
    path, lrs, sharp = gd_salr(
        fn, theta0, eta0, steps, gamma=check_positive("gamma", gamma), n_descent=n_descent, n_ascent=n_ascent
    )
    gx, gf = _grid(fn, float(min(path.min(), -3.0)) - 0.2, float(max(path.max(), 3.0)) + 0.2)
    return SALRTrace(
        path=path,
        lrs=lrs,
        sharpness=sharp,
        grid=gx,
        grid_f=gf,
        settings={
            "theta0": float(theta0),
            "eta0": eta0,
            "steps": steps,
            "gamma": gamma,
            "n_descent": n_descent,
            "n_ascent": n_ascent,
        },
    )
