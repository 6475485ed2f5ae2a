"""Recordings -> cached frames -> splits: what the readers of event datasets share.

A reader (``data/sets/``) lists its recordings as ``Recording(source, label, test)`` (``source``
names the file in errors: a path, or ``archive.zip:member``), and yields their event streams in
that order; :func:`recording_splits` bins them (``events_to_frames``), caches the frames of the
whole dataset in one entry (keyed by the sources' names, sizes and modification times, T,
binning and output size; the files are only read when that entry is missing) and splits them:
the dataset's own train / test split, and a stratified ``val_fraction`` of the training
recordings (drawn by the run's seed) for validation. Finding and reading the files themselves is
``spikesculpt.data.files``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DataSplits
from spikesculpt.data.events.frame_cache import cached_frames
from spikesculpt.data.events.frame_dataset import frame_splits
from spikesculpt.data.events.frames import check_mode, check_timesteps, events_to_frames


@dataclass(frozen=True)
class Recording:
    source: str          # where it comes from, for messages: a path or "archive.zip:member"
    label: int
    test: bool


def frame_options(defaults: dict) -> dict:
    """The options every event dataset takes: ``bins`` (time | count) plus ``defaults``."""
    return {"bins": "time", **defaults}


Listing = Callable[[], tuple[list[Recording], Iterator[np.ndarray]]]


def recording_splits(name: str, key: dict, listing: Listing, sensor: tuple[int, int, int],
                     timesteps: Optional[int], bins: str, num_classes: int,
                     val_fraction: float, seed: int, size: Optional[tuple[int, int]] = None,
                     window=None, sample_shape: Optional[tuple] = None) -> DataSplits:
    """Frames of a dataset's recordings, cached, split into train / validation / test.

    Args:
        key: the sources' identity (e.g. ``{"sources": fingerprint(...)}``) and the reader's
            options; T, binning, sensor, size and window are added here.
        listing: called only when the frames are not cached: ``(recordings, events)``, where
            ``events`` yields the recordings' event streams in the same order.
        sensor: ``(W, H, P)``; size: ``(H', W')`` to pool into; window: ``(t_start, t_end)``
            (default: each recording's own span, for ``bins=time``), or a callable giving it
            after ``listing()`` has run (a window that depends on the data; the sources in the
            key determine it).
    """
    if timesteps is None:
        raise UserError(f"{name} is binned into frames: give the number of time steps "
                        f"(--timesteps T)")
    t = check_timesteps(timesteps, name)
    check_mode(bins)
    w, h, npol = sensor
    oh, ow = (h, w) if size is None else size
    lazy = callable(window)
    full_key = {**key, "dataset": name, "timesteps": t, "bins": bins, "size": [oh, ow],
                "sensor": list(sensor),
                "window": "from-data" if lazy else (list(window) if window else None)}

    def plan():
        recordings, events = listing()
        if not recordings:
            raise UserError(f"{name}: no recordings found; check the layout under --data-root")
        t0, t1 = (window() if lazy else window) or (None, None)
        frames = (events_to_frames(ev, sensor, t, bins, t0, t1,
                                   None if size is None else (oh, ow)) for ev in events)
        return ([r.label for r in recordings], [r.test for r in recordings], frames)

    fs = cached_frames(name, full_key, (t, npol, oh, ow), plan)
    return frame_splits(name, fs, num_classes, val_fraction, seed, sample_shape)
