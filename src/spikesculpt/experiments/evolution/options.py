"""``EvolutionConfig``: the options of ``spikesculpt evolve``, declared once, here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from spikesculpt.core.checks import require_finite
from spikesculpt.core.errors import UserError
from spikesculpt.experiments.evolution.search import SEARCHES, check_objectives, default_search


@dataclass
class EvolutionConfig:
    """Options of ``spikesculpt evolve`` (evolution of the initial wiring rule; docs/genetic.md).

    The network, data and training options (including the short training's optimizer, lr and
    batch size, and the final training's ``epochs``) come from the ``TrainConfig`` beside it.
    """

    population: int = 8            # candidates per generation (>= 2)
    generations: int = 5           # generations (> 0)
    eval_epochs: int = 1           # epochs of the short training that scores a candidate
    sigma0: float = 1.0            # CMA-ES initial step size, in units of each gene's scale
    lambda_spatial: float = 0.05   # λ_s(0): weight of the spatial entropy of O
    lambda_temporal: float = 0.05  # λ_d(0): weight of the temporal difference of the encodings
    spatial: bool = True           # use the spatial-entropy regulariser
    temporal: bool = True          # use the temporal-difference regulariser
    objectives: list = field(default_factory=lambda: ["accuracy"])  # accuracy[,params][,synops]
    search: Optional[str] = None   # SEARCHES name; None: cma-es (one objective) / nsga-ii
    min_gene_dim: int = 2          # nsga-ii: gene dimensions searched in [min, gene_dim]
    batched: str = "auto"          # population evaluation: auto | stack | vmap | off
    workers: int = 1               # processes for one-at-a-time evaluation (batched off / fallback)

    OBJECTIVES = ("accuracy", "params", "synops")
    NOT_HASHED = ("batched", "workers")   # how candidates are evaluated, not what

    def search_name(self) -> str:
        """The search that runs: ``search``, or the objectives' default (``default_search``)."""
        return self.search or default_search(self.objectives)

    def hashed_dict(self) -> dict:
        """The fields that can change the result. ``search`` only when it differs from the
        objectives' default: naming the default search is the same run (and the hashes of
        directories made before the option existed stay)."""
        values = {k: v for k, v in asdict(self).items() if k not in self.NOT_HASHED}
        if values["search"] is None or values["search"] == default_search(self.objectives):
            values.pop("search")
        return values

    def validate(self) -> "EvolutionConfig":
        for name, low, flag in (("population", 2, "--population 8"),
                                ("generations", 1, "--generations 5"),
                                ("eval_epochs", 1, "--eval-epochs 1"),
                                ("workers", 1, "--workers 2"), ("min_gene_dim", 1, "")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"{name.replace('_', ' ')} must be an integer >= {low}, got "
                                f"{value!r}" + (f"; pass e.g. {flag}" if flag else ""))
        for name in ("sigma0", "lambda_spatial", "lambda_temporal"):
            require_finite(name, getattr(self, name), f"--{name.replace('_', '-')} 0.1")
        if not self.sigma0 > 0:
            raise UserError(f"sigma0 must be > 0, got {self.sigma0!r}; pass e.g. --sigma0 1.0")
        for name in ("lambda_spatial", "lambda_temporal"):
            if not getattr(self, name) >= 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        objectives = list(self.objectives) if isinstance(self.objectives, (list, tuple)) \
            else [self.objectives]
        for o in objectives:
            if o not in self.OBJECTIVES:
                raise UserError(f"unknown objective {o!r}; choose from: "
                                f"{', '.join(self.OBJECTIVES)} (e.g. --objectives "
                                f"accuracy,params,synops)")
        if "accuracy" not in objectives or len(set(objectives)) != len(objectives):
            raise UserError(f"objectives must include accuracy once, got {objectives}; e.g. "
                            f"--objectives accuracy,params")
        self.objectives = objectives
        if self.search is not None:
            check_objectives(SEARCHES.get(self.search), len(objectives))
        if self.batched not in ("auto", "stack", "vmap", "off"):
            raise UserError(f"unknown batched mode {self.batched!r}; choose one of: auto, stack, "
                            f"vmap, off")
        return self
