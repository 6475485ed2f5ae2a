"""Event streams: one structured NumPy array per recording, and the checks every reader applies.

An event is ``(t, x, y, p)``:

- ``t``: timestamp in microseconds (int64),
- ``x``, ``y``: pixel column and row, ``0 <= x < W``, ``0 <= y < H`` (int16),
- ``p``: polarity, ``0`` = OFF (log intensity fell), ``1`` = ON (it rose) (int8).

The field names and meanings are Tonic's (``events["x"]`` etc.), so arrays can be handed to Tonic
transforms. A *sensor* is ``(W, H, P)``: width, height and the number of polarities (2 for
event cameras; SHD's 700 cochlea channels are stored as a 700 x 1 sensor with one polarity,
``x`` = channel).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from spikesculpt.core.errors import UserError

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])


def make_events(t, x, y, p) -> np.ndarray:
    """A structured event array from four equally long sequences (cast to ``EVENT_DTYPE``)."""
    t = np.asarray(t)
    n = len(t)
    for name, a in (("x", x), ("y", y), ("p", p)):
        if len(a) != n:
            raise ValueError(f"events: {name} has {len(a)} entries but t has {n}")
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, p
    return ev


def empty_events() -> np.ndarray:
    return np.empty(0, dtype=EVENT_DTYPE)


def check_events(events: np.ndarray, sensor: tuple[int, int, int], source: str,
                 raw: Optional[dict] = None) -> np.ndarray:
    """Raise a ``UserError`` naming ``source`` if any event lies outside ``sensor`` = (W, H, P).

    ``raw`` may hold the coordinate arrays before they were cast to int16 (a reader decoding
    15-bit fields would otherwise wrap large values); they are checked instead when given.
    """
    w, h, npol = sensor
    cols = raw or {"x": events["x"], "y": events["y"], "p": events["p"]}
    for name, limit in (("x", w), ("y", h), ("p", npol)):
        a = np.asarray(cols[name])
        if len(a) == 0:
            continue
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= limit:
            bad = int(np.flatnonzero((a < 0) | (a >= limit))[0])
            value = int(a[bad])
            raise UserError(f"{source}: event {bad} has {name}={value} outside the sensor "
                            f"({w}x{h}, {npol} polarities; {name} must be in 0..{limit - 1}); "
                            f"the file is corrupt or belongs to another dataset")
    return events
