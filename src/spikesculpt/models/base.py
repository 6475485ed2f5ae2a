"""Base class of the registered models: the input check and the readout convention."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.models.layers import LinearSpike


class SpikingModel(nn.Module):
    """A time-major spiking classifier: ``[T, B, C, H, W]`` or ``[T, B, F]`` -> ``[T, B, classes]``.

    Subclasses set ``self.readout`` (the last, non-spiking ``nn.Linear``) and call
    :meth:`check_input` first in ``forward``; it turns a wrong layout (a missing time axis, the
    wrong channel count, or — for models whose classifier is sized from ``image_size`` — another
    image size) into a one-line ``UserError`` instead of a matrix-shape error deep inside.
    """

    readout: nn.Linear

    def __init__(self, name: str, in_channels: Optional[int], image_size: Optional[tuple],
                 num_classes: int, fixed_size: bool = True, in_features: Optional[int] = None):
        super().__init__()
        self.model_name = name
        self.in_channels = in_channels
        self.image_size = None if image_size is None else tuple(image_size)
        self.num_classes = num_classes
        self.fixed_size = fixed_size
        self.in_features = in_features

    def reset_parameters(self) -> None:
        """Re-draw every parameter as at construction (from the global RNG; seed it first).

        Resets each submodule that has ``reset_parameters`` (PyTorch defaults), then applies the
        model's own initialisation (:meth:`init_weights`). Use this — not the submodules'
        ``reset_parameters`` — for random re-initialisation controls.
        """
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self.init_weights()

    def init_weights(self) -> None:
        """Our initialisation on top of PyTorch's defaults; subclasses call it last in ``__init__``.

        Hidden ``LinearSpike`` layers without BatchNorm get Kaiming-uniform weights (fan-in, ReLU
        gain: uniform +-sqrt(6/fan_in)) and zero biases. With no BatchNorm to rescale them,
        PyTorch's default Linear init (uniform +-1/sqrt(fan_in), six times less variance) gives
        currents far below the firing threshold: the layer is silent at initialisation and only
        training wakes it up. Measured on digits (mlp 256-256, T=4, Adam 1e-3, 2 epochs, 3
        seeds): 47% test accuracy with this init, 10% (chance) with PyTorch's. Conv layers keep
        PyTorch's default (BatchNorm follows them), and so does the readout. Our choice; the
        papers' code uses PyTorch's defaults.
        """

        for module in self.modules():
            if isinstance(module, LinearSpike) and module.bn is None:
                nn.init.kaiming_uniform_(module.fc.weight, nonlinearity="relu")
                if module.fc.bias is not None:
                    nn.init.zeros_(module.fc.bias)

    def check_input(self, x: torch.Tensor) -> None:
        if self.in_features is not None:  # flat-feature models (mlp)
            if x.dim() < 3 or math.prod(x.shape[2:]) != self.in_features:
                raise UserError(
                    f"{self.model_name} expects time-major input [T, B, {self._layout()}] with "
                    f"{self.in_features} features per sample; got shape {list(x.shape)}; encode "
                    f"static samples with spikesculpt.encoding.encode(x, timesteps)")
            return
        c = self.in_channels
        h, w = self.image_size
        if x.dim() != 5:
            raise UserError(f"{self.model_name} expects time-major input [T, B, {c}, H, W]; got "
                            f"shape {list(x.shape)}; encode static images with "
                            f"spikesculpt.encoding.encode(x, timesteps)")
        if x.shape[2] != c:
            raise UserError(f"{self.model_name} was built for {c} input channel(s), got "
                            f"{x.shape[2]} (shape {list(x.shape)}); build it with "
                            f"in_channels={x.shape[2]}")
        if self.fixed_size and tuple(x.shape[3:]) != (h, w):
            raise UserError(f"{self.model_name} was built for {h}x{w} images, got "
                            f"{x.shape[3]}x{x.shape[4]}; build it with image_size="
                            f"({x.shape[3]}, {x.shape[4]}), or with head_pool=1 to accept any size")

    def _layout(self) -> str:
        if self.image_size is None:
            return "F"
        return f"{self.in_channels}, {self.image_size[0]}, {self.image_size[1]}"
