"""``genetic``: train a gene-encoded network (weights generated from neuronal encodings).

``prepare_model`` replaces the model's conv / linear layers by :class:`GeneLinear` /
:class:`GeneConv2d` sharing one gene interaction O (``genetic_encode``), drawn from a seeded
generator — or from an evolved initial wiring rule (``genome``, written by ``spikesculpt evolve``).
Training then runs unchanged: the optimizer sees X_in, X_out, O, biases and the rest; the weights
are generated in every forward pass. ``attach`` (called by the trainer, or by you in your own
loop) registers an optimizer step post-hook that drops the generated weights the encoded layers
keep for evaluation: an optimizer step has just changed their factors, and PyTorch's fused /
foreach kernels do so without a trace the layers could see (``layers.py``, "Caching").

metrics.json gets (besides the usual keys, where ``params_total`` is the encoded network's count):
``params_plain`` (same architecture, ordinary weights), ``compression`` (= 1 − params_total /
params_plain), ``gene_dim``, ``params_interaction`` (g²), ``params_encodings``,
``break_even_gene_dim``, ``generation_macs`` (multiply-accumulates to generate every encoded weight
once; at inference the generated weights are cached, so this is paid once per parameter change,
not per sample) and ``encoded_layers``. ``params_prunable`` / ``density`` keep their meaning:
weight *parameters* of plain conv / linear layers (the layers kept plain); an encoded layer has no
weight parameter to prune, and its generated connections are all present (dense).

Paper: Pan et al., arXiv 2411.06792 (genetic encoding + evolution); GEM, Barabási et al.,
Nat. Commun. 2023 (W = X_out O X_inᵀ). Our choices are listed in ``layers.py`` / docs/genetic.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from spikesculpt.core.io import write_json
from spikesculpt.methods.base import Method
from spikesculpt.methods.genetic.convert import genetic_encode, parameter_report
from spikesculpt.methods.genetic.genome import Genome, apply_genome
from spikesculpt.methods.genetic.layers import gene_layers
from spikesculpt.methods.genetic.options import GeneticConfig
from spikesculpt.methods.registry import register_method

GENE_STREAM = 4_409  # offset of the gene generator's seed from the run seed


def gene_generator(seed: int) -> torch.Generator:
    """The generator that draws O and the encodings of a run with ``seed``."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + GENE_STREAM) % (2 ** 63))


class GeneratedWeightsMethod(Method):
    """Base of the methods whose layers generate their weights (``genetic``, ``lowrank``): after
    every ``optimizer.step()`` it drops the generated weights the layers keep for evaluation
    (fused optimizer steps leave no trace the layers could see)."""

    _encoded: tuple = ()         # the encoded layers whose kept weights a step drops
    _step_hook = None

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, total_steps: int,
               steps_per_epoch: Optional[int] = None) -> "GeneratedWeightsMethod":
        if self._step_hook is not None:
            self._step_hook.remove()
        self._encoded = [layer for _, layer in gene_layers(model)]
        self._step_hook = optimizer.register_step_post_hook(self._after_step)
        return self

    def _after_step(self, optimizer, args, kwargs) -> None:
        for layer in self._encoded:
            layer.invalidate_cache()


@register_method("genetic")
class GeneticMethod(GeneratedWeightsMethod):
    """Gene-encoded layers W = α·X_out O X_inᵀ with one shared O (Pan et al. 2024; GEM 2023)."""

    name = "genetic"
    options_class = GeneticConfig
    config_section = "genetic"

    def __init__(self, options: Optional[GeneticConfig] = None, seed: int = 0):
        options = (options or GeneticConfig()).validate()
        self.gene_dim = int(options.gene_dim)
        self.keep_first = bool(options.keep_first)
        self.keep_last = bool(options.keep_last)
        self.init_std = float(options.init_std)
        self.interaction_init = str(options.interaction_init)
        self.genome = None if options.genome is None else Genome.from_dict(options.genome)
        self.seed = int(seed)
        self.model: Optional[nn.Module] = None
        self.report: dict = {}

    @classmethod
    def from_options(cls, options, seed: int = 0) -> "GeneticMethod":
        return cls(options, seed=seed)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        generator = gene_generator(self.seed)
        model = genetic_encode(model, self.gene_dim, self.keep_first, self.keep_last, generator,
                               init_std=self.init_std, interaction_init=self.interaction_init)
        if self.genome is not None:
            apply_genome(model, self.genome, gene_generator(self.seed), where="the genome")
        self.model = model
        self.report = parameter_report(model)
        return model

    def params(self) -> dict:
        return {"gene_dim": self.gene_dim, "keep_first": self.keep_first,
                "keep_last": self.keep_last, "init_std": self.init_std,
                "interaction_init": self.interaction_init,
                "initial_rule": "evolved genome" if self.genome is not None else "random"}

    REPORT_KEYS = ("params_plain", "compression", "gene_dim", "params_interaction",
                   "params_encodings", "break_even_gene_dim", "generation_macs",
                   "encoded_layers")

    def size_report(self) -> dict:
        """The encoded network's size against the plain architecture (``REPORT_KEYS`` of
        ``parameter_report``; ``evaluate_run`` adds them to its metrics too)."""
        if self.model is None:
            return {}
        report = parameter_report(self.model)
        return {key: report[key] for key in self.REPORT_KEYS}

    def on_fit_end(self, trainer, metrics: dict) -> None:
        super().on_fit_end(trainer, metrics)
        report = parameter_report(trainer.model)
        metrics.update({key: report[key] for key in self.REPORT_KEYS})

    def save_artifacts(self, folder: Path) -> None:
        if self.model is not None:
            write_json(Path(folder) / "genetic.json", parameter_report(self.model))
