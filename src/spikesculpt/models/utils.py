"""Which parameters are connections, which modules spike.

``prunable_parameters`` is the single definition of "the weights" used by density, masks,
SynOps and every pruning method (design notes, section 2): the ``weight`` of every
``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Conv3d`` / ``nn.Linear`` (subclasses included) — not biases,
not norm layers, not neuron parameters such as PLIF's tau. The first and the last (readout) layer
are included; a method that spares them filters the list. Names are the keys of
``model.named_parameters()`` / ``model.state_dict()``, and the order is registration order, which
for the registered models is the forward order (first layer first, readout last).
"""

from __future__ import annotations

from torch import nn

from spikesculpt.neurons import SpikingNeuron

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``[(name, weight)]`` of the connection layers, in ``named_parameters`` order.

    A weight shared by several modules is listed once, under the name ``named_parameters``
    gives it. Frozen weights (``requires_grad=False``) are listed too: they are still connections.
    """
    wanted = {id(m.weight) for m in model.modules()
              if isinstance(m, PRUNABLE_TYPES) and isinstance(m.weight, nn.Parameter)}
    return [(name, p) for name, p in model.named_parameters() if id(p) in wanted]


def spiking_modules(model: nn.Module) -> list[tuple[str, SpikingNeuron]]:
    """``[(name, module)]`` of the spiking neurons (``SpikingNeuron`` instances), forward order.

    A neuron nested inside another neuron is not listed separately.
    """
    found: list[tuple[str, SpikingNeuron]] = []
    for name, module in model.named_modules():
        if isinstance(module, SpikingNeuron) \
                and not any(name.startswith(f"{outer}." if outer else "") for outer, _ in found):
            found.append((name, module))
    return found


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
