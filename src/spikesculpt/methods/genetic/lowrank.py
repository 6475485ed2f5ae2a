"""Plain low-rank layers, the parameter-matched baseline of genetic encoding (ours).

Every encoded layer of a network (the layers ``genetic_encode`` would encode: ``nn.Linear``,
``nn.Conv2d`` with groups = 1, after ``keep_first`` / ``keep_last``) becomes

    W_l = α_l · U_l V_lᵀ        U_l [N_out, r_l], V_l [N_in, r_l]   (Conv2d: N_in = C_in·k_h·k_w)

with no interaction shared between layers. It is the genetic layer with O fixed at the identity
I_r (a buffer, not trained, not saved), so it reuses that machinery whole: α_l set once so that W
starts with Kaiming's second moment, U and V drawn N(0, init_std²), the kernel unfolding of
Conv2d, the factorised training path ``x V (α I)ᵀ Uᵀ`` and the weight kept while evaluating.

Parameters: Σ_l r_l (N_in + N_out) (+ biases and everything not encoded). The ranks are matched
to the genetic encoding with gene dimension g on the same model, Σ_l g (N_in + N_out) + g²
(``lowrank_ranks``): every layer starts at r_l = g, which leaves g² parameters short, then
one layer at a time gains a rank (+ N_in + N_out parameters) while that brings the total
closer to the genetic one, the layer that brings it closest first. E.g. the digits MLP
64-256-256-10 at g = 16: genetic 18,346 parameters; ranks 16, 16, 17 give 18,356.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from spikesculpt.methods.genetic.convert import encodable_layers, set_submodule
from spikesculpt.methods.genetic.layers import INIT_STD, GeneConv2d, GeneLinear, gene_layers
from spikesculpt.models.utils import count_parameters


class FixedIdentity(nn.Module):
    """The interaction of a low-rank layer: ``I_r`` as a buffer (not trained, not saved)."""

    def __init__(self, rank: int):
        super().__init__()
        self.gene_dim = int(rank)
        self.register_buffer("weight", torch.eye(rank), persistent=False)


class LowRankLinear(GeneLinear):
    """``nn.Linear`` with weight ``α · U Vᵀ`` (``x_out`` = U, ``x_in`` = V): ``[..., N_in] ->
    [..., N_out]``."""

    def __init__(self, in_features: int, out_features: int, rank: int, *, bias: bool = True,
                 generator: Optional[torch.Generator] = None, init_std: float = INIT_STD):
        identity = FixedIdentity(rank)
        super().__init__(in_features, out_features, identity, bias=bias, generator=generator,
                         init_std=init_std)
        self.identity = identity  # registered: moves with the layer (.to, .half)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.gene_dim}, bias={self.bias is not None}")


class LowRankConv2d(GeneConv2d):
    """``nn.Conv2d`` (groups=1) with kernel ``reshape(α · U Vᵀ)``, V [C_in·k_h·k_w, r]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, rank: int, *,
                 stride=1, padding=0, dilation=1, bias: bool = True,
                 generator: Optional[torch.Generator] = None, init_std: float = INIT_STD):
        identity = FixedIdentity(rank)
        super().__init__(in_channels, out_channels, kernel_size, identity, stride=stride,
                         padding=padding, dilation=dilation, bias=bias, generator=generator,
                         init_std=init_std)
        self.identity = identity

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, rank={self.gene_dim}, "
                f"bias={self.bias is not None}")


LOWRANK_LAYERS = (LowRankLinear, LowRankConv2d)


def _sides(module: nn.Module) -> tuple[int, int]:
    """(N_in, N_out) of a layer's unfolded weight ``[N_out, N_in]``."""
    weight = module.weight
    return weight[0].numel(), weight.shape[0]


def genetic_parameter_count(model: nn.Module, gene_dim: int, keep_first: bool = False,
                            keep_last: bool = False) -> int:
    """``params_total`` of ``model`` gene-encoded with ``gene_dim`` (as ``genetic_encode`` would
    make it), counted without encoding: plain count − encoded weights + Σ g(N_in + N_out) + g²."""
    layers = encodable_layers(model, keep_first, keep_last)
    weights = sum(m.weight.numel() for _, m in layers)
    genes = sum(gene_dim * sum(_sides(m)) for _, m in layers)
    return count_parameters(model) - weights + genes + gene_dim * gene_dim


def lowrank_ranks(model: nn.Module, gene_dim: int, keep_first: bool = False,
                  keep_last: bool = False) -> dict[str, int]:
    """``{layer name: rank}`` whose low-rank parameters match the genetic encoding with
    ``gene_dim`` (module doc): r = g everywhere, then single rank steps that reduce the gap."""
    layers = encodable_layers(model, keep_first, keep_last)
    sizes = {name: sum(_sides(m)) for name, m in layers}
    ranks = {name: gene_dim for name in sizes}
    short = gene_dim * gene_dim   # genetic minus low-rank parameters
    while sizes:
        name = min(sizes, key=lambda n: abs(short - sizes[n]))
        if abs(short - sizes[name]) >= abs(short):
            break
        ranks[name] += 1
        short -= sizes[name]
    return ranks


def lowrank_encode(model: nn.Module, ranks: dict[str, int],
                   generator: Optional[torch.Generator] = None,
                   init_std: float = INIT_STD) -> nn.Module:
    """Replace the layers named in ``ranks`` (in place) by low-rank layers of those ranks;
    biases keep their values. Returns ``model``."""
    for name, module in list(model.named_modules()):
        if name not in ranks:
            continue
        bias = module.bias is not None
        if isinstance(module, nn.Linear):
            new = LowRankLinear(module.in_features, module.out_features, ranks[name], bias=bias,
                                generator=generator, init_std=init_std)
        else:
            new = LowRankConv2d(module.in_channels, module.out_channels, module.kernel_size,
                                ranks[name], stride=module.stride, padding=module.padding,
                                dilation=module.dilation, bias=bias, generator=generator,
                                init_std=init_std)
        if bias:
            with torch.no_grad():
                new.bias.copy_(module.bias)
        set_submodule(model, name, new.to(device=module.weight.device,
                                          dtype=module.weight.dtype))
    return model


def lowrank_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(name, layer)]`` of the low-rank layers, forward order."""
    return [(n, m) for n, m in gene_layers(model) if isinstance(m, LOWRANK_LAYERS)]


def lowrank_report(model: nn.Module, gene_dim: int) -> dict:
    """The low-rank network's size: ``params_plain`` (same architecture, ordinary weights),
    ``compression`` (1 − params_total / params_plain), ``params_genetic`` (the genetic encoding
    it is matched to, gene dimension ``gene_dim``), ``ranks`` ``{layer: rank}``."""
    layers = lowrank_layers(model)
    total = count_parameters(model)
    factors = sum(m.encoding_parameters() for _, m in layers)
    plain = total - factors + sum(m.plain_weight_parameters() for _, m in layers)
    sides = sum(m.x_in.shape[0] + m.x_out.shape[0] for _, m in layers)
    genetic = total - factors + gene_dim * sides + gene_dim * gene_dim
    return {"params_plain": plain, "compression": 1.0 - total / plain,
            "params_genetic": genetic, "ranks": {n: m.gene_dim for n, m in layers}}
