"""Per-example-normalized gradient direction by "ghost norms" (SALR paper, Algorithm 2, fast path).

The probe step direction of Algorithm 2 is d = (1/B) Σ_j g_j/‖g_j‖ with g_j = ∇ℓ_j. Because
d = Σ_j w_j g_j = ∇(Σ_j w_j ℓ_j) with w_j = 1/(B‖g_j‖), d costs one forward and one backward (to the layer
outputs only) provided the per-example norms ‖g_j‖ are known without materializing all the g_j.

Forward hooks save each parameterized layer's input a and output; one backward of Σ_j ℓ_j (activation gradients
only) gives the output gradients δ (per example, unscaled). Per layer (Goodfellow 2015; Li et al. 2022, "ghost
clipping"; Opacus/BackPACK):

* ``nn.Linear`` on 2-D inputs: ‖∇_W ℓ_j‖² = ‖a_j‖²·‖δ_j‖², ‖∇_b ℓ_j‖² = ‖δ_j‖²;
* ``nn.Linear`` on (B, T, …) inputs and ``nn.Conv1d``/``nn.Conv2d`` (T positions): either the Gram form
  Σ_{p,q} (a_jp·a_jq)(δ_jp·δ_jq) on unfolded inputs or the materialized per-example layer gradient
  G_j = Σ_p δ_jp a_jpᵀ, whichever is cheaper (T·(d_in + d_out) vs d_in·d_out). For convolutions G is formed by
  convolution kernels, not by unfolding (:func:`conv_per_example`; the im2col copy cost 8-10x a weight gradient
  on CPU);
* BatchNorm (eval mode: running statistics), LayerNorm, GroupNorm: ∇_γ ℓ_j = Σ_spatial δ_j·x̂_j, ∇_β ℓ_j = Σ δ_j.

Then d is formed per layer from the same (a, δ) and w ("book-keeping", Bu et al. 2023): d_W = Σ_j w_j δ_j a_jᵀ,
or ``tensordot(w, G)`` where the per-example layer gradient G was materialized for the norm; no second backward.

Any other module owning a probed parameter, a module or parameter used twice, or BatchNorm with batch statistics
makes :func:`ghost_plan` (static) or :func:`ghost_direction` (at run time, returning ``None``) decline, and the
caller falls back to ``torch.func.vmap``. The model must treat examples independently (eval mode), as the vmap
path does.

Example:
    >>> import torch, torch.nn.functional as F
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> p = {k: v.detach() for k, v in model.named_parameters()}
    >>> plan = ghost_plan(model, p)
    >>> d = ghost_direction(model, F.cross_entropy, {}, p, torch.randn(5, 3), torch.randint(0, 2, (5,)), plan)
    >>> sorted(d) == sorted(p)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["SUPPORTED", "ghost_direction", "ghost_plan"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
SUPPORTED: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, *_BN, nn.LayerNorm, nn.GroupNorm)

Plan = dict[nn.Module, tuple[str | None, str | None]]  # module -> (probed name of weight, probed name of bias)


def ghost_plan(model: nn.Module, names: Mapping[str, object]) -> Plan | None:
    """Which layers own the probed parameters ``names``; ``None`` if any of them is not supported."""
    wanted = set(names)
    module_count: dict[int, int] = {}
    for _, m in model.named_modules(remove_duplicate=False):
        module_count[id(m)] = module_count.get(id(m), 0) + 1
    param_count: dict[int, int] = {}
    for _, q in model.named_parameters(remove_duplicate=False):
        param_count[id(q)] = param_count.get(id(q), 0) + 1
    plan: Plan = {}
    covered: set[str] = set()
    for mname, m in model.named_modules():
        own = {f"{mname}.{n}" if mname else n: (n, q) for n, q in m.named_parameters(recurse=False)}
        probed = {full: nq for full, nq in own.items() if full in wanted}
        if not probed:
            continue
        if type(m) not in SUPPORTED or module_count[id(m)] > 1:
            return None
        if any(param_count[id(q)] > 1 for _, q in own.values()):
            return None
        if isinstance(m, _BN) and m.running_mean is None:
            return None
        if set(n for n, _ in probed.values()) - {"weight", "bias"}:
            return None
        by_attr = {n: full for full, (n, _) in probed.items()}
        plan[m] = (by_attr.get("weight"), by_attr.get("bias"))
        covered.update(probed)
    if covered != wanted:
        return None
    return plan


class _Weighted:
    """Σ_j w_j g_j for one parameter, from what the norm computation already has (no second backward)."""

    def __init__(self, shape: torch.Size, per_example: Tensor | None = None, pair: tuple | None = None) -> None:
        self.shape, self.per_example, self.pair = shape, per_example, pair

    def __call__(self, w: Tensor) -> Tensor:
        if self.per_example is not None:  # (B, ...) per-example gradients: contract with w
            return torch.tensordot(w, self.per_example, dims=1).reshape(self.shape)
        a, d = self.pair  # Σ_j w_j Σ_p d_jgp a_jgpᵀ
        return torch.einsum("bgop,bgip->goi", d * w.reshape(-1, 1, 1, 1), a).reshape(self.shape)


def _positions(a: Tensor, d: Tensor, shape: torch.Size) -> tuple[Tensor, _Weighted]:
    """Σ over groups of ‖Σ_p d_jgp a_jgpᵀ‖² for a: (B, G, d_in, T), d: (B, G, d_out, T), cheaper form."""
    t, d_in, d_out = a.shape[-1], a.shape[-2], d.shape[-2]
    if t * (d_in + d_out) < d_in * d_out:
        ga = torch.einsum("bgip,bgiq->bgpq", a, a)
        gd = torch.einsum("bgop,bgoq->bgpq", d, d)
        return (ga * gd).sum(dim=(1, 2, 3)), _Weighted(shape, pair=(a, d))
    g = torch.einsum("bgop,bgip->bgoi", d, a)
    return _sq_norms(g), _Weighted(shape, per_example=g)


def _sq_norms(g: Tensor) -> Tensor:
    """Squared norms (B,) of per-example tensors g: (B, ...), without a squared copy."""
    return torch.linalg.vector_norm(g, dim=tuple(range(1, g.dim()))).square()


def _unfold_conv(m: nn.Module, a: Tensor) -> Tensor:
    """Conv input (B, C, *spatial) -> (B, C·∏k, T) columns, with the module's padding applied."""
    mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
    a = F.pad(a, m._reversed_padding_repeated_twice, mode=mode)
    if isinstance(m, nn.Conv1d):
        a = a.unsqueeze(2)
        k, dil, st = (1, m.kernel_size[0]), (1, m.dilation[0]), (1, m.stride[0])
    else:
        k, dil, st = m.kernel_size, m.dilation, m.stride
    return F.unfold(a, k, dilation=dil, padding=0, stride=st)


