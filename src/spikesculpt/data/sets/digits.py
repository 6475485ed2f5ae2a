"""``digits``: the 8x8 handwritten digits that ship with scikit-learn (no download).

1,797 grey images of the digits 0-9 (Alpaydin & Kaynak 1998, UCI "Optical Recognition of
Handwritten Digits"; ``sklearn.datasets.load_digits``), pixel values 0..16 scaled to [0, 1],
shape ``[1, 8, 8]`` per sample.

Splits (our choice): a stratified 20% test split (20% of every class, rounded) that is the same
for every seed (359 images, drawn once with seed 0, so results of different seeds are measured
on the same test set), and a stratified ``val_fraction`` (default 10%) of the remaining 1,438
images held out for validation, drawn by the run's seed: 1,295 train / 143 validation / 359
test.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from sklearn.datasets import load_digits

from spikesculpt.data.base import DataSplits, make_splits, stratified_split
from spikesculpt.data.registry import register_dataset

TEST_FRACTION = 0.2
TEST_SEED = 0


@lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images ``[N, 1, 8, 8]`` float32 in [0, 1] and labels ``[N]`` int64."""

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]
    return x, bunch.target.astype(np.int64)


def digits_test_split() -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train_pool, test)`` of the fixed test split."""
    _, y = digits_arrays()
    return stratified_split(y, TEST_FRACTION, TEST_SEED)


@register_dataset("digits")
def digits(arg: str | None, *, seed: int, val_fraction: float, data_root=None,
           timesteps: int | None = None) -> DataSplits:
    """scikit-learn's 8x8 handwritten digits, 1x8x8 in [0, 1], 10 classes (embedded, default)."""
    x, y = digits_arrays()
    pool, test = digits_test_split()
    return make_splits("digits", "static", x[pool], y[pool], x[test], y[test], 10,
                       val_fraction, seed)
