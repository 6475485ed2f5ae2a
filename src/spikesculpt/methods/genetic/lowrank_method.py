"""``lowrank``: every encoded layer a plain low-rank product W = α·U Vᵀ, parameter-matched to
``genetic`` (ours: the baseline "a plain per-layer low-rank U·Vᵀ at equal parameter count" of the
design notes §3.3).

It reads the ``genetic`` option section (``config_section = "genetic"``): ``gene_dim`` g sets
the ranks (``lowrank.lowrank_ranks``: the parameter count of the genetic encoding with that g on
the same model, matched to within one layer's N_in + N_out), ``keep_first`` / ``keep_last`` the
layers left plain, ``init_std`` the std of U and V. So a sweep that varies ``genetic.gene_dim``
varies both methods alike, and ``lowrank`` vs ``genetic`` at the same g and seed is a paired
comparison at equal parameters: what the shared gene interaction O buys over independent
low-rank layers. U and V are drawn from the genetic method's seeded stream (``gene_generator``).

metrics.json gets, besides the usual keys (``params_total`` = the low-rank network's count):
``params_plain``, ``compression``, ``params_genetic`` (the count it is matched to) and
``lowrank_ranks`` ``{layer: rank}``; ``params_prunable`` / ``density`` cover the layers left
plain, as for ``genetic``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.core.io import write_json
from spikesculpt.methods.genetic.lowrank import (
    lowrank_encode,
    lowrank_ranks,
    lowrank_report,
)
from spikesculpt.methods.genetic.method import GeneratedWeightsMethod, gene_generator
from spikesculpt.methods.genetic.options import GeneticConfig
from spikesculpt.methods.registry import register_method


@register_method("lowrank")
class LowRankMethod(GeneratedWeightsMethod):
    """Low-rank layers W = α·U Vᵀ with the parameter count of ``genetic`` at the same gene_dim."""

    name = "lowrank"
    options_class = GeneticConfig
    config_section = "genetic"

    def __init__(self, options: Optional[GeneticConfig] = None, seed: int = 0):
        options = (options or GeneticConfig()).validate()
        if options.genome is not None:
            raise UserError("method 'lowrank' has no gene interaction to start from a genome; "
                            "drop --genome (it is for --method genetic)")
        self.gene_dim = int(options.gene_dim)
        self.keep_first = bool(options.keep_first)
        self.keep_last = bool(options.keep_last)
        self.init_std = float(options.init_std)
        self.seed = int(seed)
        self.model: Optional[nn.Module] = None
        self.ranks: dict[str, int] = {}

    @classmethod
    def from_options(cls, options, seed: int = 0) -> "LowRankMethod":
        return cls(options, seed=seed)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        self.ranks = lowrank_ranks(model, self.gene_dim, self.keep_first, self.keep_last)
        if not self.ranks:
            raise UserError("method 'lowrank' found no layer to factorise in this model: it "
                            "needs nn.Linear or nn.Conv2d (groups=1) layers (--keep-first / "
                            "--keep-last may leave none)")
        self.model = lowrank_encode(model, self.ranks, gene_generator(self.seed), self.init_std)
        return self.model

    def params(self) -> dict:
        return {"gene_dim": self.gene_dim, "keep_first": self.keep_first,
                "keep_last": self.keep_last, "init_std": self.init_std,
                "ranks": dict(self.ranks)}

    def size_report(self) -> dict:
        """``params_plain``, ``compression``, ``params_genetic``, ``lowrank_ranks`` (also what
        ``evaluate_run`` adds)."""
        if self.model is None:
            return {}
        report = lowrank_report(self.model, self.gene_dim)
        return {"params_plain": report["params_plain"], "compression": report["compression"],
                "params_genetic": report["params_genetic"], "lowrank_ranks": report["ranks"]}

    def on_fit_end(self, trainer, metrics: dict) -> None:
        super().on_fit_end(trainer, metrics)
        metrics.update(self.size_report())

    def save_artifacts(self, folder: Path) -> None:
        if self.model is not None:
            write_json(Path(folder) / "lowrank.json", lowrank_report(self.model, self.gene_dim))
