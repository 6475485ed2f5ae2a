"""``cifar10-dvs``: CIFAR10-DVS (Li, Liu, Ji, Li & Shi, Front. Neurosci. 2017).

10,000 CIFAR-10 images (1,000 per class), upscaled to 512x512, shown moving on a monitor and
recorded by a DVS128 camera (128x128 pixels, 2 polarities). Shipped as one zip per class
(``airplane.zip`` ... ``truck.zip``), each holding ``cifar10_<class>_<i>.aedat``, i = 0..999.

Split (the dataset ships none): per class, the recordings sorted by their number i, the first
90% train and the last 10% test, i.e. ``cifar10_<class>_0..899`` train and ``900..999`` test
(9,000 / 1,000), the 9:1 split of ESL and most SNN papers. ``test=first`` takes the first 10%
as test instead (the split of TEBN / SpikingJelly's ``CIFAR10DVSTEBNSplit``: 0..99 test);
validation is a stratified ``val_fraction`` of the training recordings, drawn by the run's seed.

File format: jAER AEDAT 2.0 (see :mod:`spikesculpt.data.events.aedat2`) — ASCII header lines
starting with ``#`` (the first is ``#!AER-DAT2.0``), then big-endian 32-bit pairs ``(address,
timestamp in us)``. A DVS128 address holds polarity in bit 0, x in bits 1..7 and y in bits 8..14; special
events (bit 15 or 31) are skipped and timestamps are jAER's wrapping int32, unwrapped. As
SpikingJelly and Tonic do (to match the reference MATLAB reader), the frame is turned to
upright: ``x = 127 - y_raw``, ``y = 127 - x_raw``, ``p = 1 - p_raw``. A recording of another
camera (its ``# AEChip`` header line names one, or its addresses set bits 16..30, as a DAVIS
camera's do) and a data part that is not a whole number of 8-byte events (a truncated file) are
``UserError``s naming the file. The AEDAT 4 re-encoding distributed by some mirrors is not read
(the error says so): use the original files.

Layout under ``--data-root DIR``::

    DIR/CIFAR10-DVS/airplane.zip ... truck.zip                  the archives as downloaded
    DIR/CIFAR10-DVS/airplane/cifar10_airplane_0.aedat ...       or extracted (any depth)
    (cifar10-dvs/, CIFAR10DVS/ or DIR itself also work)

Options: ``size=N`` pools 128x128 to NxN (``cifar10-dvs:48``: 48x48, as TET and others train),
``bins=time|count``, ``test=last|first``. Frames ``[T, 2, N, N]``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DataSplits
from spikesculpt.data.events.aedat2 import read_dvs128
from spikesculpt.data.events.recordings import Recording, frame_options, recording_splits
from spikesculpt.data.events.stream import make_events
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

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
SENSOR = (128, 128, 2)
EXPECTED = ("CIFAR10-DVS as downloaded: CIFAR10-DVS/<class>.zip for the 10 classes (airplane "
            "... truck), or the extracted CIFAR10-DVS/<class>/cifar10_<class>_<i>.aedat")
FIX_FOREIGN = ("take it out of the dataset folder, or put back the original CIFAR10-DVS file "
               "(the class zips from figshare)")


def read_aedat2_dvs128(data: bytes, source: str) -> np.ndarray:
    """Events of a jAER AEDAT 2.0 DVS128 recording (CIFAR10-DVS orientation, see above)."""
    if data.startswith(b"#!AER-DAT4"):
        raise UserError(f"{source} is AEDAT 4 (a re-encoding of CIFAR10-DVS), which spikesculpt "
                        f"does not read; use the original AEDAT 2.0 files (one zip per class)")
    raw = read_dvs128(data, source, "CIFAR10-DVS", FIX_FOREIGN)
    return make_events(raw.t, 127 - raw.y, 127 - raw.x, 1 - raw.p)


def _index(name: str, source: str) -> int:
    m = re.search(r"(\d+)\.aedat$", name, flags=re.IGNORECASE)
    if not m:
        raise UserError(f"CIFAR10-DVS: cannot read the recording number of {source}; files are "
                        f"named cifar10_<class>_<i>.aedat")
    return int(m.group(1))


def _looks_right(d: Path) -> bool:
    return any(child(d, c, True) is not None or child(d, c + ".zip", False) is not None
               for c in CLASSES)


def list_cifar10dvs(root: Path, test_first: bool
                    ) -> tuple[list[Recording], list[Callable[[], bytes]], str]:
    recs: list[Recording] = []
    loaders: list[Callable[[], bytes]] = []
    prints = []
    for label, cls in enumerate(CLASSES):
        folder = child(root, cls, want_dir=True)
        items: list[tuple[int, str, Callable[[], bytes]]] = []
        if folder is not None:
            files = walk_files(folder, ".aedat")
            items = [(_index(f.name, str(f)), str(f), lambda f=f: read_file(f)) for f in files]
            prints.append(fingerprint(files, root))
        else:
            archive = child(root, cls + ".zip", want_dir=False)
            if archive is None:
                raise UserError(f"CIFAR10-DVS: class {cls!r} is missing under {root} (no {cls}/ "
                                f"folder, no {cls}.zip); expected {EXPECTED}")
            z = ZipReader(archive)
            for m in z.names():
                if m.lower().endswith(".aedat") and not Path(m).name.startswith("."):
                    src = f"{archive}:{m}"
                    items.append((_index(m, src), src, lambda m=m, z=z: z.read(m)))
            prints.append(fingerprint([archive], root))
        if not items:
            raise UserError(f"CIFAR10-DVS: no .aedat recordings for class {cls!r} under {root}; "
                            f"expected {EXPECTED}")
        items.sort(key=lambda it: it[0])
        n_test = -(-len(items) // 10)  # ceil(n / 10): 100 of 1,000
        for k, (_, src, load) in enumerate(items):
            is_test = k < n_test if test_first else k >= len(items) - n_test
            recs.append(Recording(src, label, is_test))
            loaders.append(load)
    return recs, loaders, "+".join(prints)


@register_dataset("cifar10-dvs")
def cifar10_dvs(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
                timesteps: Optional[int] = None) -> DataSplits:
    """CIFAR10-DVS (AEDAT 2.0) under --data-root: [T, 2, N, N] frames, 10 classes."""
    opts = parse_options("cifar10-dvs", arg, frame_options({"size": 128, "test": "last"}),
                         positional="size")
    if opts["test"] not in ("last", "first"):
        raise UserError(f"cifar10-dvs: test={opts['test']!r}; choose test=last (recordings "
                        f"900-999 of each class, the default) or test=first (0-99)")
    if not 0 < opts["size"] <= 128:
        raise UserError(f"cifar10-dvs: size={opts['size']} must be in 1..128")
    root = require_data_root("cifar10-dvs", data_root, EXPECTED)
    folder = find_dataset_dir(root, ("CIFAR10-DVS", "CIFAR10DVS", "cifar10_dvs", "DVS-CIFAR10"),
                              _looks_right)
    if folder is None:
        raise UserError(f"cifar10-dvs: no class folders or class zips under {root}; expected "
                        f"{EXPECTED}")
    recs, loaders, fp = list_cifar10dvs(folder, opts["test"] == "first")

    def events():
        for rec, load in zip(recs, loaders):
            yield read_aedat2_dvs128(load(), rec.source)

    size = opts["size"]
    return recording_splits("cifar10-dvs" + (f":{arg}" if arg else ""),
                         {"sources": fp, "test_split": opts["test"]}, lambda: (recs, events()),
                         SENSOR, timesteps, opts["bins"], 10, val_fraction, seed,
                         size=None if size == 128 else (size, size))
