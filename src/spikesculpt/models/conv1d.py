"""A 1-D convolutional SNN for signals: MNIST-1D, flat feature vectors, flattened images."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.models.base import SpikingModel
from spikesculpt.models.factory import (
    int_tuple,
    pool_kind,
    positive_float,
    positive_int,
    register_model,
    scaled,
)
from spikesculpt.models.layers import (
    Conv1dBNSpike,
    LinearSpike,
    NeuronFactory,
    pool1d,
    pooled,
)


class SpikingConv1d(SpikingModel):
    """[Conv1d -> BN -> neuron -> pool by 2] per entry of ``channels`` -> hidden FCs -> readout.

    The input is read as ``C`` channels of length ``L``: flat features ``[T, B, F]`` as
    ``[T, B, C, F/C]`` (C = ``in_channels``, 1 for MNIST-1D), images ``[T, B, C, H, W]`` as
    ``[T, B, C, H*W]`` (rows one after the other). Shapes for MNIST-1D (F = 40) with
    ``channels=(32, 64, 64)``, ``kernel_size=5``:
        x              [T, B, 40]
        as signal      [T, B, 1, 40]
        32, P          [T, B, 32, 20]   spikes, pooled
        64, P          [T, B, 64, 10]
        64, P          [T, B, 64, 5]
        flatten        [T, B, 320]
        readout        [T, B, 10]       logits per time step
    """

    def __init__(self, in_channels: int, length: int, channels: tuple[int, ...],
                 kernel_size: int, num_classes: int, neuron: NeuronFactory, *, pool: str = "max",
                 hidden: tuple[int, ...] = (), image_size: Optional[tuple] = None,
                 in_features: Optional[int] = None):
        super().__init__("conv1d", in_channels, image_size, num_classes,
                         in_features=in_features)
        self.length = length
        layers: list[nn.Module] = []
        c, n = in_channels, length
        self.feature_shapes = []  # (C, L) after each block, for summaries and tests
        for out in channels:
            layers += [Conv1dBNSpike(c, out, neuron, kernel_size), pool1d(pool)]
            c, n = out, pooled(n)
            self.feature_shapes.append((c, n))
        self.features = nn.Sequential(*layers)
        sizes = (c * n, *hidden)
        self.classifier = nn.Sequential(*[LinearSpike(a, b, neuron)
                                          for a, b in zip(sizes[:-1], sizes[1:])])
        self.readout = nn.Linear(sizes[-1], num_classes)
        self.init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)                                       # [T, B, F] or [T, B, C, H, W]
        x = x.reshape(*x.shape[:2], self.in_channels, self.length)  # [T, B, C, L]
        x = self.features(x)                                      # [T, B, C', L'] spikes
        x = self.classifier(x.flatten(2))                         # [T, B, hidden[-1]] spikes
        return self.readout(x)                                    # [T, B, classes]


@register_model("conv1d")
def conv1d(*, in_channels: int, image_size, num_classes: int, neuron: NeuronFactory,
           channels: Any = (32, 64, 64), kernel_size: int = 5, width: float = 1.0,
           pool: str = "max", hidden: Any = (), in_features: Optional[int] = None
           ) -> SpikingConv1d:
    """1-D conv SNN: (conv1d-BN-LIF, pool by 2) per entry of channels, [hidden FCs], readout.

    Made for MNIST-1D (Greydanus 2020, arXiv 2011.14439), whose CNN rung (three Conv1d layers
    of 25 channels, ReLU, ~94% test accuracy) is the target; ours is the spiking counterpart
    with the layout of ``conv`` (BatchNorm over T*B rows, no conv bias, 'same' padding, pooling
    by 2 with ceil mode). ``channels`` and ``hidden`` are multiplied by ``width``;
    ``kernel_size`` must be odd (so 'same' padding keeps the length). ``pool=max`` (default,
    our choice) keeps pooled spikes binary, so every layer after the first counts as
    accumulates in SynOps; ``pool=avg`` as in ``conv``. Flat features ``[T, B, F]`` are
    ``in_channels`` channels of length ``F / in_channels``; images ``[T, B, C, H, W]`` are C
    channels of length H*W.
    """
    chans = int_tuple("conv1d: channels", channels)
    hidden = int_tuple("conv1d: hidden", hidden, allow_empty=True)
    width = positive_float("conv1d: width", width)
    k = positive_int("conv1d: kernel_size", kernel_size)
    if k % 2 == 0:
        raise UserError(f"conv1d: kernel_size must be odd ('same' padding keeps the length), "
                        f"got {k}; e.g. kernel_size=5")
    if image_size is None:
        if in_features is None:
            raise UserError("conv1d on flat features needs in_features (the feature count); "
                            "pass in_features=F or give image_size for image input")
        in_features = positive_int("conv1d: in_features", in_features)
        if in_features % in_channels:
            raise UserError(f"conv1d: in_features={in_features} is not a multiple of "
                            f"in_channels={in_channels}; the signal is C channels of length F/C")
        length = in_features // in_channels
    else:
        if in_features is not None:
            raise UserError("conv1d: in_features is for flat features; image input is read as "
                            "in_channels channels of length H*W — drop in_features")
        length = image_size[0] * image_size[1]
    return SpikingConv1d(in_channels, length, tuple(scaled(c, width) for c in chans), k,
                         num_classes, neuron, pool=pool_kind("conv1d", pool),
                         hidden=tuple(scaled(h, width) for h in hidden), image_size=image_size,
                         in_features=in_features)
