"""Train / validation / test splits from cached event frames.

Frames that fit in memory (as float32, at most ``$SPIKESCULPT_FRAMES_IN_MEMORY_GB``, default 4)
become ``TensorDataset``s, which the trainer slices without a per-sample collate; larger ones
(full-size CIFAR10-DVS: 10,000 x T x 2 x 128 x 128) stay memory-mapped on disk and are read
sample by sample through a ``FrameArrayDataset`` (the trainer then uses a ``DataLoader``).
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from spikesculpt.data.base import DataSplits, DatasetInfo, make_splits, stratified_split
from spikesculpt.data.frame_cache import FrameSet
from spikesculpt.errors import UserError


def in_memory_limit_bytes() -> float:
    try:
        return float(os.environ.get("SPIKESCULPT_FRAMES_IN_MEMORY_GB", "4")) * 2 ** 30
    except ValueError:
        raise UserError("SPIKESCULPT_FRAMES_IN_MEMORY_GB must be a number of GiB") from None


class FrameArrayDataset(Dataset):
    """Samples ``(frames float32 [T, *sample_shape], label int64)`` of a memory-mapped
    ``[N, T, ...]`` array, restricted to ``indices``."""

    def __init__(self, frames: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                 sample_shape: tuple):
        self.frames, self.labels = frames, labels
        self.indices = np.asarray(indices, dtype=np.int64)
        self.sample_shape = tuple(sample_shape)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        j = int(self.indices[i])
        x = np.asarray(self.frames[j], dtype=np.float32).reshape(-1, *self.sample_shape)
        return torch.from_numpy(x), torch.tensor(int(self.labels[j]), dtype=torch.int64)


def frame_splits(name: str, train: FrameSet, test: FrameSet, num_classes: int,
                 val_fraction: float, seed: int, sample_shape: Optional[tuple] = None
                 ) -> DataSplits:
    """Hold out a stratified ``val_fraction`` of ``train`` (drawn by ``seed``) for validation.

    ``sample_shape`` reshapes one frame (default: ``(P, H, W)`` as stored; SHD uses ``(700,)``).
    """
    timesteps = int(train.frames.shape[1])
    shape = tuple(sample_shape or train.frames.shape[2:])
    bytes_f32 = 4 * (train.frames.size + test.frames.size)
    if bytes_f32 <= in_memory_limit_bytes():
        x = np.asarray(train.frames, dtype=np.float32).reshape(len(train.labels), timesteps,
                                                               *shape)
        xt = np.asarray(test.frames, dtype=np.float32).reshape(len(test.labels), timesteps,
                                                               *shape)
        return make_splits(name, "frames", x, train.labels, xt, test.labels, num_classes,
                           val_fraction, seed, timesteps=timesteps)
    keep, val = stratified_split(train.labels, val_fraction, seed)
    if len(keep) == 0 or len(val) == 0:
        raise UserError(f"dataset {name!r} has too few training samples ({len(train.labels)}) "
                        f"to hold out a validation split; give it more samples")
    info = DatasetInfo(name, "frames", shape, int(num_classes), timesteps)
    return DataSplits(FrameArrayDataset(train.frames, train.labels, keep, shape),
                      FrameArrayDataset(train.frames, train.labels, val, shape),
                      FrameArrayDataset(test.frames, test.labels,
                                        np.arange(len(test.labels)), shape), info)
