"""``cma-es``: CMA-ES over initial wiring rules (one objective: the fitness), with pycma.

Hansen's CMA-ES (``cma`` on PyPI, numpy only) drives the search; we only translate between its
vectors and :class:`Genome` s (``Genome.to_vector`` layout, one gene dimension: the space's
``gene_dim``). The search starts at the random initial rule (O = 0 as the mean, so the first
generation samples O ~ N(0, (σ0·s)²) — the random rule's distribution —, encodings N(0, s²),
s = ``init_std``) with per-coordinate scales (``CMA_stds``): ``s`` for the entries of O, 0.5 for
the log standard deviations and ``0.1·s`` for the encoding means — a mean μ shared by all entries
of X_in and X_out adds a constant block μ_in·μ_out·(Σ O)·11ᵀ to W (every weight of the layer
shifted alike), which at μ ~ s is as large as the random part and silences or saturates the
layer; ``sigma0`` multiplies them all. pycma minimises: it is told the loss ``−fitness``.

Seeding: pycma draws its samples with the function in its ``randn`` option (by default numpy's
global ``np.random.randn``, seeded by its ``seed`` option). We hand it the ``randn`` of a private
``np.random.RandomState`` seeded from the run seed instead: nothing else in the process changes
the samples, and pickling the search (after every generation, for ``--resume``) saves the
generator's state with it.
"""

from __future__ import annotations

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.experiments.evolution.search import GenomeSpace, Search, register_search
from spikesculpt.methods.genetic.genome import Genome

LOG_STD_SCALE = 0.5   # CMA scale of the log standard deviations
MEAN_SCALE = 0.1      # CMA scale of the encoding means, in units of init_std (see above)


def import_cma():
    try:
        import cma
    except ImportError:
        raise UserError("spikesculpt evolve needs pycma; install it with "
                        "pip install 'spikesculpt[evolution]' (or pip install cma)") from None
    return cma


@register_search("cma-es")
class CMASearch(Search):
    """CMA-ES (pycma) over ``Genome.to_vector`` of the space's gene dimension; one objective."""

    algorithm = "CMA-ES (pycma)"
    max_objectives = 1

    def __init__(self, space: GenomeSpace, evo, seed: int = 0):
        super().__init__(space, evo, seed)
        cma = import_cma()
        g, s, n_layers = space.gene_dim, space.init_std, len(space.names)
        x0 = Genome.random_rule(g, list(space.names), s).to_vector()
        stds = np.concatenate([np.full(g * g, s),
                               np.tile([MEAN_SCALE * s, LOG_STD_SCALE, MEAN_SCALE * s,
                                        LOG_STD_SCALE], n_layers)])
        self.rng = np.random.RandomState(self.seed % (2 ** 32))
        self.es = cma.CMAEvolutionStrategy(x0, float(evo.sigma0), {
            "popsize": self.population, "randn": self.rng.randn, "seed": float("nan"),
            "CMA_stds": stds, "verbose": -9, "tolfun": 0, "tolx": 0, "tolstagnation": 10 ** 9,
            "tolflatfitness": 10 ** 9, "maxiter": 10 ** 9})
        self._asked = None

    def _ask(self) -> list[Genome]:
        self._asked = self.es.ask()
        return [Genome.from_vector(x, self.space.gene_dim, list(self.space.names))
                for x in self._asked]

    def _tell(self, losses: np.ndarray) -> None:
        self.es.tell(self._asked, [float(v) for v in losses[:, 0]])
        self._asked = None

    def _details(self) -> dict:
        return {"sigma": float(self.es.sigma), "dimension": int(self.es.N)}
