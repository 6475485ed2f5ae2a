"""``SparseConv2d`` / ``SparseConv1d``: inference-only convolutions on their nonzero weights.

They replace ``nn.Conv2d`` / ``nn.Conv1d`` layers (subclasses included, e.g. SpikingJelly's
``layer.Conv2d``) with stride 1, dilation 1, one group and zero padding in
``to_sparse_inference``. Inputs ``[..., C, H, W]`` (e.g. ``[T, B, C, H, W]``, or ``[T·B, C, H,
W]``) are processed as ``N = prod(...)`` images; a 1-D convolution ``[..., C, L]`` runs as a
2-D one on ``1 x L`` images with a ``1 x k`` kernel. Kernels (``inference/conv_kernel.py``):

``direct``  vectorised over output pixels, work ∝ density — the default above
            ``EVENT_ACTIVITY`` input activity;
``events``  one scatter per (spike, nonzero weight), work ∝ activity × density — below it;
``dense``   PyTorch's ``conv2d`` on the weight with its zeros (what a calibration may pick for a
            layer where the sparse kernels do not pay).

Results equal ``torch.nn.functional.conv2d`` on the masked weight up to float32 rounding.
Without the native kernel (no compiler, other dtypes or devices) the ``dense`` path runs.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from spikesculpt.inference import conv_kernel

EVENT_ACTIVITY = 0.01  # "auto": below this input activity the event-driven kernel is used
# (crossover measured at ~0.01 on 64->128, 32x32, density 0.1, AVX2, since the spike path of
# ``direct``; 0.02-0.03 before it: bench_sparse_inference)
CONV_MODES = ("auto", "direct", "events", "dense")


def activity(x: torch.Tensor, sample: int = 4096) -> float:
    """Estimated fraction of nonzero entries of ``x``: about ``sample`` evenly spaced ones."""
    flat = x.reshape(-1)
    if flat.numel() == 0:
        return 0.0
    return float((flat[:: max(1, flat.numel() // sample)] != 0).float().mean())


def convertible(conv: nn.Module) -> Optional[str]:
    """None if ``conv`` (an ``nn.Conv1d`` / ``nn.Conv2d``) can be converted, else why not."""
    if conv.groups != 1:
        return f"groups={conv.groups} (only 1 is supported)"
    if any(s != 1 for s in conv.stride):
        return f"stride {tuple(conv.stride)} (only 1 is supported)"
    if any(d != 1 for d in conv.dilation):
        return f"dilation {tuple(conv.dilation)} (only 1 is supported)"
    if conv.padding_mode != "zeros":
        return f"padding_mode={conv.padding_mode!r} (only 'zeros' is supported)"
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return None
        if any(k % 2 == 0 for k in conv.kernel_size):  # 'same' with an even kernel: asymmetric
            return "padding='same' with an even kernel (asymmetric padding)"
    return None


def _padding(conv: nn.Module) -> tuple[int, ...]:
    if conv.padding == "valid":
        return (0,) * len(conv.kernel_size)
    if conv.padding == "same":
        return tuple((k - 1) // 2 for k in conv.kernel_size)
    return tuple(conv.padding)


class SparseConv2d(nn.Module):
    """Inference-only stride-1 ``nn.Conv2d`` on the nonzero weights:
    ``[..., C, H, W] -> [..., O, H + 2·ph - kh + 1, W + 2·pw - kw + 1]``.

    Buffers (the state dict): ``idx`` int32 ``[nnz, 4]`` (output channel, input channel, kernel
    row, kernel column, sorted), ``vals`` float32 ``[nnz]``, ``bias``. ``mode``: ``auto``,
    ``direct``, ``events`` or ``dense`` (see the module docstring); it is saved with the state
    dict (``get_extra_state``), so a calibrated choice travels with the model.
    """

    spatial_dims = 2

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                 padding: tuple[int, int] = (0, 0), mode: str = "auto"):
        super().__init__()
        if mode not in CONV_MODES:
            raise ValueError(f"mode must be one of {CONV_MODES}, got {mode!r}")
        self.out_channels, self.in_channels, self.kh, self.kw = weight.shape
        self.padding = tuple(int(p) for p in padding)
        self.mode = mode
        w = weight.detach().to("cpu", torch.float32)
        nz = w != 0
        self.register_buffer("idx", nz.nonzero().to(torch.int32))
        self.register_buffer("vals", w[nz].contiguous())
        self.register_buffer("bias", None if bias is None
                             else bias.detach().to(torch.float32).clone())
        self._weights: Optional[conv_kernel.ConvWeights] = None  # kernel layouts, built lazily
        self._dense: Optional[torch.Tensor] = None
        self.last_kernel = None  # which kernel ran last: "direct" | "events" | "dense"

    @classmethod
    def from_conv(cls, conv: nn.Module, mode: str = "auto") -> "SparseConv2d":
        why = convertible(conv)
        if why is not None:
            raise ValueError(f"cannot convert {type(conv).__name__}: {why}")
        weight = conv.weight.detach()
        if cls.spatial_dims == 1:
            weight = weight.unsqueeze(2)  # [O, C, k] -> [O, C, 1, k]
        padding = _padding(conv)
        return cls(weight, conv.bias, ((0,) + padding) if cls.spatial_dims == 1 else padding,
                   mode)

    @property
    def nnz(self) -> int:
        return int(self.vals.numel())

    @property
    def density(self) -> float:
        return self.nnz / (self.out_channels * self.in_channels * self.kh * self.kw)

    def to_dense_weight(self) -> torch.Tensor:
        """The 4-D weight ``[O, C, kh, kw]`` with zeros in place (exactly the converted one)."""
        w = torch.zeros(self.out_channels, self.in_channels, self.kh, self.kw)
        i = self.idx.long()
        w[i[:, 0], i[:, 1], i[:, 2], i[:, 3]] = self.vals
        return w

    def get_extra_state(self) -> dict:
        return {"mode": self.mode}

    def set_extra_state(self, state: dict) -> None:
        self.mode = state.get("mode", self.mode)
        self._weights = self._dense = None  # the buffers may have changed too

    def kernel_weights(self) -> conv_kernel.ConvWeights:
        if self._weights is None:
            self._weights = conv_kernel.ConvWeights(self.to_dense_weight(), self.padding)
        return self._weights

    def _dense_conv(self, x4: torch.Tensor) -> torch.Tensor:
        if self._dense is None:
            self._dense = self.to_dense_weight()
        w = self._dense.to(x4.device, x4.dtype)
        b = None if self.bias is None else self.bias.to(x4.device, x4.dtype)
        return F.conv2d(x4, w, b, padding=self.padding)

    def choose(self, x4: torch.Tensor) -> str:
        """The kernel ``mode`` runs on ``x4 [N, C, H, W]``."""
        native = (x4.device.type == "cpu" and x4.dtype == torch.float32
                  and conv_kernel.available())
        if self.mode == "dense" or not native:
            return "dense"
        events_ok = self.kernel_weights().events_ok
        if self.mode == "events" and events_ok:
            return "events"
        if self.mode == "auto" and events_ok and activity(x4) < EVENT_ACTIVITY:
            return "events"
        return "direct"

    def run_kernel(self, kind: str, x4: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, O, Ho, Wo]`` with one named kernel (calibration times these)."""
        if kind == "dense":
            return self._dense_conv(x4)
        fn = conv_kernel.events_conv if kind == "events" else conv_kernel.direct_conv
        return fn(x4.contiguous(), self.kernel_weights(), self.bias)

    def as_kernel_input(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., C, H, W] -> [N, C, H, W]``: what the kernels take."""
        if x.dim() < 3 or x.shape[-3] != self.in_channels:
            raise ValueError(f"expected input [..., {self.in_channels}, H, W], got {list(x.shape)}")
        return x.detach().reshape(-1, *x.shape[-3:])

    def _output_shape(self, x: torch.Tensor, y: torch.Tensor) -> tuple[int, ...]:
        return (*x.shape[:-3], *y.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x4 = self.as_kernel_input(x)
        kind = self.choose(x4)
        self.last_kernel = kind
        y = self.run_kernel(kind, x4)
        return y.reshape(self._output_shape(x, y)).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size=({self.kh}, {self.kw}), "
                f"padding={self.padding}, density={self.density:.4f}, "
                f"bias={self.bias is not None}, mode={self.mode}")


class SparseConv1d(SparseConv2d):
    """Inference-only stride-1 ``nn.Conv1d``: ``[..., C, L] -> [..., O, L + 2·p - k + 1]``,
    run as a ``SparseConv2d`` on ``1 x L`` images (weight ``[O, C, 1, k]``)."""

    spatial_dims = 1

    def as_kernel_input(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., C, L] -> [N, C, 1, L]``."""
        if x.dim() < 2 or x.shape[-2] != self.in_channels:
            raise ValueError(f"expected input [..., {self.in_channels}, L], got {list(x.shape)}")
        return x.detach().reshape(-1, self.in_channels, 1, x.shape[-1])

    def _output_shape(self, x: torch.Tensor, y: torch.Tensor) -> tuple[int, ...]:
        return (*x.shape[:-2], self.out_channels, y.shape[-1])

    def to_dense_weight_1d(self) -> torch.Tensor:
        """The 3-D weight ``[O, C, k]`` (that of the converted ``nn.Conv1d``)."""
        return self.to_dense_weight().squeeze(2)
