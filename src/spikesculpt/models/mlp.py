"""Fully connected SNN."""

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
    scaled,
)
from spikesculpt.models.layers import LinearSpike, NeuronFactory


class SpikingMLP(SpikingModel):
    """flatten -> [Linear -> neuron] per hidden layer -> Linear readout.

    Shapes (digits, 1x8x8, hidden=(256, 256)):
        x        [T, B, 1, 8, 8]  (or [T, B, F])
        flatten  [T, B, 64]
        hidden.0 [T, B, 256]  spikes
        hidden.1 [T, B, 256]  spikes
        readout  [T, B, 10]   logits per time step
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_classes: int,
                 neuron: NeuronFactory, bias: bool = True, in_channels: Optional[int] = None,
                 image_size: Optional[tuple] = None, batch_norm: bool = False):
        super().__init__("mlp", in_channels, image_size, num_classes, in_features=in_features)
        sizes = (in_features, *hidden)
        self.hidden = nn.Sequential(*[LinearSpike(a, b, neuron, bias=bias, batch_norm=batch_norm)
                                      for a, b in zip(sizes[:-1], sizes[1:])])
        self.readout = nn.Linear(sizes[-1], num_classes)
        self.init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = x.flatten(2)               # [T, B, F]
        x = self.hidden(x)             # [T, B, hidden[-1]] spikes
        return self.readout(x)         # [T, B, classes]


@register_model("mlp")
def mlp(*, in_channels: int, image_size, num_classes: int, neuron: NeuronFactory,
        hidden: Any = (256, 256), width: float = 1.0, in_features: Optional[int] = None,
        bias: bool = True, batch_norm: bool = False) -> SpikingMLP:
    """Fully connected SNN: flatten -> (Linear -> LIF) x len(hidden) -> linear readout.

    The generic baseline of the SNN pruning literature (e.g. the MLPs of STBP, Wu et al. 2018,
    and of the MNIST experiments of Deep R / Grad R). Image input ``[T, B, C, H, W]`` is flattened
    (``in_features = C*H*W``); flat features ``[T, B, F]`` need ``image_size=None`` and
    ``in_features=F``. ``hidden`` sizes are multiplied by ``width``. ``batch_norm=True`` puts a
    BatchNorm1d over the T·B rows between every hidden Linear and its neuron (no Linear bias
    then), which keeps the neurons' input scale when most weights are pruned (lottery tickets at
    high sparsity).
    """
    hidden = int_tuple("mlp: hidden", hidden)
    width = positive_float("mlp: width", width)
    hidden = tuple(scaled(h, width) for h in hidden)
    if image_size is None:
        if in_features is None:
            raise UserError("mlp on flat features needs in_features (the feature count); pass "
                            "in_features=F or give image_size for image input")
        in_features = positive_int("mlp: in_features", in_features)
    else:
        expected = in_channels * image_size[0] * image_size[1]
        if in_features is not None and in_features != expected:
            raise UserError(f"mlp: in_features={in_features!r} contradicts in_channels x "
                            f"image_size = {expected}; drop in_features or fix image_size")
        in_features = expected
    return SpikingMLP(in_features, hidden, num_classes, neuron, bias=bool(bias),
                      in_channels=in_channels, image_size=image_size,
                      batch_norm=bool(batch_norm))
