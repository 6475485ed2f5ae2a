"""A small convolutional SNN, fast on CPU."""

from __future__ import annotations

from typing import Any, Optional

from spikesculpt.models.factory import (
    head_pool_arg,
    int_tuple,
    pool_kind,
    positive_float,
    register_model,
    require_image,
    scaled,
)
from spikesculpt.models.layers import NeuronFactory
from spikesculpt.models.vgg import SpikingVGG


@register_model("conv")
def conv(*, in_channels: int, image_size, num_classes: int, neuron: NeuronFactory,
         channels: Any = (16, 32), width: float = 1.0, pool: str = "avg",
         head_pool: Optional[int] = None) -> SpikingVGG:
    """Small conv SNN: (conv3x3-BN-LIF, 2x2 avg pool) per entry of channels, linear readout.

    Our own CPU-sized baseline (the shape of the SpikingJelly / snnTorch tutorial CSNNs). Shapes
    for digits (1x8x8) with ``channels=(16, 32)``:
        x           [T, B, 1, 8, 8]
        16, P       [T, B, 16, 4, 4]
        32, P       [T, B, 32, 2, 2]
        flatten     [T, B, 128]
        readout     [T, B, 10]
    On 32x32 the flattened map is 32*8*8 = 2048; on 34x34 (N-MNIST) 32*9*9; ``head_pool=k``
    pools the last map to k x k first (any input size, fixed classifier size).
    """
    image_size = require_image("conv", image_size)
    chans = int_tuple("conv: channels", channels)
    width = positive_float("conv: width", width)
    cfg: list = []
    for c in chans:
        cfg += [scaled(c, width), "P"]
    return SpikingVGG("conv", cfg, in_channels, image_size, num_classes, neuron,
                      pool=pool_kind("conv", pool), head_pool=head_pool_arg("conv", head_pool))
