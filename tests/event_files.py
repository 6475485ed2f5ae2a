"""Writers of tiny files in the real on-disk formats of the event datasets, for the tests.

Written from the format descriptions (not with spikesculpt's readers), byte by byte with
``struct``, so a reader that swaps fields or misreads a bit fails the tests.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------- N-MNIST (ATIS .bin)
def nmnist_bytes(events) -> bytes:
    """``events``: (x, y, p, t_us) tuples; ``("overflow",)`` writes a timestamp-overflow marker."""
    out = bytearray()
    for ev in events:
        if ev == ("overflow",):
            out += bytes([0, 240, 0, 0, 0])
            continue
        x, y, p, t = ev
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def write_nmnist(root: Path, files: dict, as_zip: bool = False) -> Path:
    """``files``: {"Train/0/00001.bin": events, ...} under ``root/N-MNIST``."""
    base = root / "N-MNIST"
    base.mkdir(parents=True, exist_ok=True)
    if not as_zip:
        for rel, events in files.items():
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_bytes(nmnist_bytes(events))
        return base
    for split in ("Train", "Test"):
        with zipfile.ZipFile(base / f"{split}.zip", "w") as z:
            for rel, events in files.items():
                if rel.startswith(split + "/"):
                    z.writestr(rel, nmnist_bytes(events))
    return base


# --------------------------------------------------------------------------- AEDAT 2.0 (CIFAR10-DVS)
AEDAT2_HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                 b"# Data format is int32 address, int32 timestamp (8 bytes total)\r\n")


def aedat2_bytes(events, chip: str = None) -> bytes:
    """``events``: (x_raw, y_raw, p_raw, t_us) as the DVS128 writes them (before the
    CIFAR10-DVS reorientation)."""
    return aedat2_words_bytes([((y << 8) | (x << 1) | p, t) for x, y, p, t in events], chip)


def aedat2_words_bytes(words, chip: str = None) -> bytes:
    """``words``: raw (address, timestamp) pairs, each written as a big-endian 32-bit word
    (modulo 2^32: a timestamp past 2^32 us is written as jAER's wrapped counter); ``chip``: the
    jAER class for a ``# AEChip:`` header line, as jAER writes it."""
    header = AEDAT2_HEADER + (f"# AEChip: {chip}\r\n".encode() if chip else b"")
    return header + b"".join(struct.pack(">II", a % 2**32, t % 2**32) for a, t in words)


DVS128_SYNC = 0x8000            # jAER DVS128: bit 15 = sync / external-input special event
JAER_SPECIAL = 0x80000000       # jAER BasicEvent.SPECIAL_EVENT_BIT_MASK


def davis_dvs_address(x: int, y: int, p: int) -> int:
    """A DAVIS DVS event (jAER DavisChip): y bits 22..30, x bits 12..21, polarity bit 11."""
    return (y << 22) | (x << 12) | (p << 11)


def davis_aps_address(x: int, y: int, read_cycle: int, adc: int) -> int:
    """A DAVIS APS ADC sample: bit 31, x and y as DVS, read cycle bits 10..11, ADC bits 0..9."""
    return 0x80000000 | (y << 22) | (x << 12) | (read_cycle << 10) | adc


def davis_imu_addresses(values) -> list:
    """One DAVIS IMU sample: 7 words 0x80000C00 | sample type << 28 | 16-bit value << 12."""
    return [0x80000C00 | (code << 28) | ((v & 0xFFFF) << 12) for code, v in enumerate(values)]


# --------------------------------------------------------------------------- AEDAT 3.1 (DVS128 Gesture)
AEDAT3_HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


def aedat3_packet(events, overflow: int = 0, event_type: int = 1) -> bytes:
    """One packet: 28-byte header + 8-byte events (x, y, p, t_low31)."""
    n = len(events)
    head = struct.pack("<hhiiiiii", event_type, 1, 8, 4, overflow, n, n, n)
    body = b"".join(struct.pack("<II", (x << 17) | (y << 2) | (p << 1) | 1, t)
                    for x, y, p, t in events)
    return head + body


def write_gesture(root: Path, trials: dict, train: list, test: list,
                  archive: bool = False) -> Path:
    """``trials``: {"user01_led": (aedat bytes, [(class 1..11, start, end)])}."""
    files = {"trials_to_train.txt": "".join(f"{t}.aedat\n" for t in train).encode(),
             "trials_to_test.txt": "".join(f"{t}.aedat\n" for t in test).encode()}
    for name, (data, rows) in trials.items():
        files[f"{name}.aedat"] = data
        csv = "class,startTime_usec,endTime_usec\n" + "".join(f"{c},{s},{e}\n"
                                                             for c, s, e in rows)
        files[f"{name}_labels.csv"] = csv.encode()
    if not archive:
        base = root / "DvsGesture"
        base.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (base / name).write_bytes(data)
        return base
    path = root / "DvsGesture.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"DvsGesture/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --------------------------------------------------------------------------- SHD (HDF5)
def write_shd(path: Path, recordings, gz: bool = False) -> Path:
    """``recordings``: [(times_s array, units array, label)] as an SHD HDF5 file."""
    import h5py

    raw = path.with_suffix("") if gz else path
    with h5py.File(raw, "w") as f:
        n = len(recordings)
        times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u, _) in enumerate(recordings):
            times[i] = np.asarray(t, dtype=np.float32)
            units[i] = np.asarray(u, dtype=np.uint16)
        f.create_dataset("labels", data=np.array([r[2] for r in recordings], dtype=np.uint16))
        f.create_dataset("extra/speaker", data=np.zeros(n, dtype=np.uint16))
    if gz:
        path.write_bytes(gzip.compress(raw.read_bytes()))
        raw.unlink()
    return path
