"""P networks of one architecture run as one: the population axis merged into the batch axis.

``torch.func.vmap`` runs any model batched over stacked parameters, but spiking neurons then take
their per-time-step autograd path (the fused kernels do not support vmap), which on a CPU made a
vmapped population *slower* than training the candidates one after the other (benchmarks/README,
"Genetic encoding"). A population of networks built from the standard blocks can be batched
without vmap: the input of P candidates is laid out ``[T, P·B, ...]`` (row ``p·B + b``), every
parameter-free layer (neurons, pooling, flatten, dropout) works on it unchanged (neurons with
their fused kernels), and only the layers that own parameters are replaced by stacked versions
that apply candidate p's parameters to rows ``p·B … p·B + B − 1``:

- ``GeneLinear`` / ``nn.Linear``: batched matrix products with weights ``[P, N_out, N_in]`` (gene
  layers through their factors when cheaper, as in ``GeneLinear.forward``);
- ``GeneConv2d`` / ``nn.Conv2d``: one grouped convolution (``groups=P``) over ``[·, P·C, H, W]``;
- ``nn.Conv1d`` (``conv1d``): the same over ``[·, P·C, L]``;
- ``BatchNorm1d/2d``: one batch norm over ``P·C`` channels (statistics per candidate);
- the shared interaction O: one stacked ``[P, g, g]`` parameter used by every stacked gene layer.

A model holding any other parameter or buffer (e.g. PLIF's learnable time constant) is not
stackable (:class:`NotStackable`), and neither is a token model (``spikformer``, recognised by
its ``patch_keep`` attribute): its linear layers and batch norms see rows ``(t, p·b, token)``,
where candidate p's rows are not one contiguous block as the stacked layers assume;
``PopulationScorer`` then falls back to vmap (``vmapped.py``) or to one candidate at a time.

Parameters keep the names of the single model (``hidden.0.fc.x_in``, ``gene_interaction.weight``,
...) with a leading population axis, so candidate p's tensors are ``{name: t[p]}``. The
optimizers used here are element-wise, so stepping the stacked tensors is exactly stepping P
optimizers: ``train.PopulationTrainer`` trains it with the loss summed over the candidates. Stacked batch norms get the same warm start of their running statistics as
BatchNorm (``train/norm_stats.py``).
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from spikesculpt.methods.genetic.layers import GeneConv2d, GeneLinear, _pair


class NotStackable(Exception):
    """The model holds a layer the stacked population cannot batch."""


class _Layout:
    """Shared by the stacked layers of one population: P, and B of the current call."""

    def __init__(self, population: int):
        self.population = int(population)
        self.batch = 1


def _stack(tensors, grad: bool) -> torch.Tensor:
    out = torch.stack([t.detach() for t in tensors]).clone()
    return nn.Parameter(out) if grad else out


def _to_groups(x: torch.Tensor, layout: _Layout) -> tuple[torch.Tensor, int]:
    """``[n·P·B, C, ...]`` -> ``[n·B, P·C, ...]`` (candidates side by side in channels)."""
    p, b = layout.population, layout.batch
    n = x.shape[0] // (p * b)
    rest = x.shape[1:]
    y = x.reshape(n, p, b, *rest).transpose(1, 2).reshape(n * b, p * rest[0], *rest[1:])
    return y, n


def _from_groups(y: torch.Tensor, n: int, layout: _Layout) -> torch.Tensor:
    """Inverse of :func:`_to_groups`."""
    p, b = layout.population, layout.batch
    c = y.shape[1] // p
    rest = y.shape[2:]
    return y.reshape(n, b, p, c, *rest).transpose(1, 2).reshape(n * p * b, c, *rest)


class _StackedLinear(nn.Module):
    def __init__(self, layers: list[nn.Module], layout: _Layout, interaction=None):
        super().__init__()
        self.layout = layout
        first = layers[0]
        self.in_features, self.out_features = first.in_features, first.out_features
        self.gene = isinstance(first, GeneLinear)
        if self.gene:
            object.__setattr__(self, "_interaction", interaction)
            self.gene_dim = first.gene_dim
            self.x_in = _stack([m.x_in for m in layers], True)       # [P, N_in, g]
            self.x_out = _stack([m.x_out for m in layers], True)     # [P, N_out, g]
            self.register_buffer("alpha", _stack([m.alpha for m in layers], False))
        else:
            self.weight = _stack([m.weight for m in layers], True)   # [P, N_out, N_in]
        self.bias = _stack([m.bias for m in layers], True) if first.bias is not None else None

    def _weight(self) -> torch.Tensor:
        o = self._interaction.weight                                  # [P, g, g]
        return self.alpha[:, None, None] * (self.x_out @ o @ self.x_in.transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, b = self.layout.population, self.layout.batch
        lead = x.shape[:-1]
        # [n, P, B, N_in] is a view of the [..., P·B, N_in] input; matmul broadcasts the
        # [P, ...] weights over n (no copy of the activations)
        xr = x.reshape(-1, p, b, self.in_features)
        rows = xr.shape[0] * b
        if self.gene:
            g = self.gene_dim
            factor = rows * (self.in_features * g + g * g + g * self.out_features)
            plain = self.out_features * g * (g + self.in_features) \
                + rows * self.in_features * self.out_features
            if torch.is_grad_enabled() and factor < plain:
                o = self.alpha[:, None, None] * self._interaction.weight
                y = ((xr @ self.x_in) @ o.transpose(1, 2)) @ self.x_out.transpose(1, 2)
            else:
                y = xr @ self._weight().transpose(1, 2)
        else:
            y = xr @ self.weight.transpose(1, 2)                      # [n, P, B, N_out]
        if self.bias is not None:
            y = y + self.bias[:, None, :]
        return y.reshape(*lead, self.out_features)


class _StackedConv2d(nn.Module):
    def __init__(self, layers: list[nn.Module], layout: _Layout, interaction=None):
        super().__init__()
        self.layout = layout
        first = layers[0]
        self.in_channels, self.out_channels = first.in_channels, first.out_channels
        self.kernel_size = tuple(first.kernel_size)
        self.stride, self.padding, self.dilation = first.stride, first.padding, first.dilation
        if isinstance(self.padding, str):
            raise NotStackable("string padding")
        self.gene = isinstance(first, GeneConv2d)
        if self.gene:
            object.__setattr__(self, "_interaction", interaction)
            self.gene_dim = first.gene_dim
            self.x_in = _stack([m.x_in for m in layers], True)        # [P, C_in·k·k, g]
            self.x_out = _stack([m.x_out for m in layers], True)      # [P, C_out, g]
            self.register_buffer("alpha", _stack([m.alpha for m in layers], False))
        else:
            self.weight = _stack([m.weight for m in layers], True)    # [P, C_out, C_in, k, k]
        self.bias = _stack([m.bias for m in layers], True) if first.bias is not None else None

    def _weight(self) -> torch.Tensor:
        o = self._interaction.weight
        w = self.alpha[:, None, None] * (self.x_out @ o @ self.x_in.transpose(1, 2))
        return w.reshape(-1, self.in_channels, *self.kernel_size)     # [P·C_out, C_in, k, k]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.layout.population
        xg, n = _to_groups(x, self.layout)                            # [n·B, P·C_in, H, W]
        bias = None if self.bias is None else self.bias.reshape(-1)
        if self.gene and torch.is_grad_enabled():
            g = self.gene_dim
            pos = xg.shape[0]
            for size, k, s, pd, d in zip(xg.shape[2:], self.kernel_size, _pair(self.stride),
                                         _pair(self.padding), _pair(self.dilation)):
                pos *= max(0, (size + 2 * pd - d * (k - 1) - 1) // s + 1)
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            if pos * (fan_in * g + g * self.out_channels) < \
                    self.out_channels * g * (g + fan_in) + pos * fan_in * self.out_channels:
                kernels = self.x_in.transpose(1, 2).reshape(p * g, self.in_channels,
                                                             *self.kernel_size)
                h = F.conv2d(xg, kernels, None, self.stride, self.padding, self.dilation,
                             groups=p)                                 # [n·B, P·g, H', W']
                mix = (self.alpha[:, None, None] * self.x_out) @ self._interaction.weight
                y = F.conv2d(h, mix.reshape(p * self.out_channels, g, 1, 1), bias, groups=p)
                return _from_groups(y, n, self.layout)
        w = self._weight() if self.gene else self.weight.reshape(-1, self.in_channels,
                                                                   *self.kernel_size)
        y = F.conv2d(xg, w, bias, self.stride, self.padding, self.dilation, groups=p)
        return _from_groups(y, n, self.layout)


class _StackedConv1d(nn.Module):
    """P plain ``nn.Conv1d`` (groups=1) as one grouped convolution over ``[·, P·C_in, L]``."""

    def __init__(self, layers: list[nn.Conv1d], layout: _Layout):
        super().__init__()
        self.layout = layout
        first = layers[0]
        if isinstance(first.padding, str):
            raise NotStackable("string padding")
        self.in_channels = first.in_channels
        self.stride, self.padding, self.dilation = first.stride, first.padding, first.dilation
        self.weight = _stack([m.weight for m in layers], True)        # [P, C_out, C_in, k]
        self.bias = _stack([m.bias for m in layers], True) if first.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xg, n = _to_groups(x, self.layout)                            # [n·B, P·C_in, L]
        w = self.weight.reshape(-1, self.in_channels, self.weight.shape[-1])
        bias = None if self.bias is None else self.bias.reshape(-1)
        y = F.conv1d(xg, w, bias, self.stride, self.padding, self.dilation,
                     groups=self.layout.population)
        return _from_groups(y, n, self.layout)


class _StackedBatchNorm(nn.Module):
    running_stats_like_batch_norm = True   # warmed like BatchNorm (train/norm_stats.py)
    track_running_stats = True

    def __init__(self, layers: list[nn.modules.batchnorm._BatchNorm], layout: _Layout):
        super().__init__()
        first = layers[0]
        if first.momentum is None or not first.track_running_stats:
            raise NotStackable("batch norm without momentum / running statistics")
        self.layout = layout
        self.eps, self.momentum = first.eps, first.momentum
        self.affine = first.affine
        if self.affine:
            self.weight = _stack([m.weight for m in layers], True)     # [P, C]
            self.bias = _stack([m.bias for m in layers], True)
        self.register_buffer("running_mean", _stack([m.running_mean for m in layers], False))
        self.register_buffer("running_var", _stack([m.running_var for m in layers], False))
        self.register_buffer("num_batches_tracked",
                             _stack([m.num_batches_tracked for m in layers], False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xg, n = _to_groups(x, self.layout)                             # [n·B, P·C, ...]
        if self.training:
            self.num_batches_tracked.add_(1)
        y = F.batch_norm(xg, self.running_mean.view(-1), self.running_var.view(-1),
                         self.weight.reshape(-1) if self.affine else None,
                         self.bias.reshape(-1) if self.affine else None,
                         self.training, self.momentum, self.eps)
        return _from_groups(y, n, self.layout)


class _StackedInteraction(nn.Module):
    def __init__(self, modules: list[nn.Module]):
        super().__init__()
        self.weight = _stack([m.weight for m in modules], True)       # [P, g, g]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


class StackedPopulation(nn.Module):
    """``P`` models of identical architecture as one module: ``[T, B, ...] -> [P, T, B, K]``.

    Raises :class:`NotStackable` when a model holds a parameter or buffer outside the supported
    layers (gene / plain Linear and Conv2d, plain Conv1d, BatchNorm1d/2d, the shared
    interaction).
    """

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        if not models:
            raise ValueError("an empty population")
        if hasattr(models[0], "patch_keep"):
            raise NotStackable("token models (spikformer): rows interleave candidates and tokens")
        self.layout = _Layout(len(models))
        net = copy.deepcopy(models[0])
        per_model = [dict(m.named_modules()) for m in models]
        interaction = None
        if hasattr(net, "gene_interaction"):
            interaction = _StackedInteraction([mods["gene_interaction"] for mods in per_model])
        replaced = set()
        for name, module in list(net.named_modules()):
            if not name or any(name.startswith(r + ".") for r in replaced):
                continue
            group = [mods[name] for mods in per_model]
            if isinstance(module, (GeneLinear, nn.Linear)) and type(module) in (GeneLinear,
                                                                                 nn.Linear):
                new = _StackedLinear(group, self.layout, interaction)
            elif type(module) in (GeneConv2d, nn.Conv2d) and getattr(module, "groups", 1) == 1 \
                    and getattr(module, "padding_mode", "zeros") == "zeros":
                new = _StackedConv2d(group, self.layout, interaction)
            elif type(module) is nn.Conv1d and module.groups == 1 \
                    and module.padding_mode == "zeros":
                new = _StackedConv1d(group, self.layout)
            elif type(module) in (nn.BatchNorm1d, nn.BatchNorm2d):
                new = _StackedBatchNorm(group, self.layout)
            elif name == "gene_interaction":
                new = interaction
            else:
                own = list(module.named_parameters(recurse=False)) + \
                    list(module.named_buffers(recurse=False))
                if own:
                    raise NotStackable(f"{name} ({type(module).__name__}) holds "
                                       f"{own[0][0]}")
                continue
            _set(net, name, new)
            replaced.add(name)
        self.net = net

    @property
    def population(self) -> int:
        return self.layout.population

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        p = self.population
        self.layout.batch = b
        xs = x.unsqueeze(1).expand(t, p, *x.shape[1:]).reshape(t, p * b, *x.shape[2:])
        out = self.net(xs)                                             # [T, P·B, K]
        return out.reshape(t, p, b, *out.shape[2:]).transpose(0, 1)     # [P, T, B, K]

    def candidate_state(self, index: int) -> tuple[dict, dict]:
        """(parameters, buffers) of candidate ``index`` under the single model's names."""
        strip = len("net.")
        params = {n[strip:]: t[index] for n, t in self.named_parameters()}
        buffers = {n[strip:]: t[index] for n, t in self.named_buffers()}
        return params, buffers


def try_stack(models: list[nn.Module]) -> Optional[StackedPopulation]:
    """A :class:`StackedPopulation` of ``models``, or None if the architecture is not stackable."""
    try:
        return StackedPopulation(models)
    except NotStackable:
        return None
