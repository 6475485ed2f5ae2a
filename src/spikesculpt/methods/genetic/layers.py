"""Gene-encoded layers: weights generated from neuronal encodings and one shared gene interaction.

The connection weight of an encoded layer is not a parameter. It is generated, in the forward
pass, from a *gene encoding* of every pre- and postsynaptic unit and one gene-interaction matrix
shared by every encoded layer of the network:

    W_l = α_l · X_out,l · O · X_in,lᵀ        (GEM, Barabási et al. 2023; Pan et al. 2024)

    X_in,l  [N_in, g]    one gene vector per presynaptic unit (Linear: input feature; Conv2d:
                         one per (input channel c, kernel position i, j), row c·k_h·k_w + i·k_w + j)
    X_out,l [N_out, g]   one gene vector per postsynaptic unit (output feature / output channel)
    O       [g, g]       gene interaction, ONE ``nn.Parameter`` for the whole network
    α_l     scalar       fixed (a buffer, never trained)

Parameters of an encoded layer: g·(N_in + N_out) (+ bias); the network adds g² once for O.
A plain layer has N_in·N_out weights, so with g ≪ min(N_in, N_out) the network shrinks.

From the papers: the factorisation W = X_out O X_inᵀ (GEM: "genetic connectome model", trained by
gradient, G(N_in + N_out + G) parameters), and one interaction O shared by all layers (Pan et al.,
arXiv 2411.06792: "globally shared genetic interactions ... optimize neuronal encoding instead of
weight"). The papers publish no code; the rest is ours:

- α_l (our choice): with unit-variance X and O the generated weights have variance ~g² and LIF
  layers saturate (or, with a small O, fall silent). α_l is set once, when the layer is
  initialised (:meth:`GeneLinear.reset_alpha`), to ``sqrt(2 / fan_in) / rms(X_out O X_inᵀ)`` so that
  the generated weights start with exactly the second moment of Kaiming initialisation
  (He et al. 2015, fan-in, ReLU gain: E[W²] = 2 / fan_in; fan_in = N_in for Linear,
  C_in·k_h·k_w for Conv2d), whatever the structure of O (random or evolved). It is measured on
  the realised encodings rather than derived from their distribution, so an evolved, structured O
  gets the right scale too. It is then fixed: training moves X and O, not α.
- Conv2d (our choice, from the design notes): the kernel is unfolded, one gene vector per
  (input channel, kernel position) and one per output channel; ``[C_out, C_in·k_h·k_w]`` is
  reshaped to ``[C_out, C_in, k_h, k_w]``. Grouped convolutions are not encoded.
- Factorised training (our choice): with autograd on, a layer whose input has many rows computes
  ``x X_in (α O)ᵀ X_outᵀ`` (Linear; Conv2d: a k x k convolution to g maps, then a 1 x 1
  convolution by α X_out O) whenever that takes fewer multiply-accumulates than generating W
  and applying it — the same function and gradients, e.g. ~8x fewer MACs for a 256 x 256 layer
  with g = 16 and 256 rows. Inference uses the generated (cached) W: the deployed network is an
  ordinary SNN whose weights multiply spikes.
- Caching (our choice): generation costs N_out·g² + N_out·N_in·g multiply-accumulates. In
  evaluation mode with autograd off (``model.eval()`` + ``torch.no_grad()`` /
  ``inference_mode``: evaluation, deployment; not under ``torch.func`` transforms or autocast)
  the generated weight is kept and reused; in every other state W is generated on each
  forward (with autograd on, so that the gradient reaches X_in, X_out and O). The kept weight
  is dropped whenever the factors may have changed:

  - after every optimizer step, by the ``genetic`` method's step post-hook (``attach``: inside
    ``spikesculpt train`` / ``fit`` and in your own loop);
  - by any forward or ``weight`` read outside evaluation (e.g. a training step on its way);
  - by ``model.train()`` / ``model.eval()``, ``load_state_dict``, ``.to()`` / ``.half()`` and
    the like (``_apply``), and :func:`invalidate_generated_weights` (after writing the
    parameters yourself);
  - when the tensors are not the ones it was made from (``torch.func.functional_call``, a
    parameter replaced) or their in-place version counters moved.

  The version counters are only one more signal, never the one relied on: fused and foreach
  optimizer kernels (``torch.optim.Adam(..., fused=True)``, used by ``spikesculpt train``) write
  the parameters without bumping them (design notes §6) — a cache keyed on them alone served
  the first epoch's weight to every later evaluation (issue 11).

``layer.weight`` returns the generated weight (a plain tensor, shape of the plain layer's weight),
so code that reads ``module.weight`` (SynOps counters, exporters) sees the connections.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

# Std of the initial encodings and of O (the random initial rule). The generated weights do not
# depend on it (α normalises them), but Adam moves every parameter by ~lr per step, so this scale
# is in effect an inverse learning-rate multiplier for the genes (scaling the genes by c and lr by
# c gives the same training). Picked on digits (mlp 256-256, g=16, lr 1e-3, 30 epochs, 3 seeds;
# test accuracy): std 1.0 -> 42% (g=8), 0.1 -> 92.9%, 0.05 -> 94.1%, 0.02 -> 95.5%, 0.01 -> 94.8%.
INIT_STD = 0.02


def _autocast_on(device_type: str) -> bool:
    """Whether autocast (AMP) is on for ``device_type`` here: a weight generated inside it has
    the autocast dtype and belongs to that region only."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # pragma: no cover - torch < 2.4 takes no device type
        return bool(torch.is_autocast_cpu_enabled() if device_type == "cpu"
                    else torch.is_autocast_enabled())


