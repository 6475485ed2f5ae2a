"""``shd``: the Spiking Heidelberg Digits (Cramer, Stradmann, Schemmel & Zenke, IEEE TNNLS 2020).

Spoken digits 0-9 in English and German (20 classes) turned into spikes of 700 channels by a
model of the inner ear. Shipped as ``shd_train.h5.gz`` (8,156 recordings) and
``shd_test.h5.gz`` (2,264), as downloaded or gunzipped. The split is the shipped one (the test
speakers include two who are absent from training); validation is a stratified
``val_fraction`` of the training recordings, drawn by the run's seed.

File format (HDF5, needs ``h5py``: ``pip install 'spikesculpt[events]'``): ``spikes/times``
(one float array per recording, seconds), ``spikes/units`` (one integer array per recording,
channel 0..699), ``labels`` (integers 0..19); ``extra/`` (speakers, keys) is not used.

Frame layout (our choice): the 700 channels are a 700 x 1 sensor with one polarity; T frames of
spike counts per channel, flattened to ``[T, 700]`` per sample (``DatasetInfo.input_shape ==
(700,)``): flat features, so ``mlp`` (``in_features=700``) trains on it, conv models do not.
Time slicing is absolute (the audio is aligned at 0): all recordings share the window
``[0, duration)``, by default the latest spike of the whole dataset (train and test) rounded up
to a millisecond, so no spike is dropped and a frame means the same span of time in every
sample; ``duration_ms=1000`` sets it (later spikes are dropped). ``channels=N`` pools the 700
channels into N (channel ``c -> floor(c * N / 700)``). ``bins=count`` slices by spike count
instead (then the window only drops spikes).

Layout under ``--data-root DIR``: ``DIR/SHD/shd_train.h5[.gz]`` and ``shd_test.h5[.gz]``
(``shd/``, ``hd/`` or DIR itself also work). A ``.gz`` is unpacked once into a temporary file
in the cache folder, read, and removed.
"""

from __future__ import annotations

import gzip
import math
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DataSplits
from spikesculpt.data.events.frame_cache import cache_root
from spikesculpt.data.events.recordings import Recording, frame_options, recording_splits
from spikesculpt.data.events.stream import check_events, make_events
from spikesculpt.data.files import child, find_dataset_dir, fingerprint, require_data_root
from spikesculpt.data.options import parse_options
from spikesculpt.data.registry import register_dataset

CHANNELS = 700
NUM_CLASSES = 20
EXPECTED = ("SHD as downloaded: SHD/shd_train.h5.gz and shd_test.h5.gz (or the gunzipped "
            "shd_train.h5 and shd_test.h5)")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise UserError("shd needs h5py to read HDF5: pip install 'spikesculpt[events]' "
                        "(or pip install h5py)") from None
    return h5py


def _split_file(folder: Path, split: str) -> Optional[Path]:
    return (child(folder, f"shd_{split}.h5", want_dir=False)
            or child(folder, f"shd_{split}.h5.gz", want_dir=False))


