"""Convert a model's conv / linear layers into gene-encoded layers, and count what that saves.

    from spikesculpt.methods.genetic import genetic_encode, parameter_report
    model = genetic_encode(create_model("mlp"), gene_dim=16)     # in place; returns the model
    parameter_report(model)["compression"]                         # 0.80 = 80% fewer parameters

Which layers: every ``nn.Linear`` and every ``nn.Conv2d`` with ``groups=1`` and zero padding mode
(the registered models hold nothing else), in registration order — for the registered models the
forward order, first layer first, readout last (the order ``prunable_parameters`` uses).
``keep_first`` / ``keep_last`` leave the first / last connection layer plain (the input layer and
the readout are the usual exceptions in compression work; the papers encode every layer, so the
default is to encode all). Biases are kept as plain parameters with their values.

The shared interaction ``O`` is registered once, on the model root, as ``gene_interaction.weight``
(one parameter, one state-dict key); every encoded layer holds a reference to it.

Parameter accounting (design notes §3.3):
``params_total = Σ_encoded g·(N_in + N_out) + g² + everything else`` (biases, norms, plain layers,
neuron parameters), ``params_plain`` = the same architecture with ordinary weights
(``Σ_encoded N_in·N_out`` in place of the genes and O), ``compression = 1 − params_total /
params_plain`` (0.8 = 80% fewer parameters; negative when the encoding is larger).
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.methods.genetic.layers import (
    INIT_STD,
    GeneConv2d,
    GeneInteraction,
    GeneLinear,
    gene_layers,
)
from spikesculpt.models.utils import PRUNABLE_TYPES, count_parameters

ROOT_NAME = "gene_interaction"


class GeneDimWarning(UserWarning):
    """The gene dimension is so large that the encoded network is not smaller than the plain one."""


def _encodable(module: nn.Module) -> bool:
    if type(module) is nn.Linear:
        return True
    return (type(module) is nn.Conv2d and module.groups == 1
            and module.padding_mode == "zeros")


def connection_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(name, module)]`` of every conv / linear layer, registration order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)]


def encodable_layers(model: nn.Module, keep_first: bool = False,
                     keep_last: bool = False) -> list[tuple[str, nn.Module]]:
    """The layers :func:`genetic_encode` would replace (after the keep options)."""
    layers = connection_layers(model)
    skip = set()
    if keep_first and layers:
        skip.add(layers[0][0])
    if keep_last and layers:
        skip.add(layers[-1][0])
    return [(n, m) for n, m in layers if n not in skip and _encodable(m)]


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _encoded_from(module: nn.Module, interaction: GeneInteraction,
                  generator: Optional[torch.Generator], init_std: float) -> nn.Module:
    has_bias = module.bias is not None
    if isinstance(module, nn.Linear):
        new = GeneLinear(module.in_features, module.out_features, interaction, bias=has_bias,
                         generator=generator, init_std=init_std)
    else:
        new = GeneConv2d(module.in_channels, module.out_channels, module.kernel_size, interaction,
                         stride=module.stride, padding=module.padding, dilation=module.dilation,
                         bias=has_bias, generator=generator, init_std=init_std)
    if has_bias:
        with torch.no_grad():
            new.bias.copy_(module.bias)
    return new.to(device=module.weight.device, dtype=module.weight.dtype)


def genetic_encode(model: nn.Module, gene_dim: int, keep_first: bool = False,
                   keep_last: bool = False, generator: Optional[torch.Generator] = None,
                   warn: bool = True, init_std: float = INIT_STD,
                   interaction_init: str = "random") -> nn.Module:
    """Replace the conv / linear layers of ``model`` (in place) by gene-encoded layers.

    Args:
        gene_dim: g, the length of every gene vector (O is g × g).
        keep_first, keep_last: leave the first / last connection layer plain.
        generator: seeds O and the encodings (``torch.Generator``; None = the global RNG).
        warn: warn (``GeneDimWarning``) when the encoded model is not smaller than the plain one.
        init_std: std of the initial encodings (and of O under the random init).
        interaction_init: ``"random"`` (O ~ N(0, init_std²)) or ``"identity"`` (O = init_std·I:
            the network starts as a rank-g low-rank one); see :class:`GeneInteraction`.

    Returns the same ``model`` object with ``model.gene_interaction`` (the shared O) added.
    Raises ``UserError`` for a bad gene dimension, an already encoded model, or a model with no
    layer left to encode.
    """
    if isinstance(gene_dim, bool) or not isinstance(gene_dim, int) or gene_dim <= 0:
        raise UserError(f"gene dimension must be a positive integer, got {gene_dim!r}; pass "
                        f"e.g. --gene-dim 16")
    if gene_layers(model) or hasattr(model, ROOT_NAME):
        raise UserError("this model is already gene-encoded; encode the plain model once")
    targets = encodable_layers(model, keep_first, keep_last)
    if not targets:
        n = len(connection_layers(model))
        kept = " (--keep-first / --keep-last leave nothing; drop one)" \
            if n and (keep_first or keep_last) else ""
        raise UserError(f"method 'genetic' found no layer to encode in this model: it needs "
                        f"nn.Linear or nn.Conv2d (groups=1) layers, it has {n} connection "
                        f"layer(s){kept}")
    ref = targets[0][1].weight
    interaction = GeneInteraction(gene_dim, generator, init_std, init=interaction_init)
    interaction = interaction.to(device=ref.device, dtype=ref.dtype)
    model.add_module(ROOT_NAME, interaction)
    for name, module in targets:
        set_submodule(model, name, _encoded_from(module, interaction, generator, init_std))
    if warn:
        report = parameter_report(model)
        if report["compression"] <= 0:
            warnings.warn(
                f"gene dimension {gene_dim} saves nothing: the encoded network has "
                f"{report['params_total']} parameters, the plain one {report['params_plain']}; "
                f"choose a gene dimension below {report['break_even_gene_dim'] + 1}",
                GeneDimWarning, stacklevel=2)
    return model


def break_even_gene_dim(shapes: list[tuple[int, int]]) -> int:
    """Largest g with Σ g(N_in + N_out) + g² < Σ N_in·N_out (0 if none)."""
    s = sum(a + b for a, b in shapes)
    p = sum(a * b for a, b in shapes)
    g = int((-s + math.sqrt(s * s + 4 * p)) / 2)  # positive root of g² + s·g − p = 0
    while g > 0 and g * s + g * g >= p:
        g -= 1
    while (g + 1) * s + (g + 1) ** 2 < p:
        g += 1
    return g


def parameter_report(model: nn.Module) -> dict:
    """Parameter counts of a gene-encoded model against the same architecture with plain weights.

    Returns ``params_total`` (trainable and frozen parameters of the encoded model, shared ones
    once), ``params_plain``, ``compression``, ``gene_dim``, ``params_interaction`` (g²),
    ``params_encodings`` (Σ g(N_in + N_out)), ``break_even_gene_dim`` (the largest g that still
    saves parameters for these layers), ``generation_macs`` (multiply-accumulates to generate all
    encoded weights once) and ``encoded_layers``: ``[{"name", "kind", "weight_shape",
    "params_encoded", "params_plain"}]``.
    """
    layers = gene_layers(model)
    total = count_parameters(model)
    if not layers:
        return {"params_total": total, "params_plain": total, "compression": 0.0,
                "gene_dim": None, "params_interaction": 0, "params_encodings": 0,
                "break_even_gene_dim": 0, "generation_macs": 0, "encoded_layers": []}
    g = layers[0][1].gene_dim
    enc = sum(m.encoding_parameters() for _, m in layers)
    plain_w = sum(m.plain_weight_parameters() for _, m in layers)
    plain = total - enc - g * g + plain_w
    return {
        "params_total": total, "params_plain": plain, "compression": 1.0 - total / plain,
        "gene_dim": g, "params_interaction": g * g, "params_encodings": enc,
        "break_even_gene_dim": break_even_gene_dim(
            [(m.x_in.shape[0], m.x_out.shape[0]) for _, m in layers]),
        "generation_macs": sum(m.generation_macs() for _, m in layers),
        "encoded_layers": [{"name": n, "kind": type(m).__name__,
                            "weight_shape": list(m.weight_shape),
                            "params_encoded": m.encoding_parameters(),
                            "params_plain": m.plain_weight_parameters()} for n, m in layers],
    }