def _functorch_active() -> bool:
    try:
        return bool(torch._C._are_functorch_transforms_active())
    except AttributeError:  # pragma: no cover - older torch
        return False


# How O starts (``genetic.interaction_init``): "random" = N(0, init_std²) (the paper's random
# rule); "identity" = init_std · I_g (ours, issue 14): the network then starts as a rank-g
# low-rank network W_l = α_l X_out,l X_in,lᵀ, and the shared O learns from there.
INTERACTION_INITS = ("random", "identity")


class GeneInteraction(nn.Module):
    """The gene-interaction matrix ``O`` [g, g] shared by every encoded layer of a network.

    Initialised ``N(0, init_std²)`` (``init="random"``) or ``init_std · I_g``
    (``init="identity"``; the random draw is still taken from ``generator``, so the encodings
    drawn after it are the same under both). The scale is immaterial for the generated weights,
    each layer's α normalises it; it sets the step size of O relative to Adam's ``lr`` (see
    ``INIT_STD``).
    """

    def __init__(self, gene_dim: int, generator: Optional[torch.Generator] = None,
                 init_std: float = INIT_STD, init: str = "random"):
        super().__init__()
        if isinstance(gene_dim, bool) or not isinstance(gene_dim, int) or gene_dim <= 0:
            raise ValueError(f"gene_dim must be a positive integer, got {gene_dim!r}")
        if init not in INTERACTION_INITS:
            raise ValueError(f"init must be one of {INTERACTION_INITS}, got {init!r}")
        self.gene_dim = int(gene_dim)
        self.weight = nn.Parameter(torch.empty(gene_dim, gene_dim))
        with torch.no_grad():
            drawn = torch.randn(gene_dim, gene_dim, generator=generator) * init_std
            self.weight.copy_(drawn if init == "random" else torch.eye(gene_dim) * init_std)

    def extra_repr(self) -> str:
        return f"gene_dim={self.gene_dim}"


