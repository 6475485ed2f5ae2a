"""Genetic encoding of SNN weights and evolution of the initial wiring rules (design notes §3.3).

- ``layers.py``: :class:`GeneLinear`, :class:`GeneConv2d`, the shared :class:`GeneInteraction`;
- ``convert.py``: :func:`genetic_encode` (any model, in place), :func:`parameter_report`;
- ``genome.py``: :class:`Genome` (the initial wiring rule), :func:`apply_genome`;
- ``method.py``: the ``genetic`` training method (``spikesculpt train --method genetic``);
- ``fitness.py``, ``population.py``, ``evolution.py``, ``multiobjective.py``, ``report.py``:
  ``spikesculpt evolve`` (CMA-ES via pycma; NSGA-II via pymoo for several objectives).

    from spikesculpt.methods.genetic import genetic_encode, parameter_report
    model = genetic_encode(create_model("mlp"), gene_dim=16)
"""

from spikesculpt.methods.genetic.convert import (GeneDimWarning, encodable_layers,  # noqa: F401
                                                 genetic_encode, parameter_report)
from spikesculpt.methods.genetic.genome import Genome, apply_genome  # noqa: F401
from spikesculpt.methods.genetic.layers import (GeneConv2d, GeneInteraction,  # noqa: F401
                                                GeneLinear, gene_layers,
                                                invalidate_generated_weights)
from spikesculpt.methods.genetic.method import GeneticMethod  # noqa: F401

__all__ = ["GeneLinear", "GeneConv2d", "GeneInteraction", "gene_layers", "genetic_encode",
           "parameter_report", "encodable_layers", "GeneDimWarning", "Genome", "apply_genome",
           "GeneticMethod", "invalidate_generated_weights"]
