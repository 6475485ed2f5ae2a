"""Events -> frames: bin an event stream into ``T`` frames of per-pixel, per-polarity counts.

    frames = events_to_frames(events, sensor=(34, 34, 2), timesteps=8)      # [8, 2, 34, 34]

A frame holds, for every polarity p (channel 0 = OFF, 1 = ON), row y and column x, the number of
events of that pixel and polarity in its slice of the stream. Two ways to slice (the two of
SpikingJelly's ``integrate_events_by_fixed_frames_number``, with exact integer arithmetic):

- ``mode="time"``: T slices of equal duration. The window is ``[t_start, t_end)``, by default
  ``[t_first, t_last + 1)`` of this stream (each recording is stretched over the T frames);
  an event at time t goes to frame ``floor((t - t_start) * T / (t_end - t_start))``. Events
  outside a given window are dropped.
- ``mode="count"``: T slices with equal numbers of events. Events are ordered by time (stable);
  event i of N goes to frame ``floor(i * T / N)``, so every frame holds ``floor(N/T)`` or
  ``ceil(N/T)`` events.

``size=(H', W')`` pools the sensor into a coarser grid: ``x' = floor(x * W' / W)``,
``y' = floor(y * H' / H)`` (sum of the counts of the pixels that fall into a cell; CIFAR10-DVS
and DVS128 Gesture are usually trained at 48x48 or 64x64 instead of their native 128x128).

An empty stream gives T frames of zeros. ``T <= 0`` is a ``UserError``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from spikesculpt.core.errors import UserError

MODES = ("time", "count")


def check_timesteps(timesteps, what: str = "frames") -> int:
    if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)) \
            or timesteps <= 0:
        raise UserError(f"{what} need a positive number of time steps T, got {timesteps!r}; "
                        f"pass e.g. --timesteps 8")
    return int(timesteps)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UserError(f"unknown frame binning {mode!r}; choose one of: {', '.join(MODES)} "
                        f"(bins=time: equal durations, bins=count: equal event counts)")
    return mode


def frame_bins(t: np.ndarray, timesteps: int, mode: str = "time",
               t_start: Optional[int] = None, t_end: Optional[int] = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, bin)``: which events are kept and the frame index of each kept event."""
    n = len(t)
    t = t.astype(np.int64, copy=False)
    if mode == "count":
        keep = np.ones(n, dtype=bool)
        if t_start is not None:
            keep &= t >= t_start
        if t_end is not None:
            keep &= t < t_end
        idx = np.flatnonzero(keep)
        order = idx[np.argsort(t[idx], kind="stable")]
        bins = np.empty(n, dtype=np.int64)
        bins[order] = (np.arange(len(order), dtype=np.int64) * timesteps) // max(len(order), 1)
        return keep, bins[keep]
    lo = int(t.min()) if t_start is None else int(t_start)
    hi = int(t.max()) + 1 if t_end is None else int(t_end)
    if hi <= lo:
        raise UserError(f"frame window [{lo}, {hi}) us is empty; t_end must be after t_start")
    keep = (t >= lo) & (t < hi)
    bins = ((t[keep] - lo) * timesteps) // (hi - lo)
    return keep, bins


def events_to_frames(events: np.ndarray, sensor: tuple[int, int, int], timesteps: int,
                     mode: str = "time", t_start: Optional[int] = None,
                     t_end: Optional[int] = None,
                     size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Event counts ``[T, P, H, W]`` float32 of one stream (see the module docstring).

    Args:
        events: an ``EVENT_DTYPE`` array (fields t, x, y, p) inside ``sensor``.
        sensor: ``(W, H, P)``.
        timesteps: T > 0.
        mode: ``"time"`` or ``"count"``.
        t_start, t_end: the time window in microseconds (``mode="time"``: the default is the
            stream's own span; both modes drop events outside a given window).
        size: ``(H', W')`` to pool the sensor into, or None for the sensor's own size.
    """
    timesteps = check_timesteps(timesteps)
    check_mode(mode)
    w, h, npol = sensor
    oh, ow = (h, w) if size is None else (int(size[0]), int(size[1]))
    out = np.zeros((timesteps, npol, oh, ow), dtype=np.float32)
    if len(events) == 0:
        return out
    keep, bins = frame_bins(events["t"], timesteps, mode, t_start, t_end)
    x = events["x"][keep].astype(np.int64)
    y = events["y"][keep].astype(np.int64)
    p = events["p"][keep].astype(np.int64)
    if size is not None:
        x = x * ow // w
        y = y * oh // h
    flat = ((bins * npol + p) * oh + y) * ow + x
    out.reshape(-1)[:] = np.bincount(flat, minlength=out.size).astype(np.float32)
    return out