class _GeneEncoded(nn.Module):
    """Shared machinery: encodings, the (unregistered) reference to O, α, the cache."""

    fan_in: int
    weight_shape: tuple
    _cache: Optional[torch.Tensor] = None   # the generated weight kept for evaluation
    _cache_key: Optional[tuple] = None      # ((tensor, version) of X_in, X_out, O, α) it came from

    def _init_genes(self, n_in: int, n_out: int, interaction: Optional[GeneInteraction],
                    gene_dim: Optional[int], generator: Optional[torch.Generator],
                    init_std: float) -> None:
        if interaction is None:
            if gene_dim is None:
                raise ValueError("give gene_dim or a shared GeneInteraction")
            # standalone layer: it owns its interaction (registered, so it is trained and saved)
            self.own_interaction = GeneInteraction(gene_dim, generator, init_std)
            interaction = self.own_interaction
        elif gene_dim is not None and gene_dim != interaction.gene_dim:
            raise ValueError(f"gene_dim {gene_dim} != the shared interaction's "
                             f"{interaction.gene_dim}")
        # A shared O is owned (registered) by the network root, not by each layer: one parameter
        # object, one state-dict entry. The layer only keeps a reference.
        object.__setattr__(self, "_interaction", interaction)
        g = interaction.gene_dim
        self.gene_dim = g
        self.x_in = nn.Parameter(torch.empty(n_in, g))    # [N_in, g]
        self.x_out = nn.Parameter(torch.empty(n_out, g))  # [N_out, g]
        self.register_buffer("alpha", torch.ones(()))
        self.reset_encodings(0.0, init_std, 0.0, init_std, generator=generator)

    @property
    def interaction(self) -> GeneInteraction:
        return self._interaction

    @property
    def gene_interaction(self) -> torch.Tensor:
        """``O`` [g, g] (the shared parameter)."""
        return self._interaction.weight

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def reset_encodings(self, in_mean: float = 0.0, in_std: float = INIT_STD,
                        out_mean: float = 0.0, out_std: float = INIT_STD,
                        generator: Optional[torch.Generator] = None) -> None:
        """Draw ``X_in ~ N(in_mean, in_std²)``, ``X_out ~ N(out_mean, out_std²)`` and reset α.

        These four numbers are the per-layer statistics an evolved genome sets
        (``genetic.genome``); the defaults are the "random initial rule".
        """
        # drawn on the CPU (a CPU generator works for every device), then copied
        z_in = torch.randn(self.x_in.shape, generator=generator, dtype=torch.float64)
        z_out = torch.randn(self.x_out.shape, generator=generator, dtype=torch.float64)
        self.x_in.copy_(z_in * in_std + in_mean)
        self.x_out.copy_(z_out * out_std + out_mean)
        self.reset_alpha()

    @torch.no_grad()
    def raw_weight(self) -> torch.Tensor:
        """``X_out O X_inᵀ`` [N_out, N_in·…] without α."""
        return self.x_out @ self.gene_interaction @ self.x_in.t()

    @torch.no_grad()
    def reset_alpha(self) -> float:
        """Set α so that the generated weight has E[W²] = 2 / fan_in (Kaiming, fan-in, ReLU)."""
        rms = float(self.raw_weight().square().mean().sqrt())
        target = math.sqrt(2.0 / self.fan_in)
        self.alpha.fill_(target / rms if rms > 0 and math.isfinite(rms) else 1.0)
        self.invalidate_cache()
        return float(self.alpha)

    # ------------------------------------------------------------------ generation
    def invalidate_cache(self) -> None:
        """Drop the kept generated weight (the next evaluation generates it again). Nearly
        free when nothing is kept (the usual case during training: one attribute read)."""
        if self._cache is not None:
            self._cache = None
            self._cache_key = None

    def _sources(self) -> tuple:
        return (self.x_in, self.x_out, self.gene_interaction, self.alpha)

    def _cache_valid(self, sources: tuple) -> bool:
        """The kept weight was generated from these very tensors, unchanged since (as far as
        their version counters tell; the hooks cover the writes the counters miss)."""
        key = self._cache_key
        return self._cache is not None and all(
            t is k and t._version == v for t, (k, v) in zip(sources, key))

    def generate_weight(self) -> torch.Tensor:
        """W = α · X_out O X_inᵀ, shaped like the plain layer's weight (differentiable)."""
        w = self.alpha * (self.x_out @ self.gene_interaction @ self.x_in.t())  # [N_out, N_in]
        return w.reshape(self.weight_shape)

    def _cacheable(self) -> bool:
        """Evaluation: eval mode, autograd off, outside vmap/grad transforms and autocast."""
        return (not self.training and not torch.is_grad_enabled() and not _functorch_active()
                and not _autocast_on(self.x_in.device.type))

    def _drop_unless_cacheable(self) -> None:
        """Called by every forward: a forward outside evaluation (e.g. a training step on its
        way, in either mode) ends the life of the kept weight."""
        if self._cache is not None and not self._cacheable():
            self.invalidate_cache()

    @property
    def weight(self) -> torch.Tensor:
        """The generated connection weight (kept while in eval mode with autograd off)."""
        if not self._cacheable():
            self._drop_unless_cacheable()
            return self.generate_weight()
        sources = self._sources()
        if not self._cache_valid(sources):
            self._cache = self.generate_weight()
            self._cache_key = tuple((t, t._version) for t in sources)
        return self._cache

    def train(self, mode: bool = True):
        self.invalidate_cache()
        return super().train(mode)

    def _apply(self, *args, **kwargs):
        self.invalidate_cache()
        return super()._apply(*args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs):
        self.invalidate_cache()
        return super()._load_from_state_dict(*args, **kwargs)

    def __getstate__(self):  # no cached tensor in pickles / deep copies
        state = self.__dict__.copy()
        state["_cache"] = None
        state["_cache_key"] = None
        return state

    # ------------------------------------------------------------------ accounting
    def encoding_parameters(self) -> int:
        """g · (N_in + N_out): the layer's own gene parameters (bias and O excluded)."""
        return self.x_in.numel() + self.x_out.numel()

    def plain_weight_parameters(self) -> int:
        """N_out · N_in (· k_h·k_w): the weights of the same layer without encoding."""
        return math.prod(self.weight_shape)

    def generation_macs(self) -> int:
        """Multiply-accumulates to generate W once: (X_out O) then (·) X_inᵀ."""
        n_out, g = self.x_out.shape
        return n_out * g * g + n_out * g * self.x_in.shape[0]


