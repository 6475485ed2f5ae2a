"""``multilevel``: connection tickets in the patch embedding, then patch tickets, then the rest.

Cheng et al., *Pursing the sparse limitation of spiking deep learning structures* (arXiv
2311.12060) and *Gaining the sparse rewards by exploring lottery tickets in spiking neural
networks* (arXiv 2309.13302, "MultiSp": patch-number sparsity, sparse and binarised
convolutional patch-embedding weights). For a model with a convolutional patch embedding
(``spikformer``'s SPS), level K ≥ 1:

1. **connection ticket of the embedding**: a score search (``methods/tickets/score.py``:
   edge-popup, or biprop
   with ``--binary-weights``) over the SPS convolutions at density d_K = (1 - rate)^K per layer,
   with the SPS weights frozen at their initialisation, either with a *temporary* linear head
   on the mean token (``EmbeddingProbe``) trained with it and then thrown away
   (``--embedding-search probe``, the default), or inside the whole model with the patch
   tickets on and everything else training with the scores (``--embedding-search joint``,
   ours; the trained rest is thrown away too);
2. **patch ticket**: the model keeps, per sample, the ``patch_keep`` fraction of tokens with the
   most spikes in the output of that sparse embedding (``models.spikformer``);
3. **the rest**: the SPS convolutions are fixed to the ticket (W ⊙ M or α·sign(W) ⊙ M, frozen);
   everything else — the SPS BatchNorms, the transformer blocks, the readout — is trained from
   its initialisation with the run's schedule. With ``--train-embedding`` (ours) the ticket's
   weights train too, under its mask, from W ⊙ M (or α·sign(W) ⊙ M): a ticket in the sense of
   Frankle & Carbin (a mask over the initial weights that is then trained) rather than an
   untrained supermask.

Level 0 is the dense model with all tokens, trained normally. The papers give the three
ingredients and their order; the score statistic of the patches, the temporary head, the
per-layer density schedule and which parts train in step 3 are our choices. ``patch_keep`` is
``--patch-keep`` (default 0.5, ours). ``density`` in the summary counts every prunable weight
(the blocks are dense); ``embedding_density`` counts the SPS convolutions only.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from spikesculpt.config import TrainConfig
from spikesculpt.experiments.lottery.base import LevelResult, Strategy
from spikesculpt.experiments.lottery.context import LevelContext
from spikesculpt.experiments.lottery.registry import register_strategy
from spikesculpt.methods.tickets.controls import control_seed, random_like
from spikesculpt.methods.tickets.patch import require_tokens
from spikesculpt.methods.tickets.score import ScoreNet, apply_ticket, frozen, score_generator
from spikesculpt.methods.tickets.ticket import PhaseClock
from spikesculpt.models.utils import prunable_parameters
from spikesculpt.sparse import Mask

DEFAULT_PATCH_KEEP = 0.5
EMBEDDING_MASK = "embedding_mask.safetensors"
EMBEDDING_INFO = "embedding.json"


def _renamed(name: str, prefixes: dict[str, str]) -> str:
    """``name`` with its first matching prefix replaced (``{old: new}``)."""
    for old, new in prefixes.items():
        if name.startswith(old):
            return new + name[len(old):]
    return name


class EmbeddingProbe(nn.Module):
    """Patch embedding + a temporary linear head on the mean token: ``[T, B, ...] -> [T, B, K]``."""

    def __init__(self, embed: nn.Module, dim: int, num_classes: int):
        super().__init__()
        self.embed = embed
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x, 1.0).mean(2))


def embedding_layers(model: nn.Module) -> list[str]:
    """Prunable weights of the patch embedding, in the model's names."""
    return [n for n, _ in prunable_parameters(model) if n.startswith("patch_embed.")]


