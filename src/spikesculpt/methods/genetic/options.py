"""``GeneticConfig``: the options of the ``genetic`` method, declared once, here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from spikesculpt.core.errors import UserError
from spikesculpt.core.options import check_choices, option
from spikesculpt.methods.genetic.genome import read_genome_file
from spikesculpt.methods.genetic.layers import INTERACTION_INITS


@dataclass
class GeneticConfig:
    """Options of the ``genetic`` method (gene-encoded layers; see docs/genetic.md), read by
    ``lowrank`` too (its parameter-matched baseline; ``genome`` is genetic's alone).

    ``genome`` is an evolved initial wiring rule (the ``best.genome`` mapping that
    ``spikesculpt evolve`` writes; ``--genome FILE`` reads it); None = the random initial rule.
    It is stored in the config itself, so the run directory's hash names the rule it started from.
    """

    gene_dim: int = option(16, help="genetic: gene dimension g (O is g x g), > 0; lowrank: "
                                    "ranks matched to genetic's parameters at this g")
    keep_first: bool = option(False, help="genetic: leave the first connection layer plain "
                                          "(not encoded)")
    keep_last: bool = option(False, help="genetic: leave the last connection layer (readout) "
                                         "plain")
    init_std: float = option(0.02, flag="--gene-init-std",
                             help="genetic: std of the initial genes and O (random rule)")
    interaction_init: str = option(
        "random", choices=lambda: INTERACTION_INITS, kind="interaction init", hash="if_set",
        help="genetic: initial O: random = N(0, init_std^2) (the paper's random rule); identity "
             "= init_std*I (ours: start as a rank-g low-rank network); a genome sets O itself; "
             "lowrank ignores it")
    genome: Optional[dict] = option(
        None, metavar="FILE.json", read=read_genome_file, none_means="the random initial rule",
        help="genetic: start from an evolved initial wiring rule (evolution.json of "
             "'spikesculpt evolve', or a genome JSON)")

    def validate(self) -> "GeneticConfig":
        if isinstance(self.gene_dim, bool) or not isinstance(self.gene_dim, int) \
                or self.gene_dim <= 0:
            raise UserError(f"gene dimension must be a positive integer, got {self.gene_dim!r}; "
                            f"pass e.g. --gene-dim 16")
        if isinstance(self.init_std, bool) or not self.init_std > 0 \
                or not math.isfinite(self.init_std):
            raise UserError(f"genetic init_std must be > 0, got {self.init_std!r}; pass e.g. "
                            f"--gene-init-std 0.02")
        check_choices(self)
        if self.genome is not None and not isinstance(self.genome, dict):
            raise UserError("genetic genome must be a mapping (the 'genome' written by "
                            "'spikesculpt evolve'); pass it with --genome FILE.json")
        return self
