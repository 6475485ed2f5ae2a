"""Genetic encoding of SNN weights and evolution of the initial wiring rules (design notes §3.3).

- ``layers.py``: :class:`GeneLinear`, :class:`GeneConv2d`, the shared :class:`GeneInteraction`;
- ``convert.py``: :func:`genetic_encode` (any model, in place), :func:`parameter_report`;
- ``genome.py``: :class:`Genome` (the initial wiring rule), :func:`apply_genome`;
- ``method.py``: the ``genetic`` training method (``spikesculpt train --method genetic``);
- ``lowrank.py``, ``lowrank_method.py``: the ``lowrank`` method, its parameter-matched baseline
  (plain low-rank layers W = α·U Vᵀ);
The evolution of the initial wiring rule (``spikesculpt evolve``) is a run of its own:
``spikesculpt.experiments.evolution``.

    from spikesculpt.methods.genetic import genetic_encode, parameter_report
    model = genetic_encode(create_model("mlp"), gene_dim=16)
"""

from spikesculpt.methods.genetic.convert import (  # noqa: F401
                                                 GeneDimWarning,
                                                 encodable_layers,
                                                 genetic_encode,
                                                 parameter_report,
)
from spikesculpt.methods.genetic.genome import Genome, apply_genome  # noqa: F401
from spikesculpt.methods.genetic.layers import (  # noqa: F401
                                                 GeneConv2d,
                                                 GeneInteraction,
                                                 GeneLinear,
                                                 gene_layers,
                                                 invalidate_generated_weights,
)
from spikesculpt.methods.genetic.lowrank import (  # noqa: F401
                                                 LowRankConv2d,
                                                 LowRankLinear,
                                                 genetic_parameter_count,
                                                 lowrank_ranks,
)
from spikesculpt.methods.genetic.lowrank_method import LowRankMethod  # noqa: F401
from spikesculpt.methods.genetic.method import GeneticMethod  # noqa: F401

__all__ = ["GeneLinear", "GeneConv2d", "GeneInteraction", "gene_layers", "genetic_encode",
           "parameter_report", "encodable_layers", "GeneDimWarning", "Genome", "apply_genome",
           "GeneticMethod", "invalidate_generated_weights", "LowRankLinear", "LowRankConv2d",
           "LowRankMethod", "genetic_parameter_count", "lowrank_ranks"]