@register_strategy("multilevel")
class Multilevel(Strategy):
    """Embedding connection tickets (a score search), patch tickets, train the rest."""

    name = "multilevel"
    allows_binary = True

    def check(self, ctx: LevelContext, model) -> None:
        require_tokens(model, ctx.train.model, "the multilevel strategy")

    def patch_keep(self, ctx: LevelContext) -> float:
        return float(ctx.train.model_kwargs.get("patch_keep", DEFAULT_PATCH_KEEP))

    def level_config(self, ctx: LevelContext, level: Optional[int] = None) -> TrainConfig:
        """The run's config with ``patch_keep``: all tokens at level 0, ``--patch-keep`` after."""
        config = super().level_config(ctx)
        kwargs = dict(config.model_kwargs)
        level = ctx.level if level is None else level
        kwargs["patch_keep"] = self.patch_keep(ctx) if level > 0 else 1.0
        config.model_kwargs = kwargs
        return config

    def find_ticket(self, ctx: LevelContext) -> LevelResult:
        if not (ctx.level_folder / EMBEDDING_INFO).is_file():
            mask, info = self.search_embedding(ctx)
            mask.save(ctx.level_folder / EMBEDDING_MASK)
            ctx.write_json(EMBEDDING_INFO, info)
        mask = Mask.load(ctx.level_folder / EMBEDDING_MASK)
        info = ctx.read_json(EMBEDDING_INFO)
        phase, model = self.train_rest(ctx, mask)
        return LevelResult(mask, model, phase, search_info=info,
                           extra={"embedding_density": mask.density(),
                                  "patch_keep": self.patch_keep(ctx)})

    def search_embedding(self, ctx: LevelContext) -> tuple[Mask, dict]:
        """Step 1: score search over the SPS convolutions (``--embedding-search``)."""
        clock = PhaseClock()
        if ctx.lottery.embedding_search == "joint":
            net, config = self.joint_search_net(ctx), self.level_config(ctx)
            to_model = {}   # the ScoreNet wraps the model itself: its names are the model's
        else:
            net, config, to_model = self.probe_search_net(ctx), None, {"embed.": "patch_embed."}
        phase = ctx.train_phase("embedding", net, None, "init", clock=clock, config=config)
        mask = Mask({_renamed(n, to_model): m for n, m in net.mask().items()})
        info = {"seconds": clock.elapsed, "cpu_seconds": clock.cpu_elapsed,
                "epochs": ctx.train.epochs, "embedding_search": ctx.lottery.embedding_search,
                "probe_val_accuracy": phase.metrics["val_accuracy"],
                "probe_test_accuracy": phase.metrics["test_accuracy"],
                "embedding_density": mask.density(),
                "binary_weights": ctx.lottery.binary_weights}
        return mask, info

    def probe_search_net(self, ctx: LevelContext) -> ScoreNet:
        """``probe``: the dense model's SPS (all tokens) with a temporary linear head on the
        mean token; only the scores and the head learn."""
        model = ctx.build_model(self.level_config(ctx, level=0))
        embed = require_tokens(model, ctx.train.model, "the multilevel strategy")
        probe = EmbeddingProbe(embed.patch_embed, embed.dim, ctx.info.num_classes)
        names = ["embed." + n[len("patch_embed."):] for n in embedding_layers(embed)]
        return ScoreNet(probe, names, ctx.target_density, ctx.lottery.binary_weights,
                        score_generator(ctx.train.seed, ctx.level),
                        trainable=("head.weight", "head.bias"))

    def joint_search_net(self, ctx: LevelContext) -> ScoreNet:
        """``joint`` (ours): the whole level-K model, patch tickets on; the SPS convolutions
        are scored over their frozen initial weights while every other parameter (SPS
        BatchNorms, blocks, readout) trains with the scores, so the ticket is chosen for the
        network that will use it rather than for a linear probe. The trained rest is then
        discarded: step 3 trains it again from its initialisation, as for ``probe``."""
        model = ctx.build_model(self.level_config(ctx))
        names = embedding_layers(model)
        scored = set(names)
        trainable = [n for n, _ in model.named_parameters() if n not in scored]
        return ScoreNet(model, names, ctx.target_density, ctx.lottery.binary_weights,
                        score_generator(ctx.train.seed, ctx.level), trainable=trainable)

    def train_rest(self, ctx: LevelContext, mask: Mask, init_seed=None):
        """Steps 2-3: the embedding set to ``mask``'s ticket, patch tickets on, the rest
        trained; the embedding's ticket trains under its mask too (the default), or stays
        frozen with ``--frozen-embedding``."""
        config = self.level_config(ctx)
        model = ctx.build_model(config, init_seed=init_seed)
        apply_ticket(model, mask, ctx.lottery.binary_weights)
        if not ctx.lottery.embedding_trained():
            frozen(model, mask.names())
        phase = ctx.train_phase("train", model, mask, "init", config=config)
        return phase, phase.trainer.model

    def control(self, ctx: LevelContext) -> None:
        """The embedding ticket replaced by a re-initialised one (same mask) or a random mask
        at the same per-layer densities (same initial weights); steps 2-3 as for the ticket."""
        ticket = Mask.load(ctx.level_folder / EMBEDDING_MASK)
        if ctx.control == "reinit":
            mask, seed = ticket, control_seed(ctx.train.seed, ctx.level)
        else:
            mask, seed = random_like(ticket, ctx.train.seed, ctx.level), None
        phase, model = self.train_rest(ctx, mask, init_seed=seed)
        ctx.write(mask, model, phase, extra={"embedding_density": mask.density()})
