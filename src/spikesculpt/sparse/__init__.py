"""The sparsity core: masks, how they are enforced, layer densities, scores, drop/grow.

Knows nothing of methods or the CLI; methods (``spikesculpt.methods``) are built from it.

- ``Mask`` (``mask.py``): parameter name -> bool tensor; densities; packed storage.
- ``layer_counts`` (``allocation.py``): connections per layer for a global density, by a rule
  of ``ALLOCATION_RULES`` (``uniform`` / ``er`` / ``erk``).
- ``random_mask`` (``init.py``): exact-count Erdős–Rényi random masks from a generator.
- ``MaskEnforcer`` (``enforce.py``): keeps pruned weights, their gradients and optimizer state
  at zero through ``register_step_pre_hook`` / ``register_step_post_hook``.
- ``scores.py``: what the scores mean (magnitude, dense gradient) and the Hebbian spike
  coincidence (``HebbianRecorder``).
- ``drop_and_grow`` (``rewire.py``): one constant-count rewiring step of a layer.
- ``GROWTH_RULES`` (``growth.py``): where regrowth goes (``random`` / ``gradient`` / ``hebbian``).
- ``schedule.py``: cosine-decayed rewiring fraction, update steps.
- ``steps.py``: whether the step a hook runs in really happens and how its gradients are
  scaled (AMP ``GradScaler`` with fused optimizers).
"""

from spikesculpt.sparse.allocation import ALLOCATION_RULES, RULES, layer_counts  # noqa: F401
from spikesculpt.sparse.enforce import MaskEnforcer  # noqa: F401
from spikesculpt.sparse.growth import GROWTH_RULES, GrowthRule, create_growth_rule  # noqa: F401
from spikesculpt.sparse.init import random_layer_mask, random_mask  # noqa: F401
from spikesculpt.sparse.mask import Mask  # noqa: F401
from spikesculpt.sparse.rewire import drop_and_grow  # noqa: F401
from spikesculpt.sparse.schedule import cosine_fraction, is_update_step  # noqa: F401
from spikesculpt.sparse.scores import HebbianRecorder, coincidence, is_spiking_module  # noqa: F401
from spikesculpt.sparse.steps import grad_scale, step_skipped, unscaled  # noqa: F401
