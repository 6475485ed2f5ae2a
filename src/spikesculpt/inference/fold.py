"""Fold inference-mode BatchNorm into the layer before it: ``bn(W x + b) = W' x + b'``.

In eval mode a BatchNorm is a fixed affine map per channel, ``y = γ (z - μ) / √(σ² + ε) + β``
with the running mean μ and variance σ². With ``s = γ / √(σ² + ε)`` it folds into the
convolution or linear layer ``z = W x + b`` before it::

    W' = s · W   (row / output channel c scaled by s_c)      b' = s · (b - μ) + β

— the standard inference rewrite of conv-BN networks. A zero weight stays zero, so a sparse
layer keeps its mask, and a whole pass over the layer's output (the BatchNorm) disappears: on
the spiking VGGs that pass is as slow as a sparse convolution. The result equals the unfolded
model up to float32 rounding.

Folded: the (layer, norm) pairs of the model zoo's blocks (``ConvBNSpike``, ``Conv1dBNSpike``,
``LinearSpike`` with BatchNorm) and a layer directly followed by a BatchNorm in any
``nn.Sequential`` (e.g. SpikingJelly-style stacks). A norm without running statistics is left
as it is. The folded norm is replaced by ``nn.Identity``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from spikesculpt.models.layers import LinearSpike, _ConvNormSpike

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
BLOCKS = ((_ConvNormSpike, "conv", "bn"), (LinearSpike, "fc", "bn"))  # (block, layer, norm)


def _foldable(layer: nn.Module, norm: nn.Module) -> bool:
    return (isinstance(layer, LAYERS) and isinstance(norm, _BatchNorm)
            and norm.running_mean is not None and norm.running_var is not None
            and norm.num_features == layer.weight.shape[0])


@torch.no_grad()
def fold_into(layer: nn.Module, norm: _BatchNorm) -> None:
    """Fold eval-mode ``norm`` into ``layer`` (in place): ``layer(x)`` becomes
    ``norm(layer(x))``."""
    scale = torch.rsqrt(norm.running_var.float() + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.float()
    shift = -norm.running_mean.float() * scale
    if norm.bias is not None:
        shift = shift + norm.bias.float()
    w = layer.weight
    layer.weight.copy_((w.float() * scale.view(-1, *([1] * (w.dim() - 1)))).to(w.dtype))
    if layer.bias is None:
        layer.bias = nn.Parameter(shift.to(w.dtype), requires_grad=False)
    else:
        layer.bias.copy_((layer.bias.float() * scale + shift).to(w.dtype))


def fold_batchnorm(model: nn.Module) -> dict[str, str]:
    """Fold every foldable BatchNorm of ``model`` (in place; call it on an eval-mode copy);
    returns ``{layer name: name of the norm folded into it}``."""
    folded = {}
    for name, module in list(model.named_modules()):
        prefix = f"{name}." if name else ""
        for block, layer_name, norm_name in BLOCKS:
            if isinstance(module, block):
                layer, norm = getattr(module, layer_name), getattr(module, norm_name)
                if norm is not None and _foldable(layer, norm):
                    fold_into(layer, norm)
                    setattr(module, norm_name, nn.Identity())
                    folded[prefix + layer_name] = prefix + norm_name
        if isinstance(module, nn.Sequential):
            keys = list(module._modules)
            for a, b in zip(keys, keys[1:]):
                layer, norm = module._modules[a], module._modules[b]
                if _foldable(layer, norm):
                    fold_into(layer, norm)
                    module._modules[b] = nn.Identity()
                    folded[prefix + a] = prefix + b
    return folded
