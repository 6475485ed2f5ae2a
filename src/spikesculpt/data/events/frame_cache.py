"""On-disk cache of binned event frames, keyed by everything that changes them.

Turning events into frames (emulating a DVS, or parsing thousands of event files) is slow; the
frames of a dataset are therefore built once and kept::

    $SPIKESCULPT_CACHE_DIR/frames/<name>-<digest>/     (default ~/.cache/spikesculpt/frames)
        frames.npy    uint16 [N, T, P, H, W] event counts (clipped at 65535; a warning says so)
        labels.npy    int64 [N]
        test.npy      bool [N]: which samples belong to the dataset's test split
        meta.json     the key, shapes, and the SHA-256 of the three files; written last

``digest`` is the SHA-256 of the canonical JSON of the *key*: a dict naming every input that
changes the frames (the dataset, the source files' sizes and modification times or the
input images' hash, emulator settings, T, binning mode, output size, the format version). A
different T, binning or emulator setting is another entry (rebuilt); the same key is read back.

An entry is trusted only if ``meta.json`` parses, its key equals the requested one and all
files have the recorded size and SHA-256; anything else (a crash mid-write, a truncated or
edited file) is reported with a warning and rebuilt. Entries are built in a private temporary
folder and renamed into place, so readers never see half an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
from tqdm.auto import tqdm

from spikesculpt.core.errors import UserError
from spikesculpt.core.io import write_json

FORMAT_VERSION = 1
MAX_COUNT = np.iinfo(np.uint16).max
FILES = ("frames.npy", "labels.npy", "test.npy")


def cache_root() -> Path:
    """``$SPIKESCULPT_CACHE_DIR/frames`` or ``$XDG_CACHE_HOME/spikesculpt/frames`` or
    ``~/.cache/spikesculpt/frames``."""
    base = os.environ.get("SPIKESCULPT_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "spikesculpt")
    return Path(base) / "frames"


def key_digest(key: dict) -> str:
    text = json.dumps({"format": FORMAT_VERSION, **key}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


@dataclass
class FrameSet:
    """Cached frames: ``frames`` uint16 ``[N, T, P, H, W]`` (memory-mapped, read-only),
    ``labels`` int64 ``[N]``, ``test`` bool ``[N]`` (the dataset's test split), the entry's
    folder, and whether it was built by this call."""

    frames: np.ndarray
    labels: np.ndarray
    test: np.ndarray
    path: Path
    built: bool


def _normalised(key: dict) -> dict:
    return json.loads(json.dumps(key, sort_keys=True))


def _read_entry(path: Path, key: dict) -> tuple[Optional[FrameSet], str]:
    """The entry at ``path`` if it is complete and intact, else ``(None, why)``."""
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        return None, "incomplete (no meta.json)"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != _normalised(key):
            return None, "it belongs to another key"
        for name in FILES:
            f = path / name
            if not f.is_file() or f.stat().st_size != meta["files"][name]["bytes"]:
                return None, f"{name} is missing or has the wrong size"
            if file_sha256(f) != meta["files"][name]["sha256"]:
                return None, f"{name} fails its SHA-256 check"
        frames = np.load(path / "frames.npy", mmap_mode="r", allow_pickle=False)
        labels = np.load(path / "labels.npy", allow_pickle=False)
        test = np.load(path / "test.npy", allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        return None, f"unreadable ({type(exc).__name__})"
    n = frames.shape[0]
    if list(frames.shape) != meta["shape"] or labels.shape != (n,) or test.shape != (n,):
        return None, "its arrays have the wrong shape"
    return FrameSet(frames, labels, test.astype(bool), path, False), ""


Plan = Callable[[], tuple[np.ndarray, np.ndarray, Iterable[np.ndarray]]]


def cached_frames(name: str, key: dict, frame_shape: tuple, plan: Plan,
                  root: Optional[Path] = None) -> FrameSet:
    """The frames of a dataset, from the cache or built now.

    ``plan()`` is only called when the entry is missing or broken; it returns ``(labels [N],
    test [N] bool, frames)`` where ``frames`` yields the N samples' ``[T, P, H, W]`` counts in
    order. ``key`` must name every input that changes the result (not the labels: they follow
    from the sources the key names).
    """
    root = Path(root) if root is not None else cache_root()
    digest = key_digest(key)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60]
    path = root / f"{slug}-{digest[:16]}"
    if path.exists():
        entry, why = _read_entry(path, key)
        if entry is not None:
            return entry
        warnings.warn(f"frame cache entry {path} is {why}; rebuilding it", stacklevel=2)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{slug}-{digest[:16]}.", suffix=".tmp", dir=root))
    except OSError as exc:
        raise UserError(f"cannot write the frame cache in {root} ({exc.strerror or exc}); set "
                        f"SPIKESCULPT_CACHE_DIR to a writable folder") from None
    try:
        try:
            _build(tmp, key, tuple(frame_shape), plan, name)
        except OSError as exc:  # disk full, quota: the sources raise UserErrors of their own
            raise UserError(f"cannot write the frame cache in {root} ({exc.strerror or exc}); "
                            f"free some space or set SPIKESCULPT_CACHE_DIR to another "
                            f"folder") from None
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        try:
            os.replace(tmp, path)
        except OSError:
            # another process put an entry there first: use it if it is intact
            entry, _ = _read_entry(path, key)
            if entry is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return entry
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    entry, why = _read_entry(path, key)
    if entry is None:  # pragma: no cover - only a concurrent writer could cause this
        raise RuntimeError(f"frame cache entry {path} could not be read back: {why}")
    entry.built = True
    return entry


def _build(tmp: Path, key: dict, frame_shape: tuple, plan: Plan, name: str) -> None:
    labels, test, samples = plan()
    labels = np.asarray(labels, dtype=np.int64)
    test = np.asarray(test, dtype=bool)
    count = len(labels)
    if test.shape != (count,):
        raise RuntimeError(f"{name}: {len(test)} test flags for {count} labels")
    shape = (count, *frame_shape)
    frames = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=np.uint16,
                                       shape=shape)
    clipped = 0
    i = -1
    bar = tqdm(samples, total=count, desc=f"{name}: building frames (cached for next time)",
               leave=False, disable=None, dynamic_ncols=True)  # shown on terminals only
    for i, sample in enumerate(bar):
        if i >= count:
            raise RuntimeError(f"{name}: more samples than the {count} announced")
        if sample.shape != frame_shape:
            raise RuntimeError(f"{name}: sample {i} has frames {sample.shape}, "
                               f"expected {frame_shape}")
        over = sample > MAX_COUNT
        if over.any():
            clipped += int(over.sum())
            sample = np.minimum(sample, MAX_COUNT)
        frames[i] = sample
    if i + 1 != count:
        raise RuntimeError(f"{name}: {i + 1} samples, {count} announced")
    frames.flush()
    del frames
    np.save(tmp / "labels.npy", labels)
    np.save(tmp / "test.npy", test)
    if clipped:
        warnings.warn(f"{name}: {clipped} frame counts above {MAX_COUNT} were clipped",
                      stacklevel=3)
    files = {n: {"bytes": (tmp / n).stat().st_size, "sha256": file_sha256(tmp / n)}
             for n in FILES}
    write_json(tmp / "meta.json", {"key": _normalised(key), "format": FORMAT_VERSION,
                                   "shape": list(shape), "dtype": "uint16", "clipped": clipped,
                                   "files": files})
