"""Parameter dictionaries as vectors.

A point of weight space, a direction, a gradient and an eigenvector all share one type,
``Params = dict[str, Tensor]`` keyed like ``model.named_parameters()``. All vector algebra over it lives
here. Functions are out-of-place (they never write into their inputs) and use ``torch._foreach_*`` kernels,
so on CUDA a whole-model update is a handful of kernel launches rather than one per tensor.

Filter normalization follows Li, Xu, Taylor, Studer, Goldstein, "Visualizing the Loss Landscape of Neural
Nets" (NeurIPS 2018), §4: every filter ``d_i`` of a random direction is rescaled to the norm of the matching
filter ``θ_i`` of the weights, ``d_i ← d_i / ‖d_i‖ · ‖θ_i‖``; 1-D tensors (biases, BatchNorm affine
parameters) are zeroed (``ignore="biasbn"``) or set equal to the weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ._checks import check_choice, check_int, check_params_like, fail

Params = dict[str, torch.Tensor]

__all__ = [
    "Params",
    "add",
    "axpy",
    "clone",
    "dot",
    "filter_normalize",
    "flatten",
    "gram_schmidt",
    "lincomb",
    "norm",
    "numel",
    "random_direction",
    "scale",
    "sub",
    "unflatten",
    "zeros_like",
]


def _vals(p: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
    return list(p.values())


def _rebuild(keys: Sequence[str], values: Sequence[torch.Tensor]) -> Params:
    return dict(zip(keys, values))


def clone(p: Mapping[str, torch.Tensor]) -> Params:
    """Detached copies of every tensor."""
    return {k: v.detach().clone() for k, v in p.items()}


def zeros_like(p: Mapping[str, torch.Tensor]) -> Params:
    return {k: torch.zeros_like(v) for k, v in p.items()}


def numel(p: Mapping[str, torch.Tensor]) -> int:
    """Total number of scalars."""
    return sum(v.numel() for v in p.values())


def dot(x: Mapping[str, torch.Tensor], y: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Euclidean inner product ⟨x, y⟩ as a 0-d tensor (no host synchronization)."""
    if x.keys() != y.keys():
        check_params_like("y", y, x)
    terms = [torch.vdot(a.reshape(-1), y[k].reshape(-1)) for k, a in x.items()]
    return torch.stack(terms).sum()


