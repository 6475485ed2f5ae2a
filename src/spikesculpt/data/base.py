"""What a dataset hands the training loop: three splits and a description of one sample.

Layouts (per sample, without the batch axis):

- ``static`` images ``[C, H, W]`` or flat features ``[F]``: encoded to ``[T, B, ...]`` by the
  trainer (``--encoding direct | poisson | latency``).
- ``frames``: event frames ``[T, C, H, W]`` (C = 2 polarities for event cameras), stored
  batch-first ``[B, T, C, H, W]`` and transposed to time-major by the trainer.

Splits are ``torch.utils.data.Dataset``s; in-memory data are ``TensorDataset(x float32,
y int64)``, which the trainer slices without a per-sample collate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from spikesculpt.core.errors import UserError


@dataclass(frozen=True)
class DatasetInfo:
    """One sample's layout and the label count.

    ``input_shape`` is the per-sample shape *without* time: ``(C, H, W)``, ``(F,)``, or for
    frames the shape of one frame ``(C, H, W)``; ``timesteps`` is the frame count of ``frames``
    data (None for static data, whose T is chosen at encoding time).
    """

    name: str
    kind: str                      # "static" | "frames"
    input_shape: tuple
    num_classes: int
    timesteps: Optional[int] = None

    @property
    def image_size(self) -> Optional[tuple[int, int]]:
        """``(H, W)`` for image-like samples, None for flat feature vectors."""
        return tuple(self.input_shape[-2:]) if len(self.input_shape) == 3 else None

    @property
    def in_channels(self) -> int:
        return int(self.input_shape[0]) if len(self.input_shape) == 3 else 1

    @property
    def in_features(self) -> int:
        return math.prod(self.input_shape)


@dataclass
class DataSplits:
    train: Dataset
    val: Dataset
    test: Dataset
    info: DatasetInfo

    def sizes(self) -> dict:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)``: ``round(fraction·n_c)`` samples of every class c held out
    (at least one where a class has two or more), drawn by a ``numpy`` generator seeded with
    ``seed``. Both index arrays are sorted, so the order of the data is kept."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        held.append(rng.permutation(idx)[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx


def tensor_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32),
                         torch.as_tensor(y, dtype=torch.int64))


def make_splits(name: str, kind: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray,
                y_test: np.ndarray, num_classes: int, val_fraction: float, seed: int,
                timesteps: Optional[int] = None) -> DataSplits:
    """Hold out a stratified ``val_fraction`` of the training data (by ``seed``) and wrap all
    three splits as tensor datasets."""
    keep, val = stratified_split(y, val_fraction, seed)
    if len(keep) == 0 or len(val) == 0:
        raise UserError(f"dataset {name!r} has too few training samples ({len(y)}) to hold out "
                        f"a validation split; give it more samples")
    shape = tuple(x.shape[2:]) if kind == "frames" else tuple(x.shape[1:])
    info = DatasetInfo(name, kind, shape, int(num_classes), timesteps)
    return DataSplits(tensor_dataset(x[keep], y[keep]), tensor_dataset(x[val], y[val]),
                      tensor_dataset(x_test, y_test), info)
