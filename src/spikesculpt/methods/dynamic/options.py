"""``SparseConfig``: the options of the sparse methods (``static``, ``set``, ``rigl``, ``esl`` and
any method with ``config_section = "sparse"``), declared once, here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from spikesculpt.core.errors import UserError
from spikesculpt.core.options import check_choices, non_negative_int, option, positive_int
from spikesculpt.sparse import ALLOCATION_RULES, GROWTH_RULES

METHODS_OWN = "the method's own"


@dataclass
class SparseConfig:
    """Options of the sparse methods (``static``, ``set``, ``rigl``, ``esl``; see docs/methods.md).

    ``None`` means "the method's own default" (each method documents its defaults, e.g. ESL
    allocates layer densities Erdős–Rényi, RigL ERK), so the values stored in config.yaml are
    the ones the user chose; the resolved values are in metrics.json's ``method_params``.
    The names ``init`` and ``grow`` accept are those registered in ``sparse/``
    (``ALLOCATION_RULES``, ``GROWTH_RULES``).
    """

    density: float = option(0.1, help="sparse methods: fraction of connections kept, in (0, 1]")
    init: Optional[str] = option(None, choices=ALLOCATION_RULES.names, none_means=METHODS_OWN,
                                 help="layer densities")
    grow: Optional[str] = option(None, choices=GROWTH_RULES.names, none_means=METHODS_OWN,
                                 help="regrowth")
    update_every: Optional[int] = option(None, parse=positive_int, none_means=METHODS_OWN,
                                         help="T_iter: optimizer steps between mask updates")
    drop_fraction: Optional[float] = option(
        None, none_means=METHODS_OWN, help="alpha_0: fraction rewired at the first update, [0, 1)")
    update_until: Optional[float] = option(
        None, none_means=METHODS_OWN, help="mask updates stop at this fraction of training")
    grace: Optional[int] = option(
        None, parse=non_negative_int, none_means=METHODS_OWN,
        help="mask updates during which a regrown connection cannot be dropped (0 = none)")
    dense_first: bool = option(False, help="sparse methods, lottery: keep the first prunable "
                                           "layer dense")
    dense_last: bool = option(False, help="sparse methods, lottery: keep the last prunable layer "
                                          "(readout) dense")

    def validate(self) -> "SparseConfig":
        if isinstance(self.density, bool) or not (0 < self.density <= 1):
            raise UserError(f"density must be in (0, 1] (the fraction of connections kept), "
                            f"got {self.density!r}; pass e.g. --density 0.1")
        check_choices(self)
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
        if self.grace is not None and (isinstance(self.grace, bool)
                                       or not isinstance(self.grace, int) or self.grace < 0):
            raise UserError(f"grace must be a whole number of mask updates >= 0, got "
                            f"{self.grace!r}; pass e.g. --grace 1")
        return self
