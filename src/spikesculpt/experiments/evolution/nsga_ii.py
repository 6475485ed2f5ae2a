"""``nsga-ii``: NSGA-II over initial wiring rules and gene dimensions, with pymoo.

For ``--objectives accuracy,params[,synops]`` the parameter count must be able to change, so
the decision vector also holds the gene dimension: ``[g (real, floored to an integer in
[min_gene_dim, gene_dim]), O_full (gene_dim² values; a candidate uses its top-left g x g block),
then per layer in_mean, log in_std, out_mean, log out_std]``, within box bounds around the
random initial rule (O entries within ±3·s, encoding means within ±s, log stds within
log s ± 2; s = ``init_std``). pymoo's NSGA-II (Deb et al. 2002; default SBX crossover and
polynomial mutation) minimises the losses ``[−fitness, params_total, synops]``. pymoo keeps its
own seeded generator inside the algorithm object, so pickling the search saves everything a
resume needs.
"""

from __future__ import annotations

import math

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.experiments.evolution.search import GenomeSpace, Search, register_search
from spikesculpt.methods.genetic.genome import Genome

LOG_STD_SPAN = 2.0


def import_pymoo():
    try:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
    except ImportError:
        raise UserError("several objectives need pymoo (NSGA-II); install it with "
                        "pip install 'spikesculpt[evolution]' (or pip install pymoo)") from None
    return NSGA2, Problem


@register_search("nsga-ii")
class NSGASearch(Search):
    """NSGA-II (pymoo) over the gene dimension, O and the encoding statistics; any number of
    objectives. Genomes of one generation may have different gene dimensions."""

    algorithm = "NSGA-II (pymoo)"
    searches_gene_dim = True

    def __init__(self, space: GenomeSpace, evo, seed: int = 0):
        super().__init__(space, evo, seed)
        NSGA2, Problem = import_pymoo()
        self.max_g, self.min_g = space.gene_dim, space.min_gene_dim
        s, n_layers = float(space.init_std), len(space.names)
        g2 = self.max_g ** 2
        ls = math.log(s)
        xl = np.concatenate([[self.min_g], np.full(g2, -3 * s),
                             np.tile([-s, ls - LOG_STD_SPAN, -s, ls - LOG_STD_SPAN], n_layers)])
        xu = np.concatenate([[self.max_g + 1 - 1e-9], np.full(g2, 3 * s),
                             np.tile([s, ls + LOG_STD_SPAN, s, ls + LOG_STD_SPAN], n_layers)])
        self.problem = Problem(n_var=len(xl), n_obj=self.n_objectives, xl=xl, xu=xu)
        self.nsga2 = NSGA2(pop_size=self.population)
        self.nsga2.setup(self.problem, termination=("n_gen", int(evo.generations) + 1),
                         seed=self.seed % (2 ** 31), verbose=False)
        self._pop = None

    def decode(self, x) -> Genome:
        x = np.asarray(x, dtype=np.float64)
        g = int(min(max(math.floor(x[0]), self.min_g), self.max_g))
        full = x[1:1 + self.max_g ** 2].reshape(self.max_g, self.max_g)
        stats = x[1 + self.max_g ** 2:]
        vec = np.concatenate([full[:g, :g].reshape(-1), stats])
        return Genome.from_vector(vec, g, list(self.space.names))

    def _ask(self) -> list[Genome]:
        self._pop = self.nsga2.ask()
        return [self.decode(x) for x in self._pop.get("X")]

    def _tell(self, losses: np.ndarray) -> None:
        self._pop.set("F", losses)
        self.nsga2.tell(infills=self._pop)
        self._pop = None

    def _details(self) -> dict:
        return {"gene_dims": [self.min_g, self.max_g]}