class GeneLinear(_GeneEncoded):
    """``nn.Linear`` whose weight is ``α · X_out O X_inᵀ``: ``[..., N_in] -> [..., N_out]``.

    Args:
        in_features, out_features: N_in, N_out.
        interaction: the network's shared :class:`GeneInteraction` (not registered here); None
            makes a standalone layer with its own O of size ``gene_dim``.
        bias: learnable bias (a plain parameter, as in ``nn.Linear``; zero-initialised).
        generator: seeds the encodings (and O when the layer owns it).
    """

    connection_kind = "linear"  # counted by metrics.synops like the nn.Linear it replaces

    def __init__(self, in_features: int, out_features: int,
                 interaction: Optional[GeneInteraction] = None, *, gene_dim: Optional[int] = None,
                 bias: bool = True, generator: Optional[torch.Generator] = None,
                 init_std: float = INIT_STD):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.fan_in = self.in_features
        self.weight_shape = (self.out_features, self.in_features)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self._init_genes(in_features, out_features, interaction, gene_dim, generator, init_std)

    def factorized_macs(self, rows: int) -> int:
        g = self.gene_dim
        return rows * (self.in_features * g + g * g + g * self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., N_in] -> [..., N_out]
        self._drop_unless_cacheable()
        rows = x.numel() // max(self.in_features, 1)
        if torch.is_grad_enabled() and self.factorized_macs(rows) < \
                self.generation_macs() + rows * self.plain_weight_parameters():
            # training through the factors: x X_in (α O)ᵀ X_outᵀ, no N_out x N_in product
            h = (x @ self.x_in) @ (self.alpha * self.gene_interaction).t()   # [..., g]
            return F.linear(h, self.x_out, self.bias)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"gene_dim={self.gene_dim}, bias={self.bias is not None}")


