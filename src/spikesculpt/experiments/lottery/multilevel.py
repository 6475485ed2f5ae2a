"""``multilevel``: connection tickets in the patch embedding, then patch tickets, then the rest.

Cheng et al., *Pursing the sparse limitation of spiking deep learning structures* (arXiv
2311.12060) and *Gaining the sparse rewards by exploring lottery tickets in spiking neural
networks* (arXiv 2309.13302, "MultiSp": patch-number sparsity, sparse and binarised
convolutional patch-embedding weights). For a model with a convolutional patch embedding
(``spikformer``'s SPS), level K ≥ 1:

1. **connection ticket of the embedding**: a score search (``score.py``: edge-popup, or biprop
   with ``--binary-weights``) over the SPS convolutions at density d_K = (1 - rate)^K per layer,
   with the SPS weights frozen at their initialisation and a *temporary* linear head on the mean
   token (``EmbeddingProbe``) trained with it; the head is then thrown away;
2. **patch ticket**: the model keeps, per sample, the ``patch_keep`` fraction of tokens with the
   most spikes in the output of that sparse embedding (``models.spikformer``);
3. **the rest**: the SPS convolutions are fixed to the ticket (W ⊙ M or α·sign(W) ⊙ M, frozen);
   everything else — the SPS BatchNorms, the transformer blocks, the readout — is trained from
   its initialisation with the run's schedule.

Level 0 is the dense model with all tokens, trained normally. The papers give the three
ingredients and their order; the score statistic of the patches, the temporary head, the
per-layer density schedule and which parts train in step 3 are our choices. ``patch_keep`` is
``--patch-keep`` (default 0.5, ours). ``density`` in the summary counts every prunable weight
(the blocks are dense); ``embedding_density`` counts the SPS convolutions only.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from spikesculpt.experiments.lottery.base import Strategy
from spikesculpt.experiments.lottery.controls import control_seed, random_like
from spikesculpt.experiments.lottery.registry import register_strategy
from spikesculpt.experiments.lottery.score import ScoreNet, apply_ticket, frozen, score_generator
from spikesculpt.methods.tickets.patch import require_tokens
from spikesculpt.methods.tickets.ticket import PhaseClock
from spikesculpt.models.utils import prunable_parameters
from spikesculpt.sparse import Mask

DEFAULT_PATCH_KEEP = 0.5


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
    """Embedding connection tickets (score search, temporary head), patch tickets, train the rest."""

    name = "multilevel"
    allows_binary = True

    def check(self, search, model) -> None:
        require_tokens(model, search.train.model, "the multilevel strategy")

    def patch_keep(self, search) -> float:
        return float(search.train.model_kwargs.get("patch_keep", DEFAULT_PATCH_KEEP))

    def level_config(self, search, level: int):
        config = copy.deepcopy(search.train)
        kwargs = dict(config.model_kwargs)
        kwargs["patch_keep"] = self.patch_keep(search) if level > 0 else 1.0
        config.model_kwargs = kwargs
        return config

    def run_level(self, search, level: int) -> None:
        folder = search.level_dir(level)
        config = self.level_config(search, level)
        if level == 0:
            model = search.build_model(config)
            mask = search.level_mask(0, model)
            phase = search.train_phase(folder, "train", config, model, mask, "init", [],
                                       PhaseClock())
            search.write_level(0, mask, phase.trainer.model, phase)
            return
        mask_path = folder / "embedding_mask.safetensors"
        info_path = folder / "embedding.json"
        if not info_path.is_file():
            mask, info = self.search_embedding(search, level, folder)
            mask.save(mask_path)
            search.write_json(info_path, info)
        mask = Mask.load(mask_path)
        info = search.read_json(info_path)
        phase, model = self.train_rest(search, level, folder, mask, init_seed=None)
        search.write_level(level, mask, model, phase, search_info=info,
                           extra={"embedding_density": mask.density(),
                                  "patch_keep": self.patch_keep(search)})

    def search_embedding(self, search, level: int, folder):
        """Step 1: score search over the SPS convolutions with a temporary head."""
        model = search.build_model(self.level_config(search, 0))
        embed = require_tokens(model, search.train.model, "the multilevel strategy")
        probe = EmbeddingProbe(embed.patch_embed, embed.dim, search.splits.info.num_classes)
        names = ["embed." + n[len("patch_embed."):] for n in embedding_layers(embed)]
        net = ScoreNet(probe, names, search.target_density(level),
                       search.lottery.binary_weights, score_generator(search.train.seed, level),
                       trainable=("head.weight", "head.bias"))
        clock = PhaseClock()
        phase = search.train_phase(folder, "embedding", copy.deepcopy(search.train), net, None,
                                   "init", [], clock)
        found = net.mask()
        mask = Mask({"patch_embed." + n[len("embed."):]: found[n] for n in found})
        info = {"seconds": clock.elapsed, "cpu_seconds": clock.cpu_elapsed,
                "epochs": search.train.epochs,
                "probe_val_accuracy": phase.metrics["val_accuracy"],
                "probe_test_accuracy": phase.metrics["test_accuracy"],
                "embedding_density": mask.density(),
                "binary_weights": search.lottery.binary_weights}
        return mask, info

    def train_rest(self, search, level: int, folder, mask: Mask, init_seed=None, name="train"):
        """Steps 2-3: the embedding fixed to ``mask`` (frozen), patch tickets on, rest trained."""
        config = self.level_config(search, level)
        model = search.build_model(config, init_seed=init_seed)
        apply_ticket(model, mask, search.lottery.binary_weights)
        frozen(model, mask.names())
        phase = search.train_phase(folder, name, config, model, mask, "init", [], PhaseClock())
        return phase, phase.trainer.model

    def control(self, search, kind: str, level: int, folder) -> None:
        """The embedding ticket replaced by a re-initialised one (same mask) or a random mask
        at the same per-layer densities (same initial weights); steps 2-3 as for the ticket."""

        ticket = Mask.load(search.level_dir(level) / "embedding_mask.safetensors")
        if kind == "reinit":
            mask, seed = ticket, control_seed(search.train.seed, level)
        else:
            mask, seed = random_like(ticket, search.train.seed, level), None
        phase, model = self.train_rest(search, level, folder, mask, init_seed=seed)
        search.write_run(folder, mask, model, phase,
                         {"control": kind, "level": level,
                          "embedding_density": mask.density()})