CONV_METHODS = ("grouped", "transposed", "unfold")
_CHUNK = 32  # examples per grouped weight-gradient call (measured on CPU: 16-32 best, see docs/benchmarks/optim.md)


def conv_method(m: nn.Module, a: Tensor) -> str:
    """How :func:`conv_per_example` forms per-example weight gradients for layer ``m`` on input ``a``.

    A rule on shapes and device, not a timing, so that a resumed run takes the same arithmetic as an uninterrupted
    one. Measured on CPU (oneDNN): a layer with few input channels per group (an input layer) is fastest as one
    convolution of the inputs with the output gradients as kernels (``"transposed"``); other layers as grouped
    weight-gradient convolutions over chunks of examples (``"grouped"``); both within 1-3x of the batch weight
    gradient, where unfold + bmm was 8-10x (its im2col copy dominated). On CUDA, unfold + batched matmul.
    """
    if a.device.type == "cuda":
        return "unfold"
    if m.groups == 1 and m.in_channels <= 4:
        return "transposed"
    return "grouped"


def _padded(m: nn.Module, a: Tensor) -> tuple[Tensor, list[int]]:
    """Input and padding for a convolution that reproduces ``m``: explicit padding where the module's is a mode
    other than zeros or the string 'same' (possibly asymmetric), else the module's own padding."""
    if m.padding_mode == "zeros" and not isinstance(m.padding, str):
        return a, list(m.padding)
    mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
    return F.pad(a, m._reversed_padding_repeated_twice, mode=mode), [0] * (a.dim() - 2)


