"""What the readers of native event datasets share: finding the data under ``--data-root``,
reading members of archives or files of folders, the cache key of the sources, and turning a
list of recordings into cached frames and train / validation / test splits.

A reader lists its recordings as ``Recording(source, label, test)`` (``source`` names the file
in errors: a path, or ``archive.zip:member``), and yields their event streams in that order;
:func:`native_splits` bins them (``events_to_frames``), caches the frames of the whole dataset
in one entry (keyed by the sources' names, sizes and modification times, T, binning and output
size; the files are only read when that entry is missing) and splits them: the dataset's own
train / test split, and a stratified ``val_fraction`` of the training recordings (drawn by the
run's seed) for validation.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DataSplits
from spikesculpt.data.frame_cache import cached_frames
from spikesculpt.data.frame_dataset import frame_splits
from spikesculpt.data.frames import check_mode, check_timesteps, events_to_frames


@dataclass(frozen=True)
class Recording:
    source: str          # where it comes from, for messages: a path or "archive.zip:member"
    label: int
    test: bool


def require_data_root(dataset: str, data_root: Optional[str], expected: str) -> Path:
    """``--data-root`` as a ``Path``; a ``UserError`` saying what to pass if it is missing."""
    if not data_root:
        raise UserError(f"{dataset} is read from disk: pass --data-root DIR, the folder that "
                        f"holds {expected} (see README, 'Datasets')")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder; pass the folder that holds "
                        f"{expected}")
    return root


def find_dataset_dir(root: Path, names: Sequence[str], looks_right: Callable[[Path], bool]
                     ) -> Optional[Path]:
    """``root/NAME`` for the first of ``names`` (any letter case) that ``looks_right``, else
    ``root`` itself if it does, else None."""
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()} if root.is_dir() else {}
    for name in names:
        cand = children.get(name.lower())
        if cand is not None and looks_right(cand):
            return cand
    return root if looks_right(root) else None


def child(folder: Path, name: str, want_dir: Optional[bool] = None) -> Optional[Path]:
    """The entry of ``folder`` called ``name`` in any letter case (a dir / a file if asked)."""
    if not folder.is_dir():
        return None
    for p in sorted(folder.iterdir()):
        if p.name.lower() == name.lower():
            if want_dir is None or p.is_dir() == want_dir:
                return p
    return None


def fingerprint(paths: Iterable[Path], base: Path) -> str:
    """SHA-256 over ``(path relative to base, size, mtime_ns)`` of every file: changes when a
    file is added, removed, replaced or edited (cheap: no file is read)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.relative_to(base)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or type(exc).__name__}); check the "
                        f"file's permissions or download it again") from None


class ZipReader:
    """Members of a zip archive, read without extracting; errors name the archive."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise UserError(f"{path} is not a readable zip archive ({type(exc).__name__}); the "
                            f"download is incomplete or corrupt: download it again") from None

    def names(self) -> list[str]:
        return [i.filename for i in self.zip.infolist() if not i.is_dir()]

    def read(self, member: str) -> bytes:
        try:
            return self.zip.read(member)
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise UserError(f"{self.path}:{member} cannot be read ({exc}); the archive is "
                            f"corrupt: download it again") from None

    def close(self) -> None:
        self.zip.close()


def frame_options(defaults: dict) -> dict:
    """The options every event dataset takes: ``bins`` (time | count) plus ``defaults``."""
    return {"bins": "time", **defaults}


Listing = Callable[[], tuple[list[Recording], Iterator[np.ndarray]]]


def native_splits(name: str, key: dict, listing: Listing, sensor: tuple[int, int, int],
                  timesteps: Optional[int], bins: str, num_classes: int, val_fraction: float,
                  seed: int, size: Optional[tuple[int, int]] = None,
                  window=None,
                  sample_shape: Optional[tuple] = None) -> DataSplits:
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


def walk_files(folder: Path, suffix: str) -> list[Path]:
    """Files under ``folder`` (recursively) whose name ends with ``suffix`` (any case), sorted."""
    out = []
    for dirpath, _, files in os.walk(folder):
        for f in files:
            if f.lower().endswith(suffix) and not f.startswith("."):
                out.append(Path(dirpath) / f)
    return sorted(out)
