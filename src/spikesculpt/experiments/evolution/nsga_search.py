"""NSGA-II over initial wiring rules and gene dimensions (several objectives), with pymoo.

For ``--objectives accuracy,params[,synops]`` the parameter count must be able to change, so
the decision vector also holds the gene dimension: ``[g (real, floored to an integer in
[min_gene_dim, gene_dim]), O_full (gene_dim² values; a candidate uses its top-left g x g block),
then per layer in_mean, log in_std, out_mean, log out_std]``, within box bounds around the
random initial rule (O entries within ±3·s, encoding means within ±s, log stds within
log s ± 2; s =
``init_std``). pymoo's NSGA-II (Deb et al. 2002; default SBX crossover and polynomial mutation)
minimises ``[−fitness, params_total, synops]``. pymoo keeps its own seeded generator inside the
algorithm object, so pickling the search saves everything a resume needs.
"""

from __future__ import annotations

import math

import numpy as np

from spikesculpt.core.errors import UserError
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


class NSGASearch:
    """``ask() -> [Genome]`` (mixed gene dimensions), ``tell(objectives [P, k])`` (minimised)."""

    kind = "nsga-ii"

    def __init__(self, max_gene_dim: int, min_gene_dim: int, names: list[str], init_std: float,
                 population: int, n_objectives: int, generations: int, seed: int = 0):
        NSGA2, Problem = import_pymoo()
        if min_gene_dim > max_gene_dim:
            raise UserError(f"min gene dimension {min_gene_dim} exceeds the gene dimension "
                            f"{max_gene_dim}; pass a larger --gene-dim")
        self.max_g, self.min_g, self.names = int(max_gene_dim), int(min_gene_dim), list(names)
        s, L = float(init_std), len(names)
        g2 = self.max_g ** 2
        ls = math.log(s)
        xl = np.concatenate([[self.min_g], np.full(g2, -3 * s),
                             np.tile([-s, ls - LOG_STD_SPAN, -s, ls - LOG_STD_SPAN], L)])
        xu = np.concatenate([[self.max_g + 1 - 1e-9], np.full(g2, 3 * s),
                             np.tile([s, ls + LOG_STD_SPAN, s, ls + LOG_STD_SPAN], L)])
        self.problem = Problem(n_var=len(xl), n_obj=int(n_objectives), xl=xl, xu=xu)
        self.algorithm = NSGA2(pop_size=int(population))
        self.algorithm.setup(self.problem, termination=("n_gen", int(generations) + 1),
                             seed=int(seed) % (2 ** 31), verbose=False)
        self._pop = None

    def decode(self, x) -> Genome:
        x = np.asarray(x, dtype=np.float64)
        g = int(min(max(math.floor(x[0]), self.min_g), self.max_g))
        full = x[1:1 + self.max_g ** 2].reshape(self.max_g, self.max_g)
        stats = x[1 + self.max_g ** 2:]
        vec = np.concatenate([full[:g, :g].reshape(-1), stats])
        return Genome.from_vector(vec, g, self.names)

    def ask(self) -> list[Genome]:
        self._pop = self.algorithm.ask()
        return [self.decode(x) for x in self._pop.get("X")]

    def tell(self, objectives) -> None:
        self._pop.set("F", np.asarray(objectives, dtype=np.float64))
        self.algorithm.tell(infills=self._pop)
        self._pop = None

    def front(self) -> list[tuple[Genome, np.ndarray]]:
        """The current non-dominated set: ``[(genome, objective vector)]``."""
        opt = self.algorithm.opt
        if opt is None:
            return []
        return [(self.decode(x), np.asarray(f)) for x, f in zip(opt.get("X"), opt.get("F"))]

    def info(self) -> dict:
        return {"algorithm": "NSGA-II (pymoo)", "gene_dims": [self.min_g, self.max_g]}
