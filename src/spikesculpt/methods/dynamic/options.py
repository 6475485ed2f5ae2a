"""``SparseConfig``: the options of the sparse methods (``static``, ``set``, ``rigl``, ``esl`` and
any method with ``config_section = "sparse"``), declared once, here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from spikesculpt.core.errors import UserError


@dataclass
class SparseConfig:
    """Options of the sparse methods (``static``, ``set``, ``rigl``, ``esl``; see docs/methods.md).

    ``None`` means "the method's own default" (each method documents its defaults, e.g. ESL
    allocates layer densities Erdős–Rényi, RigL ERK), so the values stored in config.yaml are
    the ones the user chose; the resolved values are in metrics.json's ``method_params``.
    """

    density: float = 0.1                 # fraction of prunable weights kept, in (0, 1]
    init: Optional[str] = None           # layer densities: uniform | er | erk
    grow: Optional[str] = None           # regrowth: random | gradient | hebbian
    update_every: Optional[int] = None   # T_iter: optimizer steps between mask updates
    drop_fraction: Optional[float] = None  # alpha_0: fraction rewired at the first update
    update_until: Optional[float] = None   # updates stop at this fraction of training
    dense_first: bool = False            # keep the first prunable layer dense
    dense_last: bool = False             # keep the last prunable layer (readout) dense

    def validate(self) -> "SparseConfig":
        if isinstance(self.density, bool) or not (0 < self.density <= 1):
            raise UserError(f"density must be in (0, 1] (the fraction of connections kept), "
                            f"got {self.density!r}; pass e.g. --density 0.1")
        for name, allowed in (("init", ("uniform", "er", "erk")),
                              ("grow", ("random", "gradient", "hebbian"))):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise UserError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
        if self.update_every is not None and (isinstance(self.update_every, bool)
                                              or self.update_every <= 0):
            raise UserError(f"update_every must be a positive number of steps, got "
                            f"{self.update_every!r}; pass e.g. --update-every 100")
        if self.drop_fraction is not None and not 0 <= self.drop_fraction < 1:
            raise UserError(f"drop_fraction must be in [0, 1), got {self.drop_fraction!r}; "
                            f"pass e.g. --drop-fraction 0.3")
        if self.update_until is not None and not 0 < self.update_until <= 1:
            raise UserError(f"update_until must be in (0, 1] (a fraction of training), got "
                            f"{self.update_until!r}; pass e.g. --update-until 0.75")
        return self
