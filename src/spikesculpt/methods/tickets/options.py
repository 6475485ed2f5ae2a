"""``TicketConfig``: the options of the ``ticket`` method, declared once, here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union

from spikesculpt.core.errors import UserError
from spikesculpt.core.options import option
from spikesculpt.sparse import Mask

MASK_HELP = ("the fixed mask: a mask file (masks.safetensors of a sparse run, "
             "level_K/mask.safetensors of a lottery search) or a folder holding one")


@dataclass
class TicketConfig:
    """Options of the ``ticket`` method (train under a fixed mask; see docs/methods.md).

    ``mask`` is a file path (``--mask FILE``) or, from Python, a ``sparse.Mask``. The run's
    hash names the mask by its *contents* (``mask_sha256``, filled in when a run starts), not
    by its path: the same mask copied elsewhere is the same run, an edited file another one.
    """

    # the fixed mask (file or folder, or a Mask); the hash holds mask_sha256 instead
    mask: Optional[Union[str, Mask]] = option(None, help=f"ticket: {MASK_HELP}", hash="never",
                                              none_means="none", metavar="FILE")
    mask_sha256: Optional[str] = option(None, cli=False,
                                        help="resolved: SHA-256 of the mask's contents")

    def validate(self) -> "TicketConfig":
        if isinstance(self.mask, os.PathLike):
            self.mask = os.fspath(self.mask)   # config.yaml stores a plain string
        if self.mask is not None and not isinstance(self.mask, (str, os.PathLike, Mask)):
            raise UserError(f"ticket mask must be a file path or a Mask, got "
                            f"{type(self.mask).__name__}; pass --mask FILE")
        if self.mask_sha256 is not None and not isinstance(self.mask_sha256, str):
            raise UserError(f"ticket mask_sha256 must be a hex string, got {self.mask_sha256!r}")
        return self

    def source(self):
        """The mask given (path or Mask); ``UserError`` when none was."""
        if self.mask is None:
            raise UserError(f"the ticket method trains under a given mask, and none was given; "
                            f"pass --mask FILE ({MASK_HELP}), or mask=... in Python")
        return self.mask