@contextmanager
def _plain_h5(path: Path):
    """``path`` itself, or a gunzipped temporary copy of a ``.gz`` (removed afterwards)."""
    if not path.name.lower().endswith(".gz"):
        yield path
        return
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".shd-", suffix=".h5", dir=root)
    try:
        with open(fd, "wb") as out, gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 22)
        yield Path(tmp)
    except (OSError, EOFError) as exc:
        raise UserError(f"{path} is not a readable gzip file ({type(exc).__name__}); the "
                        f"download is incomplete or corrupt: download it again") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_shd(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """``(times in us, units, labels)`` of every recording of an SHD HDF5 file."""
    h5py = _h5py()
    with _plain_h5(path) as plain:
        try:
            with h5py.File(plain, "r") as f:
                for key in ("spikes/times", "spikes/units", "labels"):
                    if key not in f:
                        raise UserError(f"{path} has no '{key}'; an SHD file holds spikes/times, "
                                        f"spikes/units and labels — is it another HDF5 file?")
                times = [np.round(np.asarray(a, dtype=np.float64) * 1e6).astype(np.int64)
                         for a in f["spikes/times"][:]]
                units = [np.asarray(a).astype(np.int64) for a in f["spikes/units"][:]]
                labels = np.asarray(f["labels"][:]).astype(np.int64)
        except UserError:
            raise
        except Exception as exc:  # h5py raises OSError, KeyError, ValueError, ... on bad files
            raise UserError(f"{path} cannot be read as SHD HDF5 ({type(exc).__name__}); the file "
                            f"is truncated or corrupt: download it again") from None
    if not (len(times) == len(units) == len(labels)):
        raise UserError(f"{path}: spikes/times ({len(times)}), spikes/units ({len(units)}) and "
                        f"labels ({len(labels)}) differ in length; the file is corrupt")
    for i, (t, u) in enumerate(zip(times, units)):
        if len(t) != len(u):
            raise UserError(f"{path}: recording {i} has {len(t)} spike times but {len(u)} units; "
                            f"the file is corrupt")
        check_events(None, (CHANNELS, 1, 1), f"{path} (recording {i})",
                     raw={"x": u, "y": np.zeros(0), "p": np.zeros(0)})
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise UserError(f"{path}: labels must be 0..{NUM_CLASSES - 1}, found {labels.min()}.."
                        f"{labels.max()}; the file is corrupt")
    return times, units, labels


def _looks_right(d: Path) -> bool:
    return _split_file(d, "train") is not None and _split_file(d, "test") is not None


@register_dataset("shd")
def shd(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
        timesteps: Optional[int] = None) -> DataSplits:
    """Spiking Heidelberg Digits (HDF5) under --data-root: [T, 700] spike counts, 20 classes."""
    opts = parse_options("shd", arg, frame_options({"channels": CHANNELS, "duration_ms": 0.0}))
    if not 0 < opts["channels"] <= CHANNELS:
        raise UserError(f"shd: channels={opts['channels']} must be in 1..{CHANNELS}")
    if opts["duration_ms"] < 0:
        raise UserError(f"shd: duration_ms={opts['duration_ms']} must be > 0 (0 = automatic)")
    root = require_data_root("shd", data_root, EXPECTED)
    folder = find_dataset_dir(root, ("SHD", "hd", "shd_dataset"), _looks_right)
    if folder is None:
        raise UserError(f"shd: no shd_train.h5[.gz] and shd_test.h5[.gz] under {root}; expected "
                        f"{EXPECTED}")
    files = [_split_file(folder, "train"), _split_file(folder, "test")]
    duration_us = int(round(opts["duration_ms"] * 1000))
    data: list = []

    def listing():  # only when the frames are not cached: read both files
        data.extend(read_shd(p) for p in files)
        recs = [Recording(f"{p} (recording {i})", int(lab), k == 1)
                for k, (p, (_, _, labels)) in enumerate(zip(files, data))
                for i, lab in enumerate(labels)]

        def events():
            for times, units, _ in data:
                for t, u in zip(times, units):
                    yield make_events(t, u, np.zeros(len(u)), np.zeros(len(u)))

        return recs, events()

    def auto_window():  # the latest spike of train and test, rounded up to a millisecond
        last = max((int(t.max()) for times, _, _ in data for t in times if len(t)), default=0)
        return 0, max(1000, int(math.ceil((last + 1) / 1000.0)) * 1000)

    if duration_us:
        window = (0, duration_us)
    else:
        window = auto_window if opts["bins"] == "time" else None
    key = {"sources": fingerprint(files, folder), "duration_us": duration_us}
    ch = opts["channels"]
    return recording_splits("shd" + (f":{arg}" if arg else ""), key, listing, (CHANNELS, 1, 1),
                         timesteps, opts["bins"], NUM_CLASSES, val_fraction, seed,
                         size=(1, ch), window=window, sample_shape=(ch,))
