"""Spikformer: the spiking vision transformer of the spiking lottery-ticket papers.

Zhou, Zhu, He, Wang, Yan, Tian, Yuan, *Spikformer: When Spiking Neural Network Meets
Transformer*, ICLR 2023; the model whose patch and weight tickets Cheng et al. study
(arXiv 2311.12060, 2309.13302). Time-major throughout::

    x                        [T, B, C, H, W]
    patch_embed (SPS)        4 x (conv3x3 -> BN -> [maxpool] -> LIF), channels D/8, D/4, D/2, D
      features               [T, B, D, H', W']   spikes; H' = H / 2^pools (ceil)
      [patch tickets]        keep the ceil(keep * N) tokens with the most spikes, per sample
      rpe                    conv3x3 -> BN -> LIF on the (kept) features: relative position
      tokens                 features + rpe, flattened: [T, B, N', D], N' = kept tokens
    blocks (x depth)         x = x + SSA(x); x = x + MLP(x)          [T, B, N', D]
    mean over tokens         [T, B, D]
    readout                  [T, B, classes]

Spiking self-attention (SSA): ``Q, K, V = LIF(BN(Linear(x)))`` (spikes), per head
``attn = Q Kᵀ V · s`` with ``s = 0.125`` and **no softmax** (Q, K, V are non-negative, so the
product already is), then a LIF with half the threshold, then ``LIF(BN(Linear(·)))``. MLP:
``LIF(BN(fc1)) -> LIF(BN(fc2))`` with hidden size ``mlp_ratio · D``. BatchNorm runs over every
(time step, sample, token) row. All as in the paper's code; our choices: the 1x1 ``Conv1d``
projections of the reference code are written as ``nn.Linear`` (the same operation, and the
sparse core's prunable layers are conv2d / linear), PyTorch default initialisation, and the
maxpool (3x3, stride 2, padding 1, as in the paper) sits after BatchNorm and before the LIF in
the last ``pools`` SPS stages.

Configurations (``size=``):

======== ===== ===== ======= ========= ===== =====================================================
size     depth  D    heads   mlp ratio pools from
======== ===== ===== ======= ========= ===== =====================================================
``cpu``    1    64     4        2        1   ours: 8x8 digits -> 4x4 = 16 tokens, ~1 s / epoch
``tiny``   2    256   16        4        4   Spikformer-2-256 (CIFAR10-DVS / DVS128, 128x128 -> 8x8)
``small``  4    384   12        4        2   Spikformer-4-384 (CIFAR-10/100, 32x32 -> 8x8), 9.32 M
======== ===== ===== ======= ========= ===== =====================================================

Every entry can be overridden (``depth=``, ``dim=``, ``heads=``, ``mlp_ratio=``, ``pools=``);
``width`` multiplies D (rounded to a multiple of the head count).

**Patch tickets** (``patch_keep`` in (0, 1], default 1 = all tokens). From Cheng et al.: the
tokens made by the convolutional patch embedding are scored and the least informative ones are
dropped together with their position embeddings; the paper does not publish its statistic. Our
choice: the score of a token is its spike count in the SPS features, summed over T and the D
channels, and every sample keeps its own top ``ceil(keep · N)`` tokens (ties: the earlier
position). The dropped positions are zeroed *before* the relative-position conv, so the position
embedding of a kept token never sees a dropped one, and the dropped tokens' own position
embeddings are removed with them: nothing of a dropped token reaches the blocks (its gradient is
exactly zero; tested). Scoring after the position embedding instead would let the 3x3 RPE conv
carry dropped tokens into kept ones. ``model.tokens_kept`` is the kept fraction N'/N of the last
forward pass.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.models.base import SpikingModel
from spikesculpt.models.factory import (
    positive_float,
    positive_int,
    register_model,
    require_image,
    scaled,
)
from spikesculpt.models.layers import NeuronFactory, seq_apply

SIZES = {
    "cpu": dict(depth=1, dim=64, heads=4, mlp_ratio=2.0, pools=1),
    "tiny": dict(depth=2, dim=256, heads=16, mlp_ratio=4.0, pools=4),
    "small": dict(depth=4, dim=384, heads=12, mlp_ratio=4.0, pools=2),
}
ATTENTION_SCALE = 0.125


def kept_tokens(n_tokens: int, keep: float) -> int:
    """Tokens kept per sample: ``ceil(keep · N)`` (at least 1; ``keep = 1`` keeps all)."""
    return max(1, min(n_tokens, math.ceil(keep * n_tokens - 1e-9)))


def check_patch_keep(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 < value <= 1:
        raise UserError(f"patch_keep must be in (0, 1] (the fraction of tokens kept per "
                        f"sample), got {value!r}; pass e.g. --patch-keep 0.5")
    return float(value)


def select_tokens(features: torch.Tensor, keep: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample top tokens by spike count.

    ``features [T, B, D, H, W]`` -> (``idx [B, k]`` kept token positions in ascending order,
    ``scores [B, N]`` the spike count of every token, summed over T and D); ``N = H·W``,
    ``k = kept_tokens(N, keep)``. Ties keep the earlier position (stable sort).
    """
    t, b, d, h, w = features.shape
    scores = features.detach().sum(dim=(0, 2)).reshape(b, h * w)          # [B, N]
    k = kept_tokens(h * w, keep)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    idx = torch.sort(order[:, :k], dim=1).values                           # [B, k]
    return idx, scores