class GeneConv2d(_GeneEncoded):
    """``nn.Conv2d`` (groups=1) whose kernel is ``reshape(α · X_out O X_inᵀ)``: ``[N, C_in, H, W] ->
    [N, C_out, H', W']``.

    X_in [C_in·k_h·k_w, g] has one row per (input channel c, kernel position (i, j)), row index
    ``c·k_h·k_w + i·k_w + j``; X_out [C_out, g] one row per output channel. Same arguments as
    ``nn.Conv2d`` (no ``groups``) plus ``interaction`` / ``gene_dim`` / ``generator``.
    """

    connection_kind = "conv"  # counted by metrics.synops like the nn.Conv2d it replaces
    groups = 1
    padding_mode = "zeros"

    def __init__(self, in_channels: int, out_channels: int, kernel_size,
                 interaction: Optional[GeneInteraction] = None, *, stride=1, padding=0,
                 dilation=1, bias: bool = True, padding_mode: str = "zeros",
                 gene_dim: Optional[int] = None, generator: Optional[torch.Generator] = None,
                 init_std: float = INIT_STD):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError("GeneConv2d supports padding_mode='zeros' only")
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (int(kh), int(kw))
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.fan_in = self.in_channels * kh * kw
        self.weight_shape = (self.out_channels, self.in_channels, int(kh), int(kw))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self._init_genes(self.fan_in, out_channels, interaction, gene_dim, generator, init_std)

    def _out_positions(self, x: torch.Tensor) -> Optional[int]:
        """N·H'·W' of the output, or None when the padding is given as a string."""
        if isinstance(self.padding, str) or x.dim() != 4:
            return None
        pos = x.shape[0]
        for size, k, s, p, d in zip(x.shape[2:], self.kernel_size, _pair(self.stride),
                                    _pair(self.padding), _pair(self.dilation)):
            pos *= max(0, (size + 2 * p - d * (k - 1) - 1) // s + 1)
        return pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C_in, H, W] -> [N, C_out, H', W']
        self._drop_unless_cacheable()
        pos = self._out_positions(x) if torch.is_grad_enabled() else None
        g = self.gene_dim
        if pos is not None and pos * (self.fan_in * g + g * self.out_channels) < \
                self.generation_macs() + pos * self.plain_weight_parameters():
            # training through the factors: a k x k conv to g maps (kernels = columns of X_in),
            # then a 1x1 conv by α X_out O
            kernels = self.x_in.t().reshape(g, self.in_channels, *self.kernel_size)
            h = F.conv2d(x, kernels, None, self.stride, self.padding, self.dilation)
            mix = (self.alpha * self.x_out) @ self.gene_interaction              # [C_out, g]
            return F.conv2d(h, mix[:, :, None, None], self.bias)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, gene_dim={self.gene_dim}, "
                f"bias={self.bias is not None}")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


GENE_LAYERS = (GeneLinear, GeneConv2d)


def gene_layers(model: nn.Module) -> list[tuple[str, _GeneEncoded]]:
    """``[(module name, layer)]`` of the encoded layers, in registration (= forward) order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _GeneEncoded)]


def invalidate_generated_weights(model: nn.Module) -> None:
    """Drop the generated weights every encoded layer of ``model`` keeps for evaluation.

    Call it after changing X_in, X_out or O yourself in a way the layers cannot see (e.g. a
    fused optimizer step outside the ``genetic`` method's hooks, or writes through ``.data``).
    """
    for _, layer in gene_layers(model):
        layer.invalidate_cache()