def norm(x: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Euclidean norm ‖x‖ as a 0-d tensor."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(_vals(x))))


def scale(x: Mapping[str, torch.Tensor], alpha: float | torch.Tensor) -> Params:
    """α·x."""
    return _rebuild(list(x), torch._foreach_mul(_vals(x), alpha))


def add(x: Mapping[str, torch.Tensor], y: Mapping[str, torch.Tensor]) -> Params:
    """x + y."""
    return axpy(1.0, y, x)


def sub(x: Mapping[str, torch.Tensor], y: Mapping[str, torch.Tensor]) -> Params:
    """x − y."""
    return axpy(-1.0, y, x)


def axpy(alpha: float | torch.Tensor, x: Mapping[str, torch.Tensor], y: Mapping[str, torch.Tensor]) -> Params:
    """α·x + y (BLAS ``axpy``), out of place. ``alpha`` may be a 0-d tensor (stays on the device)."""
    if x.keys() != y.keys():
        check_params_like("x", x, y)
    keys = list(y)
    xs = [x[k] for k in keys]
    if isinstance(alpha, torch.Tensor):
        return _rebuild(keys, torch._foreach_add(_vals(y), torch._foreach_mul(xs, alpha)))
    return _rebuild(keys, torch._foreach_add(_vals(y), xs, alpha=float(alpha)))


def lincomb(base: Mapping[str, torch.Tensor], coeffs: Sequence[float], directions: Sequence[Mapping]) -> Params:
    """base + Σ_i coeffs[i]·directions[i]."""
    if len(coeffs) != len(directions):
        fail("coeffs", f"{len(directions)} coefficients (one per direction)", len(coeffs), raw=True)
    out = clone(base)
    keys = list(base)
    vals = [out[k] for k in keys]
    for c, d in zip(coeffs, directions):
        torch._foreach_add_(vals, [d[k] for k in keys], alpha=float(c))
    return out


def flatten(p: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate all tensors (in key order) into one 1-D tensor."""
    if not p:
        fail("p", "a non-empty parameter dict", p)
    return torch.cat([v.reshape(-1) for v in p.values()])


def unflatten(vec: torch.Tensor, like: Mapping[str, torch.Tensor]) -> Params:
    """Inverse of :func:`flatten`: split ``vec`` into tensors shaped like ``like`` (key order)."""
    n = numel(like)
    if not isinstance(vec, torch.Tensor) or vec.dim() != 1 or vec.numel() != n:
        fail("vec", f"a 1-D tensor with {n} entries", vec)
    out: Params = {}
    offset = 0
    for k, v in like.items():
        out[k] = vec[offset : offset + v.numel()].view_as(v)
        offset += v.numel()
    return out


def random_direction(
    like: Mapping[str, torch.Tensor],
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    distribution: str = "normal",
) -> Params:
    """A random direction shaped like ``like``, i.i.d. N(0, 1) (or Rademacher ±1).

    Drawn from a CPU generator and then moved, so a seed gives the same direction on every device.
    """
    check_choice("distribution", distribution, ("normal", "rademacher"))
    if generator is None:
        generator = torch.Generator()
        generator.manual_seed(check_int("seed", seed, minimum=0) if seed is not None else torch.seed())
    out: Params = {}
    for k, v in like.items():
        if distribution == "normal":
            r = torch.randn(v.shape, generator=generator, dtype=torch.float64)
        else:
            r = torch.randint(0, 2, v.shape, generator=generator).to(torch.float64).mul_(2).sub_(1)
        out[k] = r.to(device=v.device, dtype=v.dtype)
    return out


def filter_normalize(
    direction: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor],
    *,
    ignore: str | None = "biasbn",
    eps: float = 1e-10,
) -> Params:
    """Filter-wise normalization (Li et al. 2018, §4).

    For a tensor of dimension ≥ 2 each filter (slice along dim 0) becomes ``d_i · ‖θ_i‖ / (‖d_i‖ + eps)``.
    1-D tensors (biases and BatchNorm weights/biases) are set to zero when ``ignore="biasbn"`` and copied
    from the weights when ``ignore=None``, as in the authors' reference procedure.
    """
    if ignore is not None:
        check_choice("ignore", ignore, ("biasbn",))
    check_params_like("direction", direction, weights)
    out: Params = {}
    for k, w in weights.items():
        d = direction[k].detach()
        if w.dim() <= 1:
            out[k] = torch.zeros_like(w) if ignore == "biasbn" else w.detach().clone()
            continue
        d2 = d.reshape(d.shape[0], -1)
        w2 = w.detach().reshape(w.shape[0], -1)
        factor = torch.linalg.vector_norm(w2, dim=1) / (torch.linalg.vector_norm(d2, dim=1) + eps)
        out[k] = (d2 * factor[:, None]).view_as(d)
    return out


def gram_schmidt(vectors: Sequence[Mapping[str, torch.Tensor]], *, rtol: float = 1e-8) -> list[Params]:
    """Orthonormalize ``vectors`` (modified Gram–Schmidt, two passes for stability).

    Raises ``ValueError`` naming the first vector that is (numerically) a combination of the previous ones:
    its residual norm is below ``rtol`` times its own norm.
    """
    if len(vectors) == 0:
        fail("vectors", "at least one vector", vectors)
    basis: list[Params] = []
    for i, v in enumerate(vectors):
        v_norm = float(norm(v))
        if v_norm == 0.0:
            fail("vectors", "non-zero, linearly independent vectors", f"vector {i} is zero", raw=True)
        r = clone(v)
        for _ in range(2):
            for b in basis:
                r = axpy(-dot(b, r), b, r)
        r_norm = float(norm(r))
        if r_norm <= rtol * v_norm:
            fail(
                "vectors",
                "linearly independent vectors",
                f"vector {i} lies in the span of the previous ones (residual {r_norm / v_norm:.3g})",
                raw=True,
            )
        basis.append(scale(r, 1.0 / r_norm))
    return basis
