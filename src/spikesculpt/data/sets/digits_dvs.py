"""``digits-dvs`` and ``dvs:<static dataset>``: static images seen by the emulated event camera.

``digits-dvs`` is the embedded event-based default: scikit-learn's 1,797 8x8 digits (see
``digits``) shown to :class:`~spikesculpt.data.events.dvs_emulator.DVSEmulator` with its defaults
(34x34 sensor like N-MNIST, the digit drawn 28x28 in the centre, three 100 ms saccades of 3 px,
thresholds 0.2 +- 3%, 0.1 Hz noise, seed 0), binned into ``T`` frames ``[T, 2, 34, 34]`` (the
run's ``--timesteps``; equal-duration slices of the 300 ms recording by default). Same splits
as ``digits``: a fixed stratified 20% test split and a seeded validation split of the rest
(1,295 / 143 / 359).

``dvs:NAME`` runs any registered static image dataset through the emulator, split by split
(e.g. ``dvs:mnist``, ``dvs:npz:my.npz``); colour images are converted to grey luminance.

Options follow the name after a comma (``digits-dvs:threshold=0.3,bins=count``,
``dvs:cifar10,size=64,margin=8``): every emulator parameter (``size``, ``margin``, ``saccades``,
``saccade_ms``, ``amplitude``, ``dt_ms``, ``threshold``, ``mismatch``, ``refractory_ms``,
``noise_hz``, ``dark``, ``seed``) and ``bins=time|count``. The emulator's ``seed`` is not the
run's seed: the recordings are a fixed dataset, as N-MNIST is; the run's seed only draws the
validation split.

Frames are cached on disk (``spikesculpt.data.events.frame_cache``), keyed by the SHA-256 of the
input images, every emulator parameter, T and the binning; the first load emulates (a few seconds
for digits), later loads read the cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from typing import Optional

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DatasetInfo, DataSplits, make_splits, tensor_dataset
from spikesculpt.data.events.dvs_emulator import DVSEmulator, emulator_from_options, grey_images
from spikesculpt.data.events.frame_cache import FrameSet, cached_frames
from spikesculpt.data.events.frames import check_mode, check_timesteps, events_to_frames
from spikesculpt.data.options import parse_options
from spikesculpt.data.registry import load_dataset, register_dataset
from spikesculpt.data.sets.digits import digits_arrays, digits_test_split

DEFAULT_TIMESTEPS = 4  # = TrainConfig.timesteps; used when a caller gives no T


def emulator_defaults() -> dict:
    emu = DVSEmulator()
    return {f.name: getattr(emu, f.name) for f in fields(DVSEmulator)}


def parse_emulator_arg(dataset: str, arg: Optional[str]) -> tuple[DVSEmulator, str]:
    """``(emulator, bins)`` from ``key=value`` options (see the module docstring)."""
    opts = parse_options(dataset, arg, {**emulator_defaults(), "bins": "time"})
    bins = check_mode(opts.pop("bins"))
    return emulator_from_options(opts), bins


def emulated_frames(name: str, images, labels: np.ndarray, emulator: DVSEmulator,
                    timesteps: int, bins: str = "time") -> FrameSet:
    """Frames ``[N, T, 2, size, size]`` of ``images`` through ``emulator``, from the cache or
    emulated now. The time window is the whole recording ``[0, duration)``."""
    grey = grey_images(images)
    labels = np.asarray(labels, dtype=np.int64)
    key = {"kind": "dvs-emulator", "name": name,
           "images_sha256": hashlib.sha256(np.ascontiguousarray(grey).tobytes()).hexdigest(),
           "images_shape": list(grey.shape),
           "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
           "emulator": emulator.to_dict(), "timesteps": timesteps, "bins": bins}
    sensor = emulator.sensor
    shape = (timesteps, 2, emulator.size, emulator.size)

    def plan():
        frames = (events_to_frames(ev, sensor, timesteps, bins, t_start=0,
                                   t_end=emulator.duration_us)
                  for ev in emulator.iter_emulate(grey))
        return labels, np.zeros(len(labels), dtype=bool), frames

    return cached_frames(name, key, shape, plan)


def _as_float(frames: np.ndarray) -> np.ndarray:
    return np.asarray(frames, dtype=np.float32)


@register_dataset("digits-dvs")
def digits_dvs(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
               timesteps: Optional[int] = None) -> DataSplits:
    """scikit-learn's digits through the DVS emulator: [T, 2, 34, 34] event frames, 10 classes."""
    emulator, bins = parse_emulator_arg("digits-dvs", arg)
    t = check_timesteps(DEFAULT_TIMESTEPS if timesteps is None else timesteps, "digits-dvs")
    x, y = digits_arrays()
    fs = emulated_frames("digits-dvs", x, y, emulator, t, bins)
    frames = _as_float(fs.frames)
    pool, test = digits_test_split()
    name = "digits-dvs" if not arg else f"digits-dvs:{arg}"
    return make_splits(name, "frames", frames[pool], y[pool], frames[test], y[test], 10,
                       val_fraction, seed, timesteps=t)


def _split_dvs_arg(arg: Optional[str]) -> tuple[str, Optional[str]]:
    if not arg:
        raise UserError("dvs needs a static dataset: --dataset dvs:NAME[,option=value...], "
                        "e.g. dvs:digits or dvs:mnist,size=34")
    static, sep, rest = arg.partition(",")
    return static, (rest if sep else None)


@register_dataset("dvs")
def dvs(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
        timesteps: Optional[int] = None, download: bool = False) -> DataSplits:
    """Any static image dataset through the DVS emulator: dvs:NAME[,option=value...]."""
    static, options = _split_dvs_arg(arg)
    if static.split(":")[0] in ("dvs", "digits-dvs"):
        raise UserError(f"dvs:{static} is already event data; give a static image dataset "
                        f"such as dvs:digits or dvs:mnist")
    emulator, bins = parse_emulator_arg(f"dvs:{static}", options)
    t = check_timesteps(DEFAULT_TIMESTEPS if timesteps is None else timesteps, f"dvs:{static}")
    src = load_dataset(static, seed=seed, val_fraction=val_fraction, data_root=data_root,
                       download=download)
    if src.info.kind != "static" or src.info.image_size is None:
        raise UserError(f"dvs:{static}: the emulator needs static images [C, H, W], but "
                        f"{static} holds {src.info.kind} data of shape "
                        f"{list(src.info.input_shape)}")
    parts = []
    for split in ("train", "val", "test"):
        ds = getattr(src, split)
        tensors = getattr(ds, "tensors", None)
        if tensors is None:
            raise UserError(f"dvs:{static}: the emulator needs an in-memory image dataset; "
                            f"{static} is read from disk sample by sample")
        xs, ys = tensors
        fs = emulated_frames(f"dvs-{static}-{split}", xs.numpy(), ys.numpy(), emulator, t, bins)
        parts.append(tensor_dataset(_as_float(fs.frames), ys.numpy()))
    info = DatasetInfo(f"dvs:{arg}", "frames", (2, emulator.size, emulator.size),
                       src.info.num_classes, t)
    return DataSplits(parts[0], parts[1], parts[2], info)

