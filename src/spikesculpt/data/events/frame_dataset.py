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

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DatasetInfo, DataSplits, make_splits, stratified_split
from spikesculpt.data.events.frame_cache import FrameSet


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

    @property
    def targets(self) -> np.ndarray:
        """The labels in dataset order (without reading any frames)."""
        return np.asarray(self.labels)[self.indices]

    def __getitem__(self, i: int):
        j = int(self.indices[i])
        x = np.asarray(self.frames[j], dtype=np.float32).reshape(-1, *self.sample_shape)
        return torch.from_numpy(x), torch.tensor(int(self.labels[j]), dtype=torch.int64)


def frame_splits(name: str, fs: FrameSet, num_classes: int, val_fraction: float, seed: int,
                 sample_shape: Optional[tuple] = None) -> DataSplits:
    """Train / validation / test splits of the frames ``fs``: its test recordings
    (``fs.test``), and the others with a stratified ``val_fraction`` (drawn by ``seed``) held
    out for validation.

    ``sample_shape`` reshapes one frame (default: ``(P, H, W)`` as stored; SHD uses ``(700,)``).
    """
    timesteps = int(fs.frames.shape[1])
    shape = tuple(sample_shape or fs.frames.shape[2:])
    labels = np.asarray(fs.labels)
    train_idx, test_idx = np.flatnonzero(~fs.test), np.flatnonzero(fs.test)
    if len(train_idx) == 0 or len(test_idx) == 0:
        missing = "training" if len(train_idx) == 0 else "test"
        raise UserError(f"{name}: no {missing} recordings found; both splits are needed (see "
                        f"README, 'Datasets')")
    n_used = len(train_idx) + len(test_idx)
    if 4 * n_used * int(np.prod(fs.frames.shape[1:])) <= in_memory_limit_bytes():
        def dense(idx):
            return np.asarray(fs.frames[idx], dtype=np.float32).reshape(len(idx), timesteps,
                                                                         *shape)
        return make_splits(name, "frames", dense(train_idx), labels[train_idx],
                           dense(test_idx), labels[test_idx], num_classes, val_fraction, seed,
                           timesteps=timesteps)
    keep, val = stratified_split(labels[train_idx], val_fraction, seed)
    if len(keep) == 0 or len(val) == 0:
        raise UserError(f"dataset {name!r} has too few training samples ({len(train_idx)}) "
                        f"to hold out a validation split; give it more samples")
    info = DatasetInfo(name, "frames", shape, int(num_classes), timesteps)
    return DataSplits(FrameArrayDataset(fs.frames, labels, train_idx[keep], shape),
                      FrameArrayDataset(fs.frames, labels, train_idx[val], shape),
                      FrameArrayDataset(fs.frames, labels, test_idx, shape), info)
