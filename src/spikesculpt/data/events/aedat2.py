"""jAER AEDAT 2.0 recordings of a DVS128 camera: header, addresses and timestamps.

File format (jAER; iniVation's "AEDAT 2.0"): ASCII header lines starting with ``#`` (the first
is ``#!AER-DAT2.0``; jAER names the camera's Java class in a line ``# AEChip: <class>``), then
big-endian 32-bit pairs ``(address, timestamp)``.

What an address means depends on the camera (jAER's chip classes):

- **DVS128** (``ch.unizh.ini.jaer.chip.retina.DVS128``; ``Tmpdiff128``, the same chip, writes
  the same): polarity in bit 0, x in bits 1..7, y in bits 8..14. Bit 15 marks a special event
  (sync / external input) and bit 31 is jAER's special-event flag: jAER's DVS128 extractor
  skips both, and so do we. Bits 16..30 are never set: the camera's addresses are 16 bits.
- **DAVIS** cameras (``eu.seebetter.ini.chips.davis.DAVIS240C``, DAVIS346, ...): bit 31 clear is
  a DVS event with y in bits 22..30, x in bits 12..21, polarity in bit 11 (bit 10 set: an
  external-input special event); bit 31 set is an APS (frame) ADC sample at the same x, y (read
  cycle in bits 10..11, ADC value in bits 0..9) or, with bits 10 and 11 both set, an IMU sample.

Read with DVS128 masks, a DAVIS240C recording turns into nonsense (every event at x_raw = 0,
p_raw = 0). So a recording is refused (``UserError``) when its ``# AEChip`` line names another
camera, or, whatever the header says, when any address sets bits 16..30.

Timestamps are jAER's signed 32-bit microsecond counter, which wraps every 2^32 us (71.6 min):
from 2^31 - 1 to -2^31, and from -1 to 0. They are read as int32 and unwrapped: each step
between consecutive words is taken modulo 2^32 in [-2^31, 2^31), so
``t[0] = int32(ts[0])`` and ``t[i] = t[i-1] + ((ts[i] - ts[i-1] + 2^31) mod 2^32 - 2^31)``
(int64 us): a recording that passes either wrap point stays monotonic.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional

import numpy as np

from spikesculpt.core.errors import UserError

DVS128_CHIPS = ("dvs128", "tmpdiff128")     # jAER class names (after the last dot), any case
SPECIAL_BITS = 0x8000_8000                  # bit 15 (sync / external input), bit 31 (special)
FOREIGN_BITS = 0x7FFF_0000                  # bits 16..30: never set by a DVS128
WRAP = 1 << 32                              # period of jAER's 32-bit microsecond counter
_CHIP_LINE = re.compile(rb"^#\s*AEChip:\s*(\S+)", re.MULTILINE)


class Dvs128Events(NamedTuple):
    """The DVS events of a recording, in file order, as the camera wrote them (int64 arrays)."""
    t: np.ndarray       # microseconds, unwrapped
    x: np.ndarray       # 0..127, address bits 1..7
    y: np.ndarray       # 0..127, address bits 8..14
    p: np.ndarray       # address bit 0 (jAER: 0 = ON, 1 = OFF)


def split_header(data: bytes) -> tuple[bytes, int]:
    """``(header, offset)``: the ``#`` lines at the start and the offset of the first data byte."""
    pos = 0
    while data.startswith(b"#", pos):
        end = data.find(b"\n", pos)
        if end < 0:
            return data, len(data)
        pos = end + 1
    return data[:pos], pos


def header_chip(header: bytes) -> Optional[str]:
    """The Java class of the ``# AEChip:`` header line (e.g. ``...retina.DVS128``), or None."""
    m = _CHIP_LINE.search(header)
    return m.group(1).decode("ascii", errors="replace") if m else None


def is_dvs128_chip(chip: str) -> bool:
    return chip.rsplit(".", 1)[-1].lower() in DVS128_CHIPS


def davis_extent(addr: np.ndarray) -> str:
    """How the addresses would read on a DAVIS camera: the span of its DVS words' x and y."""
    dvs = addr[(addr & 0x8000_0000) == 0]
    if len(dvs) == 0:
        return "only APS / IMU words if read as a DAVIS camera's"
    x, y = (dvs >> 12) & 0x3FF, (dvs >> 22) & 0x1FF
    return (f"read as a DAVIS camera's, its DVS events span x 0..{int(x.max())}, "
            f"y 0..{int(y.max())}")


def check_sensor(chip: Optional[str], addr: np.ndarray, source: str, dataset: str,
                 fix: str) -> None:
    """Refuse a recording of another camera: by its ``# AEChip`` line, else by its addresses."""
    expected = f"{dataset} recordings come from a DVS128 (128x128, 15-bit jAER addresses)"
    if chip is not None and not is_dvs128_chip(chip):
        raise UserError(f"{source} was recorded by {chip.rsplit('.', 1)[-1]} (header line "
                        f"'# AEChip: {chip}'), but {expected}; {fix}")
    foreign = np.flatnonzero(addr & FOREIGN_BITS)
    if len(foreign):
        i = int(foreign[0])
        raise UserError(f"{source} holds addresses a DVS128 never writes ({len(foreign)} of "
                        f"{len(addr)} set bits 16-30, the first 0x{int(addr[i]):08X} at word "
                        f"{i}; {davis_extent(addr)}): it was recorded by another camera, but "
                        f"{expected}; {fix}")


def unwrap_timestamps(ts: np.ndarray) -> np.ndarray:
    """int64 microseconds from jAER's wrapping int32 timestamps (see the module docstring)."""
    t = ts.astype(np.int64)
    if len(t) < 2:
        return t
    steps = (np.diff(t) + WRAP // 2) % WRAP - WRAP // 2
    return np.concatenate([t[:1], t[0] + np.cumsum(steps)])


def read_dvs128(data: bytes, source: str, dataset: str, fix: str) -> Dvs128Events:
    """The DVS events of a DVS128 AEDAT 2.0 file's bytes; special events skipped.

    ``UserError`` naming ``source`` for a truncated file and for another camera's recording
    (``dataset`` and ``fix`` complete that message).
    """
    header, offset = split_header(data)
    body = data[offset:]
    if len(body) % 8:
        raise UserError(f"{source} is truncated or corrupt: its {len(body)} data bytes are not "
                        f"a whole number of 8-byte AEDAT 2.0 events; download it again")
    words = np.frombuffer(body, dtype=">i4").reshape(-1, 2)
    addr = words[:, 0].astype(np.int64) & 0xFFFF_FFFF
    check_sensor(header_chip(header), addr, source, dataset, fix)
    t = unwrap_timestamps(words[:, 1])
    event = (addr & SPECIAL_BITS) == 0
    addr, t = addr[event], t[event]
    return Dvs128Events(t, (addr >> 1) & 0x7F, (addr >> 8) & 0x7F, addr & 1)
