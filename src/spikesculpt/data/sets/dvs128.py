"""``dvs128-gesture``: DVS128 Gesture (Amir et al., CVPR 2017).

29 people performing 11 hand and arm gestures (class 11 is "other") under 3 lighting
conditions, recorded by a DVS128 camera (128x128 pixels, 2 polarities). Shipped by IBM as
``DvsGesture.tar.gz`` holding ``DvsGesture/``: one AEDAT 3.1 recording per session
(``user01_fluorescent.aedat``), a ``<session>_labels.csv`` per recording
(``class,startTime_usec,endTime_usec``, classes 1..11) and ``trials_to_train.txt`` /
``trials_to_test.txt`` naming the sessions of each split (users 1-23 train, 24-29 test). Every
labelled segment is one sample (the events with ``start <= t < end``): 1,176 train / 288 test,
as SpikingJelly's ``DVS128Gesture`` cuts them. Validation is a stratified ``val_fraction`` of
the training samples, drawn by the run's seed (samples of one session can land on both sides of
the train/validation line; the test split is the shipped one, other users).

File format (AEDAT 3.1, iniVation): ASCII header lines starting with ``#`` up to
``#!END-HEADER``, then packets: a 28-byte little-endian header (int16 eventType, int16
eventSource, int32 eventSize, int32 eventTSOffset, int32 eventTSOverflow, int32 eventCapacity,
int32 eventNumber, int32 eventValid) followed by ``eventCapacity * eventSize`` bytes. Polarity
packets (type 1) hold 8-byte events: uint32 data (bit 1 polarity, bits 2..16 y, bits 17..31 x)
and uint32 timestamp; the full timestamp is ``eventTSOverflow << 31 | timestamp`` (us). Other
packet types are skipped; the validity bit is ignored, as by SpikingJelly's reader. A packet
cut short is a truncated file; x or y >= 128 is outside the sensor: ``UserError``s naming the
file.

Layout under ``--data-root DIR`` (the first found, up to three folders deep)::

    DIR/.../DvsGesture.tar.gz                          the archive as downloaded
    DIR/.../DvsGesture/trials_to_train.txt, ...        or extracted

Options: ``size=N`` pools 128x128 to NxN (``dvs128-gesture:32``), ``bins=time|count``. Frames
``[T, 2, N, N]``; each sample's own span is cut into T slices (``bins=time``). Do not use
``--augment flip`` here: a mirrored left-arm gesture is the right-arm class.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DataSplits
from spikesculpt.data.events.recordings import Recording, frame_options, recording_splits
from spikesculpt.data.events.stream import check_events, empty_events, make_events
from spikesculpt.data.files import fingerprint, read_file, require_data_root
from spikesculpt.data.options import parse_options
from spikesculpt.data.registry import register_dataset

SENSOR = (128, 128, 2)
NUM_CLASSES = 11
ARCHIVE = "dvsgesture.tar.gz"
EXPECTED = ("DVS128 Gesture as downloaded: DvsGesture.tar.gz, or the extracted DvsGesture/ "
            "folder with trials_to_train.txt, trials_to_test.txt, userNN_*.aedat and "
            "userNN_*_labels.csv")
PACKET_HEADER = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"),
                          ("ts_offset", "<i4"), ("ts_overflow", "<i4"), ("capacity", "<i4"),
                          ("number", "<i4"), ("valid", "<i4")])


def read_aedat31_polarity(data: bytes, source: str) -> np.ndarray:
    """Polarity events of an AEDAT 3.1 file's bytes (see the module docstring)."""
    pos = 0
    while data.startswith(b"#", pos):
        end = data.find(b"\n", pos)
        pos = len(data) if end < 0 else end + 1
        if data[:pos].endswith(b"#!END-HEADER\r\n") or data[:pos].endswith(b"#!END-HEADER\n"):
            break
    parts = []
    while pos < len(data):
        if len(data) - pos < PACKET_HEADER.itemsize:
            raise UserError(f"{source} is truncated: a packet header is cut short at byte "
                            f"{pos}; download the file again")
        head = np.frombuffer(data, dtype=PACKET_HEADER, count=1, offset=pos)[0]
        pos += PACKET_HEADER.itemsize
        size, capacity, number = int(head["size"]), int(head["capacity"]), int(head["number"])
        if size <= 0 or capacity < 0 or not 0 <= number <= capacity:
            raise UserError(f"{source} is corrupt: a packet header at byte "
                            f"{pos - PACKET_HEADER.itemsize} has event size {size}, capacity "
                            f"{capacity}, number {number}; download the file again")
        length = capacity * size
        if len(data) - pos < length:
            raise UserError(f"{source} is truncated: a packet of {length} bytes at byte {pos} "
                            f"has only {len(data) - pos}; download the file again")
        if int(head["type"]) == 1 and number:
            if size < 8:
                raise UserError(f"{source} is corrupt: polarity events of {size} bytes (8 "
                                f"expected)")
            rows = np.frombuffer(data, dtype=np.uint8, count=number * size,
                                 offset=pos).reshape(number, size)[:, :8]
            words = np.ascontiguousarray(rows).view("<u4").astype(np.int64)
            parts.append((words[:, 0], words[:, 1] | (int(head["ts_overflow"]) << 31)))
        pos += length
    if not parts:
        return empty_events()
    d = np.concatenate([a for a, _ in parts])
    t = np.concatenate([b for _, b in parts])
    x, y, p = (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (d >> 1) & 1
    check_events(None, SENSOR, source, raw={"x": x, "y": y, "p": p})
    return make_events(t, x, y, p)


def read_labels_csv(text: str, source: str) -> list[tuple[int, int, int]]:
    """``[(label 0..10, start_us, end_us)]`` of a ``*_labels.csv``."""
    rows = []
    for i, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line or (i == 0 and not line[0].isdigit()):
            continue
        try:
            cls, start, end = (int(float(v)) for v in line.split(",")[:3])
        except ValueError:
            raise UserError(f"{source}: line {i + 1} {line!r} is not 'class,startTime_usec,"
                            f"endTime_usec'; the file is corrupt") from None
        if not 1 <= cls <= NUM_CLASSES:
            raise UserError(f"{source}: line {i + 1} has class {cls}, expected 1..{NUM_CLASSES}")
        rows.append((cls - 1, start, end))
    return rows


def _trial_list(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip().lower().endswith(".aedat")]


def _find(root: Path, name: str, depth: int = 3) -> Optional[Path]:
    """The first file called ``name`` (any case) under ``root``, at most ``depth`` levels down."""
    base = len(root.parts)
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        if len(Path(dirpath).parts) - base >= depth:
            dirs[:] = []
        for f in sorted(files):
            if f.lower() == name:
                return Path(dirpath) / f
    return None


@dataclass
class Trial:
    name: str                  # e.g. user01_fluorescent.aedat
    test: bool
    rows: list                 # [(label, start, end)]


def _trials(lists: dict, csvs: dict, where: str) -> list[Trial]:
    trials = []
    for key, test in (("trials_to_train.txt", False), ("trials_to_test.txt", True)):
        if key not in lists:
            raise UserError(f"dvs128-gesture: {where} has no {key}; expected {EXPECTED}")
        for name in _trial_list(lists[key]):
            csv = name[:-len(".aedat")] + "_labels.csv"
            if csv not in csvs:
                raise UserError(f"dvs128-gesture: {where} lacks {csv} (the labels of {name}); "
                                f"expected {EXPECTED}")
            trials.append(Trial(name, test, read_labels_csv(csvs[csv], f"{where}/{csv}")))
    return trials


def _cut(events: np.ndarray, rows: list) -> Iterator[np.ndarray]:
    t = events["t"]
    for _, start, end in rows:
        yield events[(t >= start) & (t < end)]


def _folder_listing(folder: Path):
    """``(recordings, events)`` of an extracted ``DvsGesture/`` folder."""
    lists = {n: read_file(folder / n).decode("utf-8", "replace")
             for n in ("trials_to_train.txt", "trials_to_test.txt") if (folder / n).is_file()}
    csvs = {p.name: read_file(p).decode("utf-8", "replace")
            for p in folder.iterdir() if p.name.endswith("_labels.csv")}
    trials = _trials(lists, csvs, str(folder))
    files = []
    for tr in trials:
        path = folder / tr.name
        if not path.is_file():
            raise UserError(f"dvs128-gesture: {path} is listed in the trials files but missing; "
                            f"expected {EXPECTED}")
        files.append(path)

    def events():
        for tr, path in zip(trials, files):
            yield from _cut(read_aedat31_polarity(read_file(path), str(path)), tr.rows)

    return _recordings(trials), events()


def _recordings(trials: list[Trial]) -> list[Recording]:
    return [Recording(tr.name, label, tr.test) for tr in trials for label, _, _ in tr.rows]


def _open_tar(archive: Path):
    try:
        return tarfile.open(archive, mode="r|*")
    except (OSError, tarfile.TarError) as exc:
        raise UserError(f"{archive} is not a readable tar archive ({type(exc).__name__}); the "
                        f"download is incomplete or corrupt: download it again") from None


def _members(archive: Path):
    """``(basename, read())`` of the archive's files, streaming; errors name the archive."""
    tar = _open_tar(archive)
    try:
        for m in tar:
            if m.isfile():
                yield os.path.basename(m.name), (lambda m=m: tar.extractfile(m).read())
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise UserError(f"{archive} is truncated or corrupt ({type(exc).__name__}); download it "
                        f"again") from None
    finally:
        tar.close()


def _archive_listing(archive: Path):
    """``(recordings, events)`` of ``DvsGesture.tar.gz``, read as a stream (twice: the labels
    and trial lists first, then the recordings in archive order)."""
    lists, csvs, order = {}, {}, []
    for name, read in _members(archive):
        if name.lower() in ("trials_to_train.txt", "trials_to_test.txt"):
            lists[name.lower()] = read().decode("utf-8", "replace")
        elif name.endswith("_labels.csv"):
            csvs[name] = read().decode("utf-8", "replace")
        elif name.lower().endswith(".aedat"):
            order.append(name)
    trials = {tr.name: tr for tr in _trials(lists, csvs, str(archive))}
    missing = sorted(set(trials) - set(order))
    if missing:
        raise UserError(f"dvs128-gesture: {archive} lacks {missing[0]}, listed in the trials "
                        f"files; download it again")
    ordered = [trials[n] for n in order if n in trials]

    def events():
        for name, read in _members(archive):
            if name in trials:
                yield from _cut(read_aedat31_polarity(read(), f"{archive}:{name}"),
                                trials[name].rows)

    return _recordings(ordered), events()


@register_dataset("dvs128-gesture")
def dvs128_gesture(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
                   timesteps: Optional[int] = None) -> DataSplits:
    """DVS128 Gesture (AEDAT 3.1) under --data-root: [T, 2, N, N] frames, 11 classes."""
    opts = parse_options("dvs128-gesture", arg, frame_options({"size": 128}), positional="size")
    if not 0 < opts["size"] <= 128:
        raise UserError(f"dvs128-gesture: size={opts['size']} must be in 1..128")
    root = require_data_root("dvs128-gesture", data_root, EXPECTED)
    lists = _find(root, "trials_to_train.txt")
    if lists is not None:
        folder = lists.parent
        files = [p for p in folder.iterdir() if p.is_file()
                 and (p.name.endswith((".aedat", "_labels.csv")) or p.name.startswith("trials_"))]
        fp = fingerprint(files, folder)
        listing = lambda: _folder_listing(folder)  # noqa: E731
    else:
        archive = _find(root, ARCHIVE)
        if archive is None:
            raise UserError(f"dvs128-gesture: neither DvsGesture.tar.gz nor trials_to_train.txt "
                            f"found under {root}; expected {EXPECTED}")
        fp = fingerprint([archive], archive.parent)
        listing = lambda: _archive_listing(archive)  # noqa: E731
    size = opts["size"]
    return recording_splits("dvs128-gesture" + (f":{arg}" if arg else ""), {"sources": fp}, listing,
                         SENSOR, timesteps, opts["bins"], NUM_CLASSES, val_fraction, seed,
                         size=None if size == 128 else (size, size))
