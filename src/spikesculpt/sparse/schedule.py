"""When and how much to rewire.

ESL-SNN (Shen et al., AAAI 2023) prunes and regrows every ``T_iter`` iterations; the amount
follows RigL's cosine decay (Evci et al., ICML 2020), our choice for ESL:

    α_t = α_0 / 2 · (1 + cos(π · t / t_end)),   t_end = update_until · total_steps

and at an update at optimizer step t, each layer rewires ``n_l = round(α_t · active_l)``
connections. Updates happen when ``t % update_every == 0`` and ``0 < t < t_end``
(t counts finished optimizer steps).
"""

from __future__ import annotations

import math


def cosine_fraction(step: int, alpha0: float, end_step: float) -> float:
    if end_step <= 0 or step >= end_step:
        return 0.0
    return alpha0 / 2 * (1 + math.cos(math.pi * step / end_step))


def is_update_step(step: int, every: int, end_step: float) -> bool:
    return step > 0 and step % every == 0 and step < end_step
