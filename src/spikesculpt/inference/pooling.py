"""``AvgPool2x2``: 2x2 / stride-2 average pooling for inference, bit-identical to PyTorch's.

PyTorch's CPU ``avg_pool2d`` on NCHW spike maps is slow — 6–10 ms for 64x64x34x34 on 2 AVX2
threads, as long as the sparse convolution before it (``benchmarks/bench_sparse_inference.py``,
part ``conv-model``). ``AvgPool2x2`` runs a one-pass native kernel
(``conv_kernel.avg_pool2``: each window's valid entries summed in PyTorch's order and divided
by their count, so the result is the same bit for bit — tested, and self-tested at load,
``ceil_mode``'s partial windows included); without the native kernels, or for other dtypes
and devices, PyTorch's ``avg_pool2d``. ``replace_avg_pools`` swaps each plain
``nn.AvgPool2d(2, 2)`` of a model for one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikesculpt.inference import conv_kernel


class AvgPool2x2(nn.Module):
    """``nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=...)``, faster on even maps."""

    def __init__(self, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__()
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if (x.dim() >= 3 and h >= 2 and w >= 2 and x.device.type == "cpu"
                and x.dtype == torch.float32 and self.count_include_pad
                and conv_kernel.available()):
            return conv_kernel.avg_pool2(x.detach(), self.ceil_mode)
        x4 = x.reshape(-1, *x.shape[-3:]) if x.dim() > 4 else x
        y = F.avg_pool2d(x4, 2, 2, 0, self.ceil_mode, self.count_include_pad)
        return y.reshape(*x.shape[:-2], *y.shape[-2:])

    def extra_repr(self) -> str:
        return f"ceil_mode={self.ceil_mode}"


def _is_plain_2x2(pool: nn.Module) -> bool:
    def pair(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    return (isinstance(pool, nn.AvgPool2d) and pair(pool.kernel_size) == (2, 2)
            and pair(pool.stride or pool.kernel_size) == (2, 2) and pair(pool.padding) == (0, 0)
            and pool.divisor_override is None)


def replace_avg_pools(model: nn.Module) -> list[str]:
    """Replace every plain 2x2 / stride-2 ``nn.AvgPool2d`` of ``model`` (in place) by an
    ``AvgPool2x2``; returns their names."""
    replaced = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if _is_plain_2x2(child):
                setattr(module, child_name, AvgPool2x2(child.ceil_mode, child.count_include_pad))
                replaced.append(f"{name}.{child_name}" if name else child_name)
    return replaced
