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
# normalisations: a layer whose output goes through one of these has its scale set by it
NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def prunable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``[(name, weight)]`` of the connection layers, in ``named_parameters`` order.

    A weight shared by several modules is listed once, under the name ``named_parameters``
    gives it. Frozen weights (``requires_grad=False``) are listed too: they are still connections.
    """
    wanted = {id(m.weight) for m in model.modules()
              if isinstance(m, PRUNABLE_TYPES) and isinstance(m.weight, nn.Parameter)}
    return [(name, p) for name, p in model.named_parameters() if id(p) in wanted]


def normalised_layers(model: nn.Module) -> set[str]:
    """Weight names of layers whose next leaf module (registration order) is a normalisation
    (``conv -> BN`` blocks, SpikingJelly's ``SeqToANNContainer(conv, BN)``): their output scale
    is normalised away, so the scale of their weights does not set how strongly they drive the
    next neurons."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    out = set()
    for (name, module), (_, nxt) in zip(leaves, leaves[1:]):
        weight = getattr(module, "weight", None)
        if isinstance(nxt, NORM_TYPES) and isinstance(weight, nn.Parameter):
            out.add(f"{name}.weight" if name else "weight")
    return out


def is_spiking_module(module: nn.Module) -> bool:
    """spikesculpt's ``SpikingNeuron``s, and — for models built from them — SpikingJelly's
    ``BaseNode`` and snnTorch's ``SpikingNeuron`` subclasses (recognised by class, without
    importing either package)."""
    if isinstance(module, SpikingNeuron):
        return True
    for cls in type(module).__mro__:
        mod = cls.__module__ or ""
        if (mod.startswith("spikingjelly") and cls.__name__ == "BaseNode") or \
                (mod.startswith("snntorch") and cls.__name__ == "SpikingNeuron"):
            return True
    return False


def spiking_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(name, module)]`` of the spiking neurons (``is_spiking_module``), forward order.

    A neuron nested inside another neuron is not listed separately.
    """
    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if is_spiking_module(module) \
                and not any(name.startswith(f"{outer}." if outer else "") for outer, _ in found):
            found.append((name, module))
    return found


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def stateful_modules(model: nn.Module) -> list[nn.Module]:
    """Modules that keep state between calls and must be reset before each new sample batch:
    SpikingJelly's ``MemoryModule``s (its neurons in either step mode). spikesculpt's own
    neurons are stateless (they start from rest at every call) and are not listed.
    Recognised by class, without importing SpikingJelly."""
    found = []
    for module in model.modules():
        for cls in type(module).__mro__:
            if cls.__name__ == "MemoryModule" and (cls.__module__ or "").startswith("spikingjelly"):
                found.append(module)
                break
    return found
