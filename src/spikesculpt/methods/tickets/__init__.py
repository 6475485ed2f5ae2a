"""Lottery tickets: the ``ticket`` training method and the primitives the search strategies
(``experiments/lottery``) are built from.

- ``method``: the registered ``ticket`` method (train under a fixed mask; options in
  ``options.py``);
- ``pruning``: magnitude pruning, global or per layer (``magnitude_prune``, one-shot
  ``magnitude_ticket``), densities;
- ``ticket``: the callbacks of one ticket training (fixed mask, search recorder, phase clock);
- ``snapshot``: rewind points (weights, BatchNorm statistics, optimizer state);
- ``score``: score networks of edge-popup / biprop tickets (``ScoreNet``, ``TopK``);
- ``early_bird``: the early-bird detector (``EarlyBirdDetector``, ``mask_distance``);
- ``early_time``: the early-time T' choice;
- ``controls``: the random draws of the lottery controls;
- ``patch``: patch tickets of token models.
"""

from spikesculpt.methods.tickets.method import TicketMethod  # noqa: F401  (registers "ticket")
from spikesculpt.methods.tickets.options import TicketConfig  # noqa: F401
from spikesculpt.methods.tickets.pruning import magnitude_ticket  # noqa: F401

__all__ = ["TicketMethod", "TicketConfig", "magnitude_ticket"]
