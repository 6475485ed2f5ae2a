"""``Search``: the ask/tell interface of the evolution's search algorithms, and their registry.

A search proposes genomes and learns from their scores, one generation at a time::

    search = create_search("cma-es", space, evo, seed=0)
    genomes = search.ask()                 # [Genome] * population, inside ``space``
    search.tell(losses)                    # [P] or [P, k]: values to MINIMISE, candidate order

The public ``ask`` / ``tell`` do the bookkeeping every search shares — one ``tell`` per ``ask``,
the population size, genomes inside the space, the shape and finiteness of the losses, the
generation count — and a search implements one hook each: ``_ask() -> [Genome]`` and
``_tell(losses [P, k])`` (the template-method shape of evosax / evotorch). A search is pickled
whole into the run's checkpoint after every ``tell`` (``RunDir.save_state``): its random state
must live inside it (no global generators), so that a resumed run asks what an uninterrupted one
would.

Losses: ``spikesculpt evolve`` tells ``[−fitness, params_total, synops]``, the columns of its
``--objectives`` in order (``objective_losses``); the first column is always ``−fitness``.

Adding a search: one file with a ``Search`` subclass decorated ``@register_search("name")``, and
its import in ``experiments/evolution/__init__.py`` (docs/genetic.md, "Adding a search").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.core.registry import Registry
from spikesculpt.methods.genetic.genome import LOG_STD_RANGE, Genome

if TYPE_CHECKING:  # read, never imported here (options.py imports this module)
    from spikesculpt.experiments.evolution.options import EvolutionConfig

SEARCHES = Registry("evolution search")


def register_search(name: str) -> Callable:
    """Class decorator: register a ``Search`` subclass under ``name`` (also its ``name``)."""
    def decorator(cls):
        cls.name = name
        return SEARCHES.register(name)(cls)

    return decorator


@dataclass(frozen=True)
class GenomeSpace:
    """What a genome may be: the encoded layers' names (forward order), the gene dimensions
    ``[min_gene_dim, gene_dim]`` and the random rule's scale ``init_std`` (searches centre and
    scale their distributions on it)."""

    names: tuple
    gene_dim: int
    min_gene_dim: int
    init_std: float

    def __post_init__(self):
        if self.min_gene_dim > self.gene_dim:
            raise UserError(f"min gene dimension {self.min_gene_dim} exceeds the gene dimension "
                            f"{self.gene_dim}; pass a larger --gene-dim")

    def contains(self, genome: Genome, gene_dims: tuple[int, int]) -> bool:
        """Whether ``genome`` is valid here with a gene dimension in ``gene_dims`` (inclusive):
        the layer names, a finite O, standard deviations within ``exp(LOG_STD_RANGE)``."""
        lo, hi = (math.exp(v) for v in LOG_STD_RANGE)
        return (gene_dims[0] <= genome.gene_dim <= gene_dims[1]
                and tuple(layer["name"] for layer in genome.layers) == tuple(self.names)
                and bool(np.isfinite(genome.interaction).all())
                and all(math.isfinite(layer[k]) for layer in genome.layers
                        for k in ("in_mean", "out_mean"))
                and all(lo <= layer[k] <= hi for layer in genome.layers
                        for k in ("in_std", "out_std")))


class Search:
    """Base class of the searches (see the module docstring): ``ask`` / ``tell`` / ``info``.

    Subclasses set ``algorithm`` (its name in ``evolution.json``), ``max_objectives`` (None:
    any number) and ``searches_gene_dim`` (True: genomes of every gene dimension of the space;
    False: only ``space.gene_dim``), and implement ``_ask``, ``_tell`` and ``_details``. Their
    ``__init__(space, evo, seed)`` calls this one first, then builds the algorithm.
    """

    name = "search"                  # set by register_search
    algorithm = "search"             # e.g. "CMA-ES (pycma)"
    max_objectives: int | None = None
    searches_gene_dim = False

    def __init__(self, space: GenomeSpace, evo: EvolutionConfig, seed: int = 0):
        self.space = space
        self.population = int(evo.population)
        self.n_objectives = len(evo.objectives)
        self.seed = int(seed)
        self.generation = 0          # tells so far
        self._pending: list[Genome] | None = None
        check_objectives(type(self), self.n_objectives)

    # ------------------------------------------------------------------ the interface
    def gene_dims(self) -> tuple[int, int]:
        """The gene dimensions this search proposes (inclusive range)."""
        g = self.space.gene_dim
        return (self.space.min_gene_dim, g) if self.searches_gene_dim else (g, g)

    def ask(self) -> list[Genome]:
        """The next generation: ``population`` genomes inside the space."""
        if self._pending is not None:
            raise RuntimeError(f"{self.name}: ask() again before tell() of the last population")
        genomes = list(self._ask())
        if len(genomes) != self.population:
            raise RuntimeError(f"{self.name} proposed {len(genomes)} genomes, expected "
                               f"{self.population}")
        bad = [i for i, g in enumerate(genomes) if not self.space.contains(g, self.gene_dims())]
        if bad:
            raise RuntimeError(f"{self.name} proposed genomes outside the space: {bad}")
        self._pending = genomes
        return genomes

    def tell(self, losses) -> None:
        """Scores of the last ``ask``, in its order: ``[P]`` (one objective) or ``[P, k]``,
        to minimise."""
        if self._pending is None:
            raise RuntimeError(f"{self.name}: tell() without ask()")
        values = np.asarray(losses, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.shape != (self.population, self.n_objectives):
            raise ValueError(f"{self.name}: expected losses of shape "
                             f"[{self.population}, {self.n_objectives}], got "
                             f"{list(np.shape(losses))}")
        if not np.isfinite(values).all():
            raise ValueError(f"{self.name}: losses must be finite, got {values.tolist()}")
        self._tell(values)
        self._pending = None
        self.generation += 1

    def info(self) -> dict:
        """What ``evolution.json`` records as ``search``: the algorithm and its state."""
        return {"algorithm": self.algorithm, **self._details()}

    # ------------------------------------------------------------------ the hooks
    def _ask(self) -> list[Genome]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tell(self, losses: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _details(self) -> dict:
        return {}


def check_objectives(cls: type, n_objectives: int) -> None:
    """``UserError`` when search class ``cls`` cannot optimise ``n_objectives`` objectives."""
    if cls.max_objectives is not None and n_objectives > cls.max_objectives:
        several = [n for n in SEARCHES.names() if SEARCHES.get(n).max_objectives is None]
        raise UserError(f"search {cls.name} optimises {cls.max_objectives} objective(s), got "
                        f"{n_objectives}; choose --search {' or '.join(several) or '...'} or "
                        f"fewer --objectives")


def default_search(objectives) -> str:
    """The search used when none is named: CMA-ES for one objective, NSGA-II for several."""
    return "cma-es" if len(objectives) == 1 else "nsga-ii"


def create_search(name: str, space: GenomeSpace, evo: EvolutionConfig, seed: int = 0) -> Search:
    """The registered search ``name`` (``UserError`` listing the others when unknown)."""
    return SEARCHES.get(name)(space, evo, seed)


def objective_losses(results: list[dict], objectives) -> np.ndarray:
    """``[P, k]`` values to minimise, one column per objective: accuracy -> ``−fitness``,
    params -> ``params_total``, synops -> ``synops`` (per validation sample)."""
    columns = {"accuracy": lambda r: -r["fitness"], "params": lambda r: float(r["params_total"]),
               "synops": lambda r: float(r["synops"])}
    return np.array([[columns[o](r) for o in objectives] for r in results], dtype=np.float64)
