"""``spikesculpt evolve``: the evolution of the initial wiring rule of gene-encoded networks
(docs/genetic.md) — ``evolution.py`` (the run: generations, state, final training),
``population.py`` / ``stacked.py`` (scoring a population by a short training, batched),
``fitness.py`` (the spatial-entropy and temporal-difference regularisers), ``cma_search.py``
(CMA-ES, pycma) and ``nsga_search.py`` (NSGA-II, pymoo), ``report.py`` (plots)."""
