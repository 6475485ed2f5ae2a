"""spikesculpt: efficient spiking neural networks, built the way brains build wiring.

Conventions (see docs and ``neurons/``): tensors are time-major, ``[T, B, ...]``; density is the
fraction of weights kept.
"""

__version__ = "0.1.0"

from spikesculpt.errors import UserError  # noqa: F401
