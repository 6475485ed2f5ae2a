"""CMA-ES over initial wiring rules (one objective: the fitness), with pycma.

Hansen's CMA-ES (``cma`` on PyPI, numpy only) drives the search; we only translate between its
vectors and :class:`Genome` s. The search starts at the random initial rule (O = 0 as the mean,
so the first generation samples O ~ N(0, (σ0·s)²) — the random rule's distribution —, encodings
N(0, s²), s = ``init_std``) with per-coordinate scales (``CMA_stds``): ``s`` for the entries of O,
0.5 for the log standard deviations and ``0.1·s`` for the encoding means — a mean μ shared by all
entries of X_in and X_out adds a constant block μ_in·μ_out·(Σ O)·11ᵀ to W (every weight of the
layer shifted alike), which at μ ~ s is as large as the random part and silences or saturates
the layer; ``sigma0`` multiplies them all.
pycma minimises, so it is told ``−fitness``.

Seeding: pycma draws its samples with the function in its ``randn`` option (by default numpy's
global ``np.random.randn``, seeded by its ``seed`` option). We hand it the ``randn`` of a private
``np.random.RandomState`` seeded from the run seed instead: nothing else in the process changes
the samples, and pickling the search (after every generation, for ``--resume``) saves the
generator's state with it.
"""

from __future__ import annotations

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.methods.genetic.genome import Genome

LOG_STD_SCALE = 0.5   # CMA scale of the log standard deviations
MEAN_SCALE = 0.1      # CMA scale of the encoding means, in units of init_std (see below)


def import_cma():
    try:
        import cma
    except ImportError:
        raise UserError("spikesculpt evolve needs pycma; install it with "
                        "pip install 'spikesculpt[evolution]' (or pip install cma)") from None
    return cma


class CMASearch:
    """``ask() -> [Genome]``, ``tell([fitness])`` (higher is better); picklable."""

    kind = "cma-es"

    def __init__(self, gene_dim: int, names: list[str], init_std: float, population: int,
                 sigma0: float = 1.0, seed: int = 0):
        cma = import_cma()
        self.gene_dim, self.names = int(gene_dim), list(names)
        x0 = Genome.random_rule(gene_dim, names, init_std).to_vector()
        stds = np.concatenate([np.full(gene_dim * gene_dim, init_std),
                               np.tile([MEAN_SCALE * init_std, LOG_STD_SCALE,
                                        MEAN_SCALE * init_std, LOG_STD_SCALE], len(names))])
        self.rng = np.random.RandomState(int(seed) % (2 ** 32))
        self.es = cma.CMAEvolutionStrategy(x0, sigma0, {
            "popsize": int(population), "randn": self.rng.randn, "seed": float("nan"),
            "CMA_stds": stds, "verbose": -9, "tolfun": 0, "tolx": 0, "tolstagnation": 10 ** 9,
            "tolflatfitness": 10 ** 9, "maxiter": 10 ** 9})
        self._asked = None

    def ask(self) -> list[Genome]:
        self._asked = self.es.ask()
        return [Genome.from_vector(x, self.gene_dim, self.names) for x in self._asked]

    def tell(self, fitness: list[float]) -> None:
        self.es.tell(self._asked, [-float(f) for f in fitness])
        self._asked = None

    def info(self) -> dict:
        return {"algorithm": "CMA-ES (pycma)", "sigma": float(self.es.sigma),
                "dimension": int(self.es.N)}
