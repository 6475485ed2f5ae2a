"""Plain conv stacks: VGGSNN (CIFAR10-DVS), spiking VGG-9 / VGG-16, and 6Conv2FC (Grad R).

All are built by :class:`SpikingVGG` from a layer list: an int is a 3x3 conv block
(conv -> BatchNorm -> neuron, see :class:`~spikesculpt.models.layers.ConvBNSpike`), ``"P"`` a
2x2 pooling (stride 2, ceil mode: even sizes halve exactly, a 1x1 map passes unchanged, so
every model also runs on small inputs). After the features come optional hidden FC layers
(Linear -> neuron) and the linear readout.

Our choices, common to the family: convolutions have no bias (BatchNorm follows); BatchNorm
statistics are taken over all T*B rows (SpikingJelly / tdBN multi-step convention); the readout
is a plain ``nn.Linear`` giving logits at every time step (the loss averages over T or uses TET);
PyTorch default initialisation, except hidden FCs without BatchNorm (``SpikingModel.init_weights``).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

from spikesculpt.models.base import SpikingModel
from spikesculpt.models.factory import (
    dropout_arg,
    head_pool_arg,
    int_tuple,
    pool_kind,
    positive_float,
    register_model,
    require_image,
    scaled,
)
from spikesculpt.models.layers import (
    ConvBNSpike,
    LinearSpike,
    NeuronFactory,
    SeqDropout,
    TimeDistributed,
    pool2d,
    pooled,
)

Cfg = Sequence[Union[int, str]]


class SpikingVGG(SpikingModel):
    """features (convs, pools) -> [head pool] -> flatten -> [dropout] -> hidden FCs -> readout.

    ``head_pool=None`` flattens the last feature map as it is (its size follows ``image_size``,
    so the model only accepts that size); ``head_pool=k`` first average-pools it to k x k, which
    fixes the classifier size and lets the model take any input size.
    """

    def __init__(self, name: str, cfg: Cfg, in_channels: int, image_size: tuple[int, int],
                 num_classes: int, neuron: NeuronFactory, *, pool: str = "avg",
                 fc: Sequence[int] = (), fc_batch_norm: bool = False, fc_bias: bool = True,
                 dropout: float = 0.0, head_pool: Optional[int] = None):
        super().__init__(name, in_channels, image_size, num_classes,
                         fixed_size=head_pool is None)
        layers: list[nn.Module] = []
        c, (h, w) = in_channels, image_size
        self.feature_shapes = []  # (C, H, W) after each feature layer, for summaries and tests
        for v in cfg:
            if v == "P":
                layers.append(pool2d(pool))
                h, w = pooled(h), pooled(w)
            else:
                layers.append(ConvBNSpike(c, int(v), neuron))
                c = int(v)
            self.feature_shapes.append((c, h, w))
        self.features = nn.Sequential(*layers)
        if head_pool is not None:
            self.head_pool = TimeDistributed(nn.AdaptiveAvgPool2d(head_pool))
            h = w = head_pool
        else:
            self.head_pool = None
        self.dropout = SeqDropout(dropout) if dropout > 0 else None
        sizes = (c * h * w, *fc)
        self.classifier = nn.Sequential(*[
            LinearSpike(a, b, neuron, bias=fc_bias, batch_norm=fc_batch_norm)
            for a, b in zip(sizes[:-1], sizes[1:])])
        self.readout = nn.Linear(sizes[-1], num_classes)
        self.init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)                # [T, B, C, H, W]
        x = self.features(x)               # [T, B, C', H', W'] spikes
        if self.head_pool is not None:
            x = self.head_pool(x)          # [T, B, C', k, k]
        x = x.flatten(2)                   # [T, B, C'*H'*W']
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.classifier(x)             # [T, B, fc[-1]] spikes (identity if no hidden FC)
        return self.readout(x)             # [T, B, classes]


def _scale_cfg(cfg: Cfg, width: float) -> list:
    return [v if v == "P" else scaled(int(v), width) for v in cfg]


def _build(name: str, cfg: Cfg, *, in_channels, image_size, num_classes, neuron, width,
           pool, head_pool, fc=(), fc_batch_norm=False, fc_bias=True, dropout=0.0):
    image_size = require_image(name, image_size)
    width = positive_float(f"{name}: width", width)
    return SpikingVGG(name, _scale_cfg(cfg, width), in_channels, image_size, num_classes, neuron,
                      pool=pool_kind(name, pool), head_pool=head_pool_arg(name, head_pool),
                      fc=[scaled(f, width) for f in fc], fc_batch_norm=fc_batch_norm,
                      fc_bias=fc_bias, dropout=dropout_arg(name, dropout))


VGGSNN_CFG = [64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"]
VGG9_CFG = [64, 64, "P", 128, 128, "P", 256, 256, 256, "P"]
VGG16_CFG = [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P",
             512, 512, 512, "P"]
SIX_CONV_CFG = [256, 256, 256, "P", 256, 256, 256, "P"]


@register_model("vggsnn")
def vggsnn(*, in_channels: int, image_size, num_classes: int, neuron: NeuronFactory,
           width: float = 1.0, pool: str = "avg", head_pool: Optional[int] = None) -> SpikingVGG:
    """VGGSNN, the CIFAR10-DVS model of TET (Deng et al., ICLR 2022): 8 conv3x3 + linear readout.

    The CIFAR10-DVS workhorse of later SNN pruning work (e.g. Shi et al. 2024, the ESL
    comparisons). 8 conv3x3-BN-LIF, avg pooling, one linear classifier on the flattened map.

    Shapes for CIFAR10-DVS frames (2x48x48):
        x            [T, B, 2, 48, 48]
        64, 128, P   [T, B, 128, 24, 24]
        256, 256, P  [T, B, 256, 12, 12]
        512, 512, P  [T, B, 512, 6, 6]
        512, 512, P  [T, B, 512, 3, 3]
        flatten      [T, B, 4608]
        readout      [T, B, 10]
    As in the paper the classifier is sized by the input (512*(H/16)*(W/16)); ``head_pool=k``
    pools to k x k first. Our choices: conv without bias (TET's has one; BN makes it redundant).
    """
    return _build("vggsnn", VGGSNN_CFG, in_channels=in_channels, image_size=image_size,
                  num_classes=num_classes, neuron=neuron, width=width, pool=pool,
                  head_pool=head_pool)


@register_model("vgg9")
def vgg9(*, in_channels: int, image_size, num_classes: int, neuron: NeuronFactory,
         width: float = 1.0, pool: str = "avg", head_pool: Optional[int] = None,
         fc: Any = 1024) -> SpikingVGG:
    """Spiking VGG-9 (BNTT, Kim & Panda, Front. Neurosci. 2021): 7 conv3x3 + FC 1024 + readout.

    Shapes for CIFAR-10 (3x32x32):
        x                 [T, B, 3, 32, 32]
        64, 64, P         [T, B, 64, 16, 16]
        128, 128, P       [T, B, 128, 8, 8]
        256, 256, 256, P  [T, B, 256, 4, 4]
        flatten           [T, B, 4096]
        classifier.0      [T, B, 1024]  Linear -> BN -> LIF
        readout           [T, B, 10]
    Avg pooling and a BatchNorm on the hidden FC as in BNTT (our BN is shared over time steps,
    BNTT keeps one per step). ``fc`` sets the hidden FC size(s).
    """
    return _build("vgg9", VGG9_CFG, in_channels=in_channels, image_size=image_size,
                  num_classes=num_classes, neuron=neuron, width=width, pool=pool,
                  head_pool=head_pool, fc=int_tuple("vgg9: fc", fc, allow_empty=True),
                  fc_batch_norm=True, fc_bias=False)


@register_model("vgg16")
def vgg16(*, in_channels: int, image_size, num_classes: int, neuron: NeuronFactory,
          width: float = 1.0, pool: str = "avg", head_pool: Optional[int] = 1) -> SpikingVGG:
    """Spiking VGG-16 (Kim et al., ECCV 2022, SNN lottery tickets): 13 conv3x3 + linear readout.

    Shapes for CIFAR-10 (3x32x32):
        x                 [T, B, 3, 32, 32]
        64, 64, P         [T, B, 64, 16, 16]
        128, 128, P       [T, B, 128, 8, 8]
        256 x3, P         [T, B, 256, 4, 4]
        512 x3, P         [T, B, 512, 2, 2]
        512 x3, P         [T, B, 512, 1, 1]
        head_pool (1x1)   [T, B, 512]
        readout           [T, B, 10]
    As in Kim et al. the classifier is one Linear(512, classes) (VGG configuration "D" with BN).
    Our choices: avg pooling (theirs is max: ``pool="max"``), and the final map is average-pooled
    to 1x1 (``head_pool=1``) so that any input size works; on 32x32 this changes nothing.
    """
    return _build("vgg16", VGG16_CFG, in_channels=in_channels, image_size=image_size,
                  num_classes=num_classes, neuron=neuron, width=width, pool=pool,
                  head_pool=head_pool)


@register_model("6conv2fc")
def six_conv_two_fc(*, in_channels: int, image_size, num_classes: int, neuron: NeuronFactory,
                    width: float = 1.0, pool: str = "max", head_pool: Optional[int] = None,
                    fc: Any = 2048, dropout: float = 0.5) -> SpikingVGG:
    """6Conv2FC, the CIFAR-10 model of Grad R (Chen et al., ICLR 2021): 6 conv3x3 + 2 FC.

    Also the 6Conv2FC baseline of later SNN pruning papers (UPR and others).

    Shapes for CIFAR-10 (3x32x32):
        x                 [T, B, 3, 32, 32]
        256 x3, P         [T, B, 256, 16, 16]   max pooling
        256 x3, P         [T, B, 256, 8, 8]
        flatten, dropout  [T, B, 16384]         dropout mask shared over time, p=0.5
        classifier.0      [T, B, 2048]          Linear (no bias) -> LIF
        readout           [T, B, 10]
    From the Grad R code: 256 channels, conv without bias + BN, max pooling, dropout 0.5 before
    FC1 (16384 -> 2048 = 128*4*4, no bias). Our choices: a plain linear readout to the classes
    (Grad R uses 100 LIF outputs averaged in groups of 10, "voting"); FC1 starts Kaiming-uniform
    (see ``SpikingModel.init_weights``) instead of PyTorch's default.
    """
    return _build("6conv2fc", SIX_CONV_CFG, in_channels=in_channels, image_size=image_size,
                  num_classes=num_classes, neuron=neuron, width=width, pool=pool,
                  head_pool=head_pool, fc=int_tuple("6conv2fc: fc", fc, allow_empty=True),
                  fc_bias=False, dropout=dropout)
