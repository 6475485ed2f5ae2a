"""Initial masks: an exact-count Erdős–Rényi random graph per layer.

Each layer keeps exactly ``count_l`` connections (``allocation.layer_counts``) chosen uniformly
at random among its ``N_l`` weights: the G(n, M) Erdős–Rényi graph of SET / ESL (ESL-SNN,
Shen et al., AAAI 2023: "masks initialised as an Erdős–Rényi random graph"), drawn with
``torch.randperm`` from an explicit ``torch.Generator`` so the same seed gives the same masks.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from spikesculpt.sparse.mask import Mask


def random_layer_mask(shape: Sequence[int], count: int, generator: torch.Generator) -> torch.Tensor:
    """Bool tensor of ``shape`` with exactly ``count`` True entries, uniformly placed."""
    numel = 1
    for s in shape:
        numel *= int(s)
    flat = torch.zeros(numel, dtype=torch.bool)
    flat[torch.randperm(numel, generator=generator)[:count]] = True
    return flat.reshape(tuple(shape))


def random_mask(shapes: Mapping[str, Sequence[int]], counts: Mapping[str, int],
                generator: torch.Generator) -> Mask:
    """One random layer mask per name, in the order of ``shapes`` (CPU tensors)."""
    return Mask({n: random_layer_mask(shapes[n], counts[n], generator) for n in shapes})