class _BNLinear(nn.Module):
    """Linear -> BatchNorm1d over all leading rows: ``[..., C_in] -> [..., C_out]``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.fc = nn.Linear(c_in, c_out)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return self.bn(y.reshape(-1, y.shape[-1])).reshape(y.shape)


class SpikingPatchSplitting(nn.Module):
    """SPS: ``[T, B, C, H, W] -> tokens [T, B, N', D]`` (see the module docstring).

    Parameters: ``stages.{i}.conv.weight`` (i = 0..3), ``rpe.conv.weight`` and the BatchNorms.
    """

    def __init__(self, in_channels: int, dim: int, neuron: NeuronFactory, pools: int):
        super().__init__()
        channels = [max(1, dim // 8), max(1, dim // 4), max(1, dim // 2), dim]
        self.stages = nn.ModuleList()
        c = in_channels
        for i, out in enumerate(channels):
            stage = nn.Module()
            stage.conv = nn.Conv2d(c, out, 3, 1, 1, bias=False)
            stage.bn = nn.BatchNorm2d(out)
            stage.pool = nn.MaxPool2d(3, 2, 1) if i >= len(channels) - pools else None
            stage.spike = neuron()
            self.stages.append(stage)
            c = out
        self.rpe = nn.Module()
        self.rpe.conv = nn.Conv2d(dim, dim, 3, 1, 1, bias=False)
        self.rpe.bn = nn.BatchNorm2d(dim)
        self.rpe.spike = neuron()
        self.pools = pools
        self.last_keep_index: Optional[torch.Tensor] = None
        self.n_tokens = 0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The patch features before the position embedding: ``[T, B, D, H', W']`` spikes."""
        for stage in self.stages:
            def per_sample(z, stage=stage):
                z = stage.bn(stage.conv(z))
                return stage.pool(z) if stage.pool is not None else z
            x = stage.spike(seq_apply(per_sample, x))
        return x

    def forward(self, x: torch.Tensor, keep: float = 1.0) -> torch.Tensor:
        feats = self.features(x)                                   # [T, B, D, H, W] spikes
        t, b, d, h, w = feats.shape
        idx = None
        if keep < 1.0:
            idx, _ = select_tokens(feats, keep)                     # [B, k]
            on = torch.zeros(b, h * w, dtype=feats.dtype, device=feats.device)
            on.scatter_(1, idx, 1.0)
            feats = feats * on.view(1, b, 1, h, w)                  # dropped tokens -> 0
        pos = self.rpe.spike(seq_apply(lambda z: self.rpe.bn(self.rpe.conv(z)), feats))
        tokens = (feats + pos).flatten(3).transpose(2, 3)           # [T, B, N, D]
        if idx is not None:
            gather = idx.view(1, b, -1, 1).expand(t, b, idx.shape[1], d)
            tokens = tokens.gather(2, gather)                       # [T, B, k, D]
        self.last_keep_index = idx
        self.n_tokens = h * w
        return tokens


class SpikingSelfAttention(nn.Module):
    """SSA (Zhou et al. 2023): spike Q, K, V; ``Q Kᵀ V · 0.125`` per head, no softmax.

    ``[T, B, N, D] -> [T, B, N, D]`` spikes.
    """

    def __init__(self, dim: int, heads: int, neuron: NeuronFactory):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = _BNLinear(dim, dim), _BNLinear(dim, dim), _BNLinear(dim, dim)
        self.q_spike, self.k_spike, self.v_spike = neuron(), neuron(), neuron()
        self.attn_spike = neuron()
        if hasattr(self.attn_spike, "v_threshold"):  # Spikformer: 0.5 where the others use 1
            self.attn_spike.v_threshold = 0.5 * float(self.attn_spike.v_threshold)
        self.proj = _BNLinear(dim, dim)
        self.proj_spike = neuron()

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        t, b, n, d = x.shape
        return x.reshape(t, b, n, self.heads, d // self.heads).transpose(2, 3)  # [T,B,h,N,d_h]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, n, d = x.shape
        q = self._heads(self.q_spike(self.q(x)))
        k = self._heads(self.k_spike(self.k(x)))
        v = self._heads(self.v_spike(self.v(x)))
        attn = (q @ k.transpose(-2, -1) @ v) * ATTENTION_SCALE       # [T, B, h, N, d_h]
        y = self.attn_spike(attn.transpose(2, 3).reshape(t, b, n, d))
        return self.proj_spike(self.proj(y))


class SpikingMLPBlock(nn.Module):
    """``LIF(BN(fc1)) -> LIF(BN(fc2))``: ``[T, B, N, D] -> [T, B, N, D]``."""

    def __init__(self, dim: int, hidden: int, neuron: NeuronFactory):
        super().__init__()
        self.fc1, self.spike1 = _BNLinear(dim, hidden), neuron()
        self.fc2, self.spike2 = _BNLinear(hidden, dim), neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike2(self.fc2(self.spike1(self.fc1(x))))


class SpikformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, neuron: NeuronFactory):
        super().__init__()
        self.attn = SpikingSelfAttention(dim, heads, neuron)
        self.mlp = SpikingMLPBlock(dim, hidden, neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Spikformer(SpikingModel):
    """SPS patch embedding -> Spikformer blocks -> mean over tokens -> linear readout."""

    has_tokens = True

    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int,
                 neuron: NeuronFactory, *, dim: int, depth: int, heads: int, mlp_ratio: float,
                 pools: int, patch_keep: float = 1.0):
        super().__init__("spikformer", in_channels, image_size, num_classes, fixed_size=False)
        self.dim, self.depth, self.heads, self.pools = dim, depth, heads, pools
        self.patch_keep = check_patch_keep(patch_keep)
        self.patch_embed = SpikingPatchSplitting(in_channels, dim, neuron, pools)
        hidden = max(1, int(round(dim * mlp_ratio)))
        self.blocks = nn.Sequential(*[SpikformerBlock(dim, heads, hidden, neuron)
                                      for _ in range(depth)])
        self.readout = nn.Linear(dim, num_classes)
        self.tokens_kept: Optional[float] = None
        self.init_weights()

    def set_patch_keep(self, keep: float) -> None:
        self.patch_keep = check_patch_keep(keep)

    def token_grid(self, image_size: Optional[tuple[int, int]] = None) -> tuple[int, int]:
        """``(H', W')`` of the SPS output for an input of ``image_size`` (default: built size)."""
        h, w = image_size or self.image_size
        for _ in range(self.pools):
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)                               # [T, B, C, H, W]
        tokens = self.patch_embed(x, self.patch_keep)     # [T, B, N', D]
        self.tokens_kept = tokens.shape[2] / self.patch_embed.n_tokens
        tokens = self.blocks(tokens)                      # [T, B, N', D]
        return self.readout(tokens.mean(2))               # [T, B, classes]