def conv_per_example(
    m: nn.Module, a: Tensor, d: Tensor, method: str | None = None, out: Tensor | None = None
) -> Tensor:
    """Per-example weight gradients (B, C_out, C_in/groups, *kernel) of conv layer ``m`` (Conv1d/Conv2d) from its
    input ``a`` (B, C_in, *spatial) and output gradient ``d`` (B, C_out, *spatial_out): G_j = Σ_p δ_jp a_jpᵀ.

    ``method`` (default :func:`conv_method`): ``"grouped"`` runs the layer's weight-gradient convolution on
    chunks of examples stacked as groups; ``"transposed"`` (groups = 1) convolves the inputs, examples as
    channels, with the output gradients as kernels (stride and dilation swap roles); ``"unfold"`` multiplies the
    unfolded input columns by the output gradients.
    """
    method = method or conv_method(m, a)
    b, c_out = d.shape[0], d.shape[1]
    g, k = m.groups, tuple(m.kernel_size)
    c_in = a.shape[1]
    if method == "unfold":
        cols = _unfold_conv(m, a)
        cols = cols.reshape(b, g, c_in // g, *k, cols.shape[-1]).flatten(2, -2)
        dd = d.reshape(b, g, c_out // g, -1)
        return torch.einsum("bgop,bgip->bgoi", dd, cols).reshape(b, c_out, c_in // g, *k)
    a, pad = _padded(m, a)
    stride, dil = list(m.stride), list(m.dilation)
    if method == "transposed":
        if g != 1:
            raise ValueError(f"method: 'transposed' needs groups=1, got groups={g}")
        conv = F.conv1d if isinstance(m, nn.Conv1d) else F.conv2d
        kern = d.reshape(b * c_out, 1, *d.shape[2:])
        out = conv(a.transpose(0, 1), kern, None, dil, pad, stride, b)  # (C_in, B·C_out, *≥kernel)
        out = out[(..., *(slice(0, kk) for kk in k))]
        return out.reshape(c_in, b, c_out, *k).movedim(0, 2)
    if method != "grouped":
        raise ValueError(f"method: expected one of {', '.join(map(repr, CONV_METHODS))}, got {method!r}")
    shape_out = (b, c_out, c_in // g, *k)
    if out is None or out.shape != shape_out or out.dtype != d.dtype or out.device != d.device:
        out = d.new_empty(shape_out)
    zero = [0] * len(k)
    for s in range(0, b, _CHUNK):
        n = min(_CHUNK, b - s)
        shape = (n * c_out, c_in // g, *k)
        placeholder = a.new_empty(1).expand(shape)  # only its shape is read
        gw = torch.ops.aten.convolution_backward(
            d[s : s + n].reshape(1, n * c_out, *d.shape[2:]),
            a[s : s + n].reshape(1, n * c_in, *a.shape[2:]),
            placeholder,
            None,
            stride,
            pad,
            dil,
            False,
            zero,
            n * g,
            [False, True, False],
        )[1]
        out[s : s + n] = gw.reshape(n, c_out, c_in // g, *k)
    return out


class _Linear2d:
    def __init__(self, a: Tensor, d: Tensor, shape: torch.Size) -> None:
        self.a, self.d, self.shape = a, d, shape

    def __call__(self, w: Tensor) -> Tensor:
        return (self.d * w.unsqueeze(1)).T.mm(self.a).reshape(self.shape)


def _layer(
    m: nn.Module, a: Tensor, d: Tensor, has_w: bool, has_b: bool, workspace: dict | None = None
) -> tuple[Tensor, Callable | None, Callable | None]:
    """Per-example squared norm (B,) of layer ``m``'s probed parameters from its input a and output grad d, and
    callables w -> Σ_j w_j ∇ℓ_j for its weight and bias (``None`` where not probed)."""
    b = d.shape[0]
    sq = d.new_zeros(b)
    fw = fb = None
    if isinstance(m, nn.Linear):
        if a.dim() == 2:
            dd = d.pow(2).sum(dim=1)
            if has_w:
                sq = sq + a.pow(2).sum(dim=1) * dd
                fw = _Linear2d(a, d, m.weight.shape)
            if has_b:
                sq = sq + dd
                fb = _Weighted(m.bias.shape, per_example=d)
            return sq, fw, fb
        a3 = a.reshape(b, -1, a.shape[-1]).transpose(1, 2).unsqueeze(1)  # (B, 1, in, T)
        d3 = d.reshape(b, -1, d.shape[-1]).transpose(1, 2).unsqueeze(1)  # (B, 1, out, T)
    elif isinstance(m, (nn.Conv1d, nn.Conv2d)):
        g = m.groups
        d3 = d.reshape(b, g, d.shape[1] // g, -1)
        a3 = None
        if has_w:
            t, d_in, d_out = d3.shape[-1], m.weight[0].numel(), d3.shape[2]
            if t * (d_in + d_out) < d_in * d_out:  # few positions: Gram form on unfolded columns
                cols = _unfold_conv(m, a)
                a3 = cols.reshape(b, g, cols.shape[1] // g, cols.shape[2])
            else:
                gw = conv_per_example(m, a, d, out=None if workspace is None else workspace.get(m))
                if workspace is not None:
                    workspace[m] = gw
                sq = sq + _sq_norms(gw)
                fw = _Weighted(m.weight.shape, per_example=gw)
                has_w = False
    else:
        a3 = d3 = None
    if d3 is not None:  # Linear on sequences, convolutions
        if has_w:
            s_w, fw = _positions(a3, d3, m.weight.shape)
            sq = sq + s_w
        if has_b:
            gb = d3.sum(dim=-1).reshape(b, -1)
            sq = sq + gb.pow(2).sum(dim=1)
            fb = _Weighted(m.bias.shape, per_example=gb)
        return sq, fw, fb
    # normalization layers: per-example grads are sums over the non-parameter dims
    if isinstance(m, _BN):
        shape = (1, -1) + (1,) * (a.dim() - 2)
        xhat = (a - m.running_mean.reshape(shape)) * torch.rsqrt(m.running_var.reshape(shape) + m.eps)
        dims = tuple(range(2, a.dim()))
    elif isinstance(m, nn.GroupNorm):
        xhat = F.group_norm(a, m.num_groups, None, None, m.eps)
        dims = tuple(range(2, a.dim()))
    else:  # LayerNorm
        nd = len(m.normalized_shape)
        xhat = F.layer_norm(a, m.normalized_shape, None, None, m.eps)
        dims = tuple(range(1, a.dim() - nd))
    if has_w:
        gw = (d * xhat).sum(dim=dims) if dims else d * xhat
        sq = sq + gw.reshape(b, -1).pow(2).sum(dim=1)
        fw = _Weighted(m.weight.shape, per_example=gw)
    if has_b:
        gb = d.sum(dim=dims) if dims else d
        sq = sq + gb.reshape(b, -1).pow(2).sum(dim=1)
        fb = _Weighted(m.bias.shape, per_example=gb)
    return sq, fw, fb


def _versions(rec: tuple[Tensor, Tensor]) -> tuple[int, int]:
    return rec[0]._version, rec[1]._version


def _forward(
    model: nn.Module,
    buffers: Mapping[str, Tensor],
    q: Mapping[str, Tensor],
    x: Tensor,
    plan: Plan,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    y: Tensor,
    copy: bool,
) -> tuple[dict[nn.Module, tuple[Tensor, Tensor]], Tensor, dict[nn.Module, tuple[int, int]]] | None:
    """Forward pass saving each planned layer's (input, output) and their version counters, and the per-example
    losses; ``None`` where the ghost norms do not apply. ``copy`` keeps private copies (the layer's successors
    get a clone of the output, the saved input is a clone)."""
    records: dict[nn.Module, tuple[Tensor, Tensor]] = {}
    versions: dict[nn.Module, tuple[int, int]] = {}
    failed: list[nn.Module] = []

    def hook(mod: nn.Module, args: tuple, out: object) -> object:
        ok = (
            mod not in records
            and len(args) >= 1
            and isinstance(args[0], Tensor)
            and isinstance(out, Tensor)
            and args[0].dim() >= 2
            and not (isinstance(mod, _BN) and (mod.training or mod.running_mean is None))
        )
        if not ok:
            failed.append(mod)
            return None
        a = args[0].detach()
        records[mod] = (a.clone() if copy else a, out)
        versions[mod] = _versions(records[mod])
        return out.clone() if copy else None

    handles = [m.register_forward_hook(hook) for m in plan]
    try:
        out = functional_call(model, {**buffers, **q}, (x,))
    finally:
        for h in handles:
            h.remove()
    if failed:
        return None
    try:
        losses = torch.func.vmap(lambda o, t: loss_fn(o.unsqueeze(0), t.unsqueeze(0)).reshape(()))(out, y)
    except (RuntimeError, TypeError, ValueError):
        return None
    return records, losses, versions


def ghost_direction(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    buffers: Mapping[str, Tensor],
    p: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    plan: Plan,
    workspace: dict | None = None,
) -> dict[str, Tensor] | None:
    """(1/B) Σ_j g_j/‖g_j‖ at parameters ``p`` (ℓ_j = ``loss_fn(model(x_j[None]), y_j[None])``), or ``None``.

    ``None`` means the forward pass used a layer in a way the ghost norms do not cover (a layer called twice,
    BatchNorm with batch statistics, a non-tensor input/output, a loss that cannot be split per example); the
    caller then uses the vmap path. All hooks are removed before returning, also on error. An example whose
    gradient is exactly zero contributes zero. ``workspace`` (a dict the caller keeps between calls on same-shaped
    data) lets repeated calls reuse the per-example gradient buffers instead of allocating them afresh.
    """
    keys = list(p)
    q = {k: v.detach().requires_grad_(True) for k, v in p.items()}
    fwd = _forward(model, buffers, q, x, plan, loss_fn, y, copy=False)
    if fwd is None:
        return None
    records, losses, versions = fwd
    if any(_versions(records[m]) != v for m, v in versions.items()):
        # a later in-place op (ReLU(inplace=True), ``out += skip``) changed a saved input or output: run the forward
        # again, this time on private copies
        fwd = _forward(model, buffers, q, x, plan, loss_fn, y, copy=True)
        if fwd is None:
            return None
        records, losses, _ = fwd
    mods = list(records)
    deltas = torch.autograd.grad(losses.sum(), [records[m][1] for m in mods], allow_unused=True)
    sq = losses.new_zeros(losses.shape[0])
    weighted: dict[str, Callable] = {}
    for m, delta in zip(mods, deltas):
        if delta is None:
            continue
        w_name, b_name = plan[m]
        s_m, fw, fb = _layer(m, records[m][0], delta.detach(), w_name is not None, b_name is not None, workspace)
        sq = sq + s_m
        if fw is not None:
            weighted[w_name] = fw
        if fb is not None:
            weighted[b_name] = fb
    inv = sq.sqrt().clamp_min(torch.finfo(sq.dtype).tiny).reciprocal().mul_(1.0 / losses.shape[0])
    weights = torch.where(sq > 0, inv, torch.zeros_like(inv))
    return {k: weighted[k](weights).to(p[k].dtype) if k in weighted else torch.zeros_like(p[k]) for k in keys}
