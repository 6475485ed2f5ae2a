"""``spikesculpt evolve``: the evolution of the initial wiring rule of gene-encoded networks
(docs/genetic.md).

- ``evolution.py``: the run (generations, state, outputs, final training);
- ``search.py``: the ask/tell base class ``Search``, ``GenomeSpace`` and the registry
  ``SEARCHES``; one file per search: ``cma_es.py`` (``cma-es``, pycma) and ``nsga_ii.py``
  (``nsga-ii``, pymoo), registered by importing them here;
- ``population.py``: scoring a population by a short training (``PopulationScorer``, driving
  ``train.Trainer``), one at a time or batched: ``stacked.py`` (the population as one network),
  ``vmapped.py`` (``torch.func.vmap`` over stacked parameters);
- ``fitness.py``: the spatial-entropy and temporal-difference regularisers;
- ``options.py``: ``EvolutionConfig``; ``report.py``: plots.
"""

from spikesculpt.experiments.evolution import cma_es, nsga_ii  # noqa: F401  (registration)
from spikesculpt.experiments.evolution.search import (  # noqa: F401
    SEARCHES,
    GenomeSpace,
    Search,
    register_search,
)

__all__ = ["SEARCHES", "Search", "GenomeSpace", "register_search"]
