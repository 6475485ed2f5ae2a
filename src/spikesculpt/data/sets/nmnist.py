"""``nmnist``: N-MNIST (Orchard, Jayawant, Cohen & Thakor, Front. Neurosci. 2015).

The 70,000 MNIST digits recorded by an ATIS event camera (34x34 pixels, 2 polarities) moving
along three ~100 ms saccades. Shipped as ``Train.zip`` (60,000 recordings) and ``Test.zip``
(10,000), each holding ``Train/<digit>/<id>.bin``. The split is the shipped one; a stratified
``val_fraction`` of the training recordings (drawn by the run's seed) is held out for validation.

File format (ATIS ``.bin``, Orchard's ``Read_Ndataset.m`` / ``eventvision.py``): 5 bytes per
event, big-endian bit fields::

    byte 0: x (8 bits)        byte 1: y (8 bits)
    byte 2: bit 7 polarity (1 = ON), bits 6..0 timestamp bits 22..16
    bytes 3, 4: timestamp bits 15..0  (microseconds)

An event with ``y == 240`` is a timestamp-overflow marker (not an event): it adds 2^13 us to its
own and every later timestamp (as the reference reader does). A file whose length is not a
multiple of 5 is truncated; an event with x or y >= 34 lies outside the sensor: both are
``UserError``s naming the file.

Layout under ``--data-root DIR`` (any of these; names in any letter case)::

    DIR/N-MNIST/Train.zip, DIR/N-MNIST/Test.zip            the archives as downloaded
    DIR/N-MNIST/Train/0/00002.bin ... Test/9/...            or extracted
    (NMNIST/ or nmnist/ instead of N-MNIST/, or DIR itself holding Train and Test)

Options: ``nmnist:bins=count`` (time | count, see ``spikesculpt.data.events.frames``),
``size=N`` to pool the 34x34 sensor to NxN. Frames ``[T, 2, 34, 34]``; each recording's own span is cut into
T equal slices (``bins=time``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DataSplits
from spikesculpt.data.events.recordings import Recording, frame_options, recording_splits
from spikesculpt.data.events.stream import check_events, make_events
from spikesculpt.data.files import (
    ZipReader,
    child,
    find_dataset_dir,
    fingerprint,
    read_file,
    require_data_root,
    walk_files,
)
from spikesculpt.data.options import parse_options
from spikesculpt.data.registry import register_dataset

SENSOR = (34, 34, 2)
OVERFLOW_Y = 240
OVERFLOW_US = 2 ** 13
EXPECTED = ("N-MNIST as downloaded: N-MNIST/Train.zip and Test.zip, or the extracted "
            "N-MNIST/Train/<digit>/*.bin and Test/<digit>/*.bin")


def read_nmnist_bin(data: bytes, source: str) -> np.ndarray:
    """Events of one N-MNIST ``.bin`` file's bytes (see the module docstring)."""
    if len(data) % 5:
        raise UserError(f"{source} is truncated or corrupt: {len(data)} bytes is not a whole "
                        f"number of 5-byte N-MNIST events; download it again")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = raw[:, 0], raw[:, 1]
    p = raw[:, 2] >> 7
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    overflow = y == OVERFLOW_Y
    t = t + OVERFLOW_US * np.cumsum(overflow)
    keep = ~overflow
    x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    check_events(None, SENSOR, source, raw={"x": x, "y": y, "p": p})
    return make_events(t, x, y, p)


def _looks_right(d: Path) -> bool:
    return all(child(d, s, True) is not None or child(d, s + ".zip", False) is not None
               for s in ("Train", "Test"))


def _digit(name: str, source: str) -> int:
    if not (len(name) == 1 and name.isdigit()):
        raise UserError(f"N-MNIST: {source} is not in a digit folder (Train/<0-9>/*.bin); "
                        f"expected {EXPECTED}")
    return int(name)


def list_nmnist(root: Path) -> tuple[list[Recording], list[Callable[[], bytes]], str]:
    """The recordings under ``root`` (train first, then test), how to read each, and the
    sources' fingerprint."""
    recs: list[Recording] = []
    loaders: list[Callable[[], bytes]] = []
    prints = []
    for split in ("Train", "Test"):
        test = split == "Test"
        folder = child(root, split, want_dir=True)
        if folder is not None:
            files = walk_files(folder, ".bin")
            if not files:
                raise UserError(f"N-MNIST: {folder} holds no .bin files; expected {EXPECTED}")
            for f in files:
                recs.append(Recording(str(f), _digit(f.parent.name, str(f)), test))
                loaders.append(lambda f=f: read_file(f))
            prints.append(fingerprint(files, root))
            continue
        archive = child(root, split + ".zip", want_dir=False)
        z = ZipReader(archive)
        members = sorted(m for m in z.names() if m.lower().endswith(".bin")
                         and not Path(m).name.startswith("."))
        if not members:
            raise UserError(f"N-MNIST: {archive} holds no .bin files; expected {EXPECTED}")
        for m in members:
            src = f"{archive}:{m}"
            recs.append(Recording(src, _digit(Path(m).parent.name, src), test))
            loaders.append(lambda m=m, z=z: z.read(m))
        prints.append(fingerprint([archive], root))
    return recs, loaders, "+".join(prints)


@register_dataset("nmnist")
def nmnist(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
           timesteps: Optional[int] = None) -> DataSplits:
    """N-MNIST (ATIS .bin) under --data-root: [T, 2, 34, 34] event frames, 10 classes."""
    opts = parse_options("nmnist", arg, frame_options({"size": 0}), positional="size")
    if not 0 <= opts["size"] <= 34:
        raise UserError(f"nmnist: size={opts['size']} must be in 1..34 (0 = the sensor's 34)")
    root = require_data_root("nmnist", data_root, EXPECTED)
    folder = find_dataset_dir(root, ("N-MNIST", "NMNIST", "n_mnist"), _looks_right)
    if folder is None:
        raise UserError(f"nmnist: no Train and Test (folders or .zip) under {root}; expected "
                        f"{EXPECTED}")
    recs, loaders, fp = list_nmnist(folder)
    size = (opts["size"], opts["size"]) if opts["size"] else None

    def events():
        for rec, load in zip(recs, loaders):
            yield read_nmnist_bin(load(), rec.source)

    return recording_splits("nmnist" + (f":{arg}" if arg else ""), {"sources": fp},
                         lambda: (recs, events()), SENSOR, timesteps, opts["bins"], 10,
                         val_fraction, seed, size=size)
