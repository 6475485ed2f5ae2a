"""Building blocks for time-major spiking models.

Every block takes and returns time-major tensors ``[T, B, ...]``. Stateless per-sample layers
(convolution, BatchNorm, pooling) run once on the ``T*B`` rows merged into one batch — one big
kernel call instead of T small ones, and BatchNorm statistics over all time steps (the usual
multi-step convention of SpikingJelly and tdBN). Spiking neurons see ``[T, B, ...]`` and carry
their membrane state over T.

    TimeDistributed(nn.AvgPool2d(2))     # [T, B, C, H, W] -> [T, B, C, H/2, W/2]
    ConvBNSpike(3, 64, neuron)          # conv3x3 -> BN -> neuron
    Conv1dBNSpike(1, 32, neuron, 5)     # conv1d (k=5) -> BN -> neuron on [T, B, C, L]
    LinearSpike(512, 256, neuron)       # linear (-> BN) -> neuron
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

NeuronFactory = Callable[[], nn.Module]


def seq_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply a per-sample ``fn`` to ``x [T, B, ...]`` on the merged ``[T*B, ...]`` rows."""
    t, b = x.shape[:2]
    y = fn(x.reshape(t * b, *x.shape[2:]))
    return y.reshape(t, b, *y.shape[1:])


class TimeDistributed(nn.Sequential):
    """Per-sample layers on ``[T, B, ...]``, T and B merged (SpikingJelly's ``SeqToANNContainer``).

    A ``nn.Sequential``, so parameters are named ``<name>.0.weight``, ``<name>.1.weight``, ...
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, ...] -> [T, B, ...']
        return seq_apply(super().forward, x)


class _ConvNormSpike(nn.Module):
    """Conv (no bias: BN follows) -> BatchNorm over the T*B rows -> spiking neuron; the
    subclasses name the convolution and normalisation of their dimension."""

    conv_type: type = nn.Conv2d
    norm_type: type = nn.BatchNorm2d

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory,
                 kernel_size: int, stride: int = 1, padding: Optional[int] = None):
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.conv = self.conv_type(in_channels, out_channels, kernel_size, stride, padding,
                                   bias=False)
        self.bn = self.norm_type(out_channels)
        self.spike = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike(seq_apply(lambda z: self.bn(self.conv(z)), x))


class ConvBNSpike(_ConvNormSpike):
    """Conv2d (no bias: BN follows) -> BatchNorm2d over the T*B rows -> spiking neuron.

    ``[T, B, C_in, H, W] -> [T, B, C_out, H', W']`` (H' = H for stride 1, 'same' padding).
    Parameters: ``conv.weight``, ``bn.weight``, ``bn.bias`` (+ the neuron's, e.g. PLIF's tau).
    """

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory,
                 kernel_size: int = 3, stride: int = 1, padding: Optional[int] = None):
        super().__init__(in_channels, out_channels, neuron, kernel_size, stride, padding)


class Conv1dBNSpike(_ConvNormSpike):
    """Conv1d (no bias: BN follows) -> BatchNorm1d over the T*B rows -> spiking neuron.

    ``[T, B, C_in, L] -> [T, B, C_out, L']`` (L' = L for stride 1 and an odd kernel: 'same'
    padding ``kernel_size // 2``). Parameters: ``conv.weight``, ``bn.weight``, ``bn.bias``.
    """

    conv_type = nn.Conv1d
    norm_type = nn.BatchNorm1d

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory,
                 kernel_size: int = 5, stride: int = 1, padding: Optional[int] = None):
        super().__init__(in_channels, out_channels, neuron, kernel_size, stride, padding)


class LinearSpike(nn.Module):
    """Linear (-> BatchNorm1d over T*B rows, optional) -> neuron: ``[T, B, F] -> [T, B, F']``."""

    def __init__(self, in_features: int, out_features: int, neuron: NeuronFactory,
                 bias: bool = True, batch_norm: bool = False):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features, bias=bias and not batch_norm)
        self.bn = nn.BatchNorm1d(out_features) if batch_norm else None
        self.spike = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if self.bn is not None:
            y = seq_apply(self.bn, y)
        return self.spike(y)


class SeqDropout(nn.Module):
    """Dropout with one mask per sample shared by all time steps (SpikingJelly's ``layer.Dropout``).

    A unit dropped at t=0 stays dropped for the whole sequence, so dropout cannot add spikes or
    holes that flicker over time. ``[T, B, ...] -> [T, B, ...]``; identity in eval mode.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty_like(x[0]).bernoulli_(1 - self.p).div_(1 - self.p)  # [B, ...]
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def pool2d(kind: str) -> TimeDistributed:
    """2x2 pooling with stride 2 and ``ceil_mode=True``: ``H -> ceil(H/2)``.

    For even sizes this is the standard 2x2 pooling; ceil mode only matters for odd sizes (a 3x3
    map gives 2x2, the edge window averaging the pixels it covers) and lets a 1x1 map pass
    unchanged, so deep models also run on small inputs such as 8x8 digits.
    """
    if kind == "avg":
        return TimeDistributed(nn.AvgPool2d(2, ceil_mode=True))
    if kind == "max":
        return TimeDistributed(nn.MaxPool2d(2, ceil_mode=True))
    raise ValueError(f"unknown pool {kind!r}")


def pool1d(kind: str) -> TimeDistributed:
    """Pooling by 2 along the last axis (stride 2, ``ceil_mode=True``): ``L -> ceil(L/2)``."""
    if kind == "avg":
        return TimeDistributed(nn.AvgPool1d(2, ceil_mode=True))
    if kind == "max":
        return TimeDistributed(nn.MaxPool1d(2, ceil_mode=True))
    raise ValueError(f"unknown pool {kind!r}")


def pooled(size: int) -> int:
    """Side length after :func:`pool2d` (and length after :func:`pool1d`)."""
    return (size + 1) // 2