@register_model("spikformer")
def spikformer(*, in_channels: int, image_size, num_classes: int, neuron: NeuronFactory,
               size: str = "cpu", width: float = 1.0, dim: Optional[int] = None,
               depth: Optional[int] = None, heads: Optional[int] = None,
               mlp_ratio: Optional[float] = None, pools: Optional[int] = None,
               patch_keep: float = 1.0) -> Spikformer:
    """Spikformer (Zhou et al. ICLR 2023): SPS patch embedding, spiking attention, patch tickets.

    ``size``: ``cpu`` (1 block, D=64, 1 pool: 16 tokens on 8x8 digits), ``tiny``
    (Spikformer-2-256, the event-camera configuration) or ``small`` (Spikformer-4-384, the
    CIFAR configuration, 9.32 M parameters); ``dim``/``depth``/``heads``/``mlp_ratio``/``pools``
    override the entry, ``width`` scales D. ``patch_keep`` in (0, 1]: fraction of tokens kept per
    sample (patch tickets, by spike count). See ``spikesculpt.models.spikformer``.
    """
    image_size = require_image("spikformer", image_size)
    if size not in SIZES:
        raise UserError(f"spikformer: unknown size {size!r}; choose one of: "
                        f"{', '.join(SIZES)}")
    cfg = dict(SIZES[size])
    for key, value in (("dim", dim), ("depth", depth), ("heads", heads), ("pools", pools)):
        if value is not None:
            cfg[key] = value
    if mlp_ratio is not None:
        cfg["mlp_ratio"] = positive_float("spikformer: mlp_ratio", mlp_ratio)
    d = positive_int("spikformer: dim", cfg["dim"])
    depth_ = positive_int("spikformer: depth", cfg["depth"])
    heads_ = positive_int("spikformer: heads", cfg["heads"])
    pools_ = cfg["pools"]
    if isinstance(pools_, bool) or not isinstance(pools_, int) or not 0 <= pools_ <= 4:
        raise UserError(f"spikformer: pools must be an integer in 0..4 (max-pooled SPS stages), "
                        f"got {pools_!r}")
    d = scaled(d, positive_float("spikformer: width", width))
    heads_ = min(heads_, d)
    d = max(heads_, int(round(d / heads_)) * heads_)   # a multiple of the head count
    return Spikformer(in_channels, image_size, num_classes, neuron, dim=d, depth=depth_,
                      heads=heads_, mlp_ratio=float(cfg["mlp_ratio"]), pools=pools_,
                      patch_keep=check_patch_keep(patch_keep))
