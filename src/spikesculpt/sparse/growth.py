"""Growth rules: where a rewiring step regrows the connections it dropped.

A rule gives ``drop_and_grow`` its ``grow_score`` per layer (higher = grown first; a layer
without a score grows at random). It is read in the optimizer's pre-step hook of an update step,
*before* the gradients are masked, from:

- ``optimizer`` and ``params`` (``{weight name: parameter}`` of the masked layers), and
- ``recorder``: for a rule with ``records = True``, a ``HebbianRecorder`` that was attached for
  the forward pass of this step (the sparse methods attach it before an update step's batch).

Registered (``GROWTH_RULES``; ``--grow NAME``):

- ``random``: uniform among the inactive connections (SET: Mocanu et al., Nat. Commun. 2018);
- ``gradient``: the largest dense ``|dL/dw|`` (RigL: Evci et al., ICML 2020); under AMP the
  gradient is unscaled first (``steps.unscaled``);
- ``hebbian`` (ours): the largest pre/post spike coincidence of the step's batch
  (``scores.HebbianRecorder``).

A new rule is one class here (or in your own module) registered with
``@GROWTH_RULES.register("name")``; ``--grow name`` and ``SparseConfig`` accept it at once.
"""

from __future__ import annotations

from typing import Optional

import torch

from spikesculpt.core.registry import Registry
from spikesculpt.sparse.scores import HebbianRecorder
from spikesculpt.sparse.steps import unscaled

GROWTH_RULES = Registry("growth rule")


class GrowthRule:
    """Base class: no scores (random growth), no recording."""

    records = False  # True: needs a HebbianRecorder attached during the update step's forward

    def scores(self, optimizer: torch.optim.Optimizer, params: dict[str, torch.nn.Parameter],
               recorder: Optional[HebbianRecorder]) -> dict[str, torch.Tensor]:
        """``{weight name: grow score shaped like the weight}``; missing names grow at random."""
        return {}


@GROWTH_RULES.register("random")
class RandomGrowth(GrowthRule):
    """Regrow uniformly at random among the inactive connections (SET)."""


@GROWTH_RULES.register("gradient")
class GradientGrowth(GrowthRule):
    """Regrow where the dense gradient magnitude ``|dL/dw|`` is largest (RigL)."""

    def scores(self, optimizer, params, recorder):
        return {n: unscaled(optimizer, p.grad.detach()).abs()
                for n, p in params.items() if p.grad is not None}


@GROWTH_RULES.register("hebbian")
class HebbianGrowth(GrowthRule):
    """Regrow where pre- and post-synaptic spikes coincided most in the step's batch (ours)."""

    records = True

    def scores(self, optimizer, params, recorder):
        return {} if recorder is None else recorder.detach()


def create_growth_rule(name: str) -> GrowthRule:
    """The registered growth rule ``name`` (``UserError`` listing the rules if unknown)."""
    return GROWTH_RULES.get(name)()
