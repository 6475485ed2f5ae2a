"""Lottery-ticket primitives the search strategies (``experiments/lottery``) are built from:
``pruning`` (magnitude pruning, global or per layer), ``ticket`` (training with a fixed mask,
the search recorder), ``snapshot`` (rewind points: weights, BatchNorm statistics, optimizer
state), ``patch`` (patch tickets of token models), ``early_time`` (the early-time T' choice)."""
