"""``AvgPool2x2`` / ``MaxPool2x2``: 2x2 / stride-2 pooling for inference, bit-identical to
PyTorch's.

PyTorch's CPU ``avg_pool2d`` and ``max_pool2d`` on NCHW spike maps are slow — 6–10 ms (average)
and 7–13 ms (max) for 64x64x34x34 on 2 AVX2 threads, as long as the sparse convolution before
them (``benchmarks/bench_sparse_inference.py``, part ``conv-model``). These modules run one-pass
native kernels (``conv_kernel.avg_pool2`` / ``max_pool2``: each window's valid entries in
PyTorch's order — summed and divided by their count, or PyTorch's running maximum, NaN
propagating — so the result is the same bit for bit; tested, and self-tested at load,
``ceil_mode``'s partial windows included); without the native kernels, or for other dtypes and
devices, PyTorch's own. ``replace_pools`` swaps each plain ``nn.AvgPool2d(2, 2)`` /
``nn.MaxPool2d(2, 2)`` of a model for one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikesculpt.inference import conv_kernel


def _native_ok(x: torch.Tensor) -> bool:
    h, w = x.shape[-2:]
    return (x.dim() >= 3 and h >= 2 and w >= 2 and x.device.type == "cpu"
            and x.dtype == torch.float32 and conv_kernel.available())


def _torch_pool(fn, x: torch.Tensor, *args) -> torch.Tensor:
    x4 = x.reshape(-1, *x.shape[-3:]) if x.dim() > 4 else x
    y = fn(x4, 2, 2, 0, *args)
    return y.reshape(*x.shape[:-2], *y.shape[-2:])


class AvgPool2x2(nn.Module):
    """``nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=...)``, faster on CPU."""

    def __init__(self, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__()
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.count_include_pad and _native_ok(x):
            return conv_kernel.avg_pool2(x.detach(), self.ceil_mode)
        return _torch_pool(F.avg_pool2d, x, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"ceil_mode={self.ceil_mode}"


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=...)``, faster on CPU."""

    def __init__(self, ceil_mode: bool = False):
        super().__init__()
        self.ceil_mode = ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _native_ok(x):
            return conv_kernel.max_pool2(x.detach(), self.ceil_mode)
        return _torch_pool(F.max_pool2d, x, 1, self.ceil_mode)  # dilation 1

    def extra_repr(self) -> str:
        return f"ceil_mode={self.ceil_mode}"


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _plain_2x2(pool: nn.Module) -> bool:
    return (_pair(pool.kernel_size) == (2, 2) and _pair(pool.stride or pool.kernel_size) == (2, 2)
            and _pair(pool.padding) == (0, 0))


def _native_twin(pool: nn.Module):
    """The native module equal to ``pool``, or None if it has none."""
    if isinstance(pool, nn.AvgPool2d) and _plain_2x2(pool) and pool.divisor_override is None:
        return AvgPool2x2(pool.ceil_mode, pool.count_include_pad)
    if (isinstance(pool, nn.MaxPool2d) and _plain_2x2(pool) and _pair(pool.dilation) == (1, 1)
            and not pool.return_indices):
        return MaxPool2x2(pool.ceil_mode)
    return None


def replace_pools(model: nn.Module) -> list[str]:
    """Replace every plain 2x2 / stride-2 ``nn.AvgPool2d`` / ``nn.MaxPool2d`` of ``model`` (in
    place) by an ``AvgPool2x2`` / ``MaxPool2x2``; returns their names."""
    replaced = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            twin = _native_twin(child)
            if twin is not None:
                setattr(module, child_name, twin)
                replaced.append(f"{name}.{child_name}" if name else child_name)
    return replaced
