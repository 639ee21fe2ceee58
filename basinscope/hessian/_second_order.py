"""Cheaper double backpropagation for Hessian-vector products: same function, better second-order kernels.

An HVP by double backpropagation (Pearlmutter 1994) differentiates the backward pass of the model. For two
common layers PyTorch's generic double-backward formulas do much more work than needed; while building the
gradient graph of an HVP, :func:`second_order_mode` substitutes computations of the *same function* whose
backward pass differentiates cheaply:

* **BatchNorm with running statistics** (eval mode) is the per-channel affine map
  y = x·γ/√(σ²+ε) + (β − μ·γ/√(σ²+ε)). ``F.batch_norm`` differentiates it with the training-mode double-backward
  formula (``batchnorm_double_backward``), which re-derives batch statistics it does not use; written as one
  ``addcmul`` the double backward is two products and two sums. When its input is the untouched output of the
  convolution just substituted (conv → BN, as in ResNets), the map is folded into that convolution instead:
  conv(x, w·s) + (b·s + shift), with s the per-channel scale. The double backward then multiplies only the
  small weight tensor, never the activations; the unfolded convolution's output is left unused.
* **Convolution** (``conv1d``/``conv2d``/``conv3d`` with numeric padding): the backward (g_x, g_w) is bilinear
  in (g_out, w) and (g_out, x), so its derivative for incoming (gg_x, gg_w) is
  ∂g_out = conv(gg_x, w) + conv(x, gg_w), ∂x = input-gradient kernel of (g_out, gg_w),
  ∂w = weight-gradient kernel of (gg_x, g_out): two forward convolutions and the two backward kernels. PyTorch's
  ``_convolution_double_backward`` forms the weight term as a convolution with batch and channel axes swapped,
  which oneDNN runs several times slower than its weight-gradient kernel.

Measured on a ResNet-20 (batch 128, CPU, 2 threads, float32, medians of 5 alternating runs): one HVP took
0.79 s with PyTorch's formulas, 0.53 s with the substitutions, 0.43 s with the conv-BN fold as well. The fold
is also more accurate in float32: against the float64 HVP the relative error was 7.5e-7 folded and 6.4e-5
with either unfolded form (docs/benchmarks/hessian.md has the full figures). Everything else (BatchNorm with batch
statistics, string padding such as ``"same"``, transposed convolutions) runs unchanged. The substituted
forward equals the original to rounding; derivatives of every order stay exact
(the double backward is itself built from differentiable operations).

**Attention.** ``F.scaled_dot_product_attention`` (used by ``nn.MultiheadAttention`` and the ``nn.Transformer*``
layers) dispatches to fused kernels (flash attention on CPU and CUDA, memory-efficient and cuDNN attention on
CUDA) whose backward has no derivative: double backpropagation through them fails ("derivative for
aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented" on CPU with torch 2.13).
:func:`second_order_mode` therefore always (also with ``enabled=False``) restricts it to the math backend,
the composite of matmul and softmax, which is differentiable to every order and computes the same function.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["math_attention", "second_order_mode"]

_CONVS = {torch.conv1d: 1, torch.conv2d: 2, torch.conv3d: 3}
_BN_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")


def _tuple(value: int | Sequence[int], n: int) -> list[int]:
    return [int(value)] * n if isinstance(value, int) else [int(v) for v in value]


class _ConvBackward(torch.autograd.Function):
    """(g_x, g_w) of a convolution from (g_out, x, w), with a kernel-level double backward."""

    @staticmethod
    def forward(ctx, g_out, x, w, conf, need_x, need_w):
        stride, padding, dilation, groups = conf
        ctx.conf = conf
        ctx.save_for_backward(g_out, x, w)
        zeros = [0] * len(stride)
        g_x, g_w, _ = torch.ops.aten.convolution_backward(
            g_out, x, w, None, stride, padding, dilation, False, zeros, groups, [need_x, need_w, False]
        )
        return g_x, g_w

    @staticmethod
    def backward(ctx, gg_x, gg_w):
        g_out, x, w = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        zeros = [0] * len(stride)
        d_out = d_x = d_w = None
        if ctx.needs_input_grad[0]:
            if gg_x is not None:
                d_out = torch.convolution(gg_x, w, None, stride, padding, dilation, False, zeros, groups)
            if gg_w is not None:
                term = torch.convolution(x, gg_w, None, stride, padding, dilation, False, zeros, groups)
                d_out = term if d_out is None else d_out + term
        if ctx.needs_input_grad[1] and gg_w is not None:
            d_x = torch.ops.aten.convolution_backward(
                g_out, x, gg_w, None, stride, padding, dilation, False, zeros, groups, [True, False, False]
            )[0]
        if ctx.needs_input_grad[2] and gg_x is not None:
            d_w = torch.ops.aten.convolution_backward(
                g_out, gg_x, w, None, stride, padding, dilation, False, zeros, groups, [False, True, False]
            )[1]
        return d_out, d_x, d_w, None, None, None


class _Conv(torch.autograd.Function):
    """A convolution whose backward is :class:`_ConvBackward` (differentiable, cheap to differentiate)."""

    @staticmethod
    def forward(ctx, x, w, b, conf):
        stride, padding, dilation, groups = conf
        ctx.conf = conf
        ctx.has_bias = b is not None
        ctx.save_for_backward(x, w)
        return torch.convolution(x, w, b, stride, padding, dilation, False, [0] * len(stride), groups)

    @staticmethod
    def backward(ctx, g_out):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g_x = g_w = g_b = None
        if need_x or need_w:
            g_x, g_w = _ConvBackward.apply(g_out, x, w, ctx.conf, need_x, need_w)
        if need_b and ctx.has_bias:
            g_b = g_out.sum(dim=[0, *range(2, g_out.dim())])
        return (g_x if need_x else None), (g_w if need_w else None), g_b, None


class _Mode(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        # the most recent substituted convolution: (its output, x, w, bias, conf, output version)
        self.last_conv: tuple | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.batch_norm:
            out = _batch_norm_affine(args, kwargs, self.last_conv)
            self.last_conv = None
            if out is not None:
                return out
        elif func in _CONVS:
            found = _conv(_CONVS[func], args, kwargs)
            if found is not None:
                self.last_conv = found
                return found[0]
        return func(*args, **kwargs)


def _batch_norm_affine(args: tuple, kwargs: dict, last_conv: tuple | None) -> torch.Tensor | None:
    a = dict(zip(_BN_ARGS, args))
    a.update(kwargs)
    x, mean, var = a.get("input"), a.get("running_mean"), a.get("running_var")
    if a.get("training", False) or mean is None or var is None or not isinstance(x, torch.Tensor) or x.dim() < 2:
        return None
    scale = torch.rsqrt(var + a.get("eps", 1e-5))
    w, b = a.get("weight"), a.get("bias")
    if w is not None:
        scale = scale * w
    shift = -mean * scale
    if b is not None:
        shift = shift + b
    if last_conv is not None and last_conv[0] is x and x._version == last_conv[-1]:
        # BatchNorm of a convolution's output: fold the affine map into the convolution's weight and bias
        _, cx, cw, cb, conf, _ = last_conv
        fused_w = cw * scale.reshape((-1,) + (1,) * (cw.dim() - 1))
        fused_b = shift if cb is None else torch.addcmul(shift, cb, scale)
        return _Conv.apply(cx, fused_w, fused_b, conf)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return torch.addcmul(shift.reshape(shape), x, scale.reshape(shape))


def _conv(n: int, args: tuple, kwargs: dict) -> tuple | None:
    a = dict(zip(_CONV_ARGS, args))
    a.update(kwargs)
    x, w = a.get("input"), a.get("weight")
    padding = a.get("padding", 0)
    if isinstance(padding, str) or not isinstance(x, torch.Tensor) or not isinstance(w, torch.Tensor):
        return None
    if x.dim() != n + 2:  # unbatched input: leave it to the original
        return None
    conf = (
        _tuple(a.get("stride", 1), n),
        _tuple(padding, n),
        _tuple(a.get("dilation", 1), n),
        int(a.get("groups", 1)),
    )
    out = _Conv.apply(x, w, a.get("bias"), conf)
    return out, x, w, a.get("bias"), conf, out._version


def math_attention() -> contextlib.AbstractContextManager:
    """A context in which ``F.scaled_dot_product_attention`` uses its math backend only (twice differentiable)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        return torch.backends.cuda.sdp_kernel(enable_flash=False, enable_math=True, enable_mem_efficient=False)
    return sdpa_kernel(SDPBackend.MATH)


@contextlib.contextmanager
def second_order_mode(enabled: bool = True) -> Iterator[None]:
    """Within the block, eval-mode BatchNorm and numeric-padding convolutions are computed in the forms whose
    double backward is cheap (module docstring), and attention runs on its math backend (always, as the fused
    kernels cannot be differentiated twice). Same values to rounding; nothing persists after the block."""
    with math_attention():
        if not enabled:
            yield
            return
        with _Mode():
            yield
