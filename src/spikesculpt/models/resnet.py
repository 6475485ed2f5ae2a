"""Spiking ResNet-19 (Zheng et al., AAAI 2021, tdBN)."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.models.base import SpikingModel
from spikesculpt.models.factory import (
    int_tuple,
    positive_float,
    positive_int,
    register_model,
    require_image,
    scaled,
)
from spikesculpt.models.layers import (
    ConvBNSpike,
    LinearSpike,
    NeuronFactory,
    TimeDistributed,
    seq_apply,
)


class SpikingBasicBlock(nn.Module):
    """conv3x3-BN-neuron -> conv3x3-BN, plus the shortcut, -> neuron (spike after the sum).

    ``[T, B, C_in, H, W] -> [T, B, C_out, H/stride, W/stride]``. The shortcut is the identity, or
    conv1x1(stride)-BN when the shape changes (tdBN / TET). Parameters: ``conv1.conv.weight``,
    ``conv2.weight``, ``shortcut.0.weight`` (if any), and the BatchNorms.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, neuron: NeuronFactory):
        super().__init__()
        self.conv1 = ConvBNSpike(in_channels, out_channels, neuron, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = TimeDistributed(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()
        self.spike = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)                                       # [T, B, C_out, H', W'] spikes
        y = seq_apply(lambda z: self.bn2(self.conv2(z)), y)     # [T, B, C_out, H', W'] current
        return self.spike(y + self.shortcut(x))                 # [T, B, C_out, H', W'] spikes


class SpikingResNet(SpikingModel):
    """stem conv -> stages of basic blocks -> global avg pool -> [FC -> neuron] -> readout."""

    def __init__(self, name: str, in_channels: int, image_size: tuple[int, int],
                 num_classes: int, neuron: NeuronFactory, *, stem: int,
                 stages: tuple[int, ...], blocks: tuple[int, ...], fc: Optional[int]):
        super().__init__(name, in_channels, image_size, num_classes, fixed_size=False)
        self.stem = ConvBNSpike(in_channels, stem, neuron)
        layers = []
        c = stem
        for i, (width, n) in enumerate(zip(stages, blocks)):
            stride = 1 if i == 0 else 2
            stage = []
            for j in range(n):
                stage.append(SpikingBasicBlock(c, width, stride if j == 0 else 1, neuron))
                c = width
            layers.append(nn.Sequential(*stage))
        self.layers = nn.Sequential(*layers)
        self.pool = TimeDistributed(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = LinearSpike(c, fc, neuron) if fc else None
        self.readout = nn.Linear(fc or c, num_classes)
        self.init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)            # [T, B, C, H, W]
        x = self.stem(x)               # [T, B, 128, H, W]
        x = self.layers(x)             # [T, B, 512, H/4, W/4]
        x = self.pool(x)               # [T, B, 512]  firing rates (global average)
        if self.fc is not None:
            x = self.fc(x)             # [T, B, 256] spikes
        return self.readout(x)         # [T, B, classes]


@register_model("resnet19")
def resnet19(*, in_channels: int, image_size, num_classes: int, neuron: NeuronFactory,
             width: float = 1.0, blocks: Any = (3, 3, 2), fc: Optional[int] = 256) -> SpikingResNet:
    """Spiking ResNet-19 (Zheng et al., AAAI 2021, tdBN): 17 conv3x3 + FC 256 + readout.

    Also used by TET (Deng et al. 2022) and the SNN lottery tickets of Kim et al. (2022).

    Shapes for CIFAR-10 (3x32x32):
        x                    [T, B, 3, 32, 32]
        stem conv3x3-BN-LIF  [T, B, 128, 32, 32]
        layers.0: 3 blocks   [T, B, 128, 32, 32]
        layers.1: 3 blocks   [T, B, 256, 16, 16]   first block stride 2, conv1x1 shortcut
        layers.2: 2 blocks   [T, B, 512, 8, 8]
        pool (global avg)    [T, B, 512]
        fc Linear-LIF        [T, B, 256]
        readout              [T, B, 10]
    As in the paper (and TET's code): basic blocks conv-BN-LIF-conv-BN, shortcut added before the
    second LIF, average pool, FC 256 with LIF, then the classifier. ``fc=None`` (or 0) reads out
    straight from the pooled features. Our choices: plain BatchNorm over the T*B rows (tdBN also
    scales by the threshold, alpha*V_th), PyTorch default initialisation except the FC 256
    (Kaiming-uniform, see ``SpikingModel.init_weights``).
    """
    image_size = require_image("resnet19", image_size)
    width = positive_float("resnet19: width", width)
    blocks = int_tuple("resnet19: blocks", blocks)
    if len(blocks) != 3:
        raise UserError(f"resnet19: blocks must list 3 stage depths, got {list(blocks)}; "
                        f"e.g. blocks=[3,3,2]")
    if fc is not None and fc != 0:
        fc = scaled(positive_int("resnet19: fc", fc), width)
    return SpikingResNet("resnet19", in_channels, image_size, num_classes, neuron,
                         stem=scaled(128, width),
                         stages=tuple(scaled(c, width) for c in (128, 256, 512)),
                         blocks=blocks, fc=fc or None)
