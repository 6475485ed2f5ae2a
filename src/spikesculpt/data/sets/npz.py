"""``npz:PATH``: your own arrays in a NumPy ``.npz`` file.

Keys:

- ``x``: training samples, float, one of ``[N, F]`` (feature vectors), ``[N, H, W]`` (grey
  images, a channel axis is added), ``[N, C, H, W]`` (images) or ``[N, T, C, H, W]`` (event
  frames, time second; then ``--timesteps`` must equal T);
- ``y``: integer class labels ``[N]`` in ``0..K-1`` (K = the largest label + 1);
- optional ``x_test``, ``y_test``: a test split with the same per-sample shape. Without them a
  stratified 20% of ``x`` is held out as the test split (fixed, drawn with seed 0, the same for
  every run seed).

A stratified ``val_fraction`` of the training samples is held out for validation, drawn by the
run's seed. Values are used as given (scale images to [0, 1] for poisson / latency encoding).
Everything is checked when the file is read: a missing file, a file that is not an npz, missing
keys, NaN/inf, non-integer or negative labels, mismatched lengths or shapes are ``UserError``s
naming the key and the fix.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DataSplits, make_splits, stratified_split
from spikesculpt.data.registry import register_dataset

TEST_FRACTION = 0.2


def _read(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"npz file {path} not found; check the path after npz:")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"cannot read {path} as a NumPy .npz file ({type(exc).__name__}); "
                        f"write it with numpy.savez(path, x=..., y=...)") from None


def _samples(path: Path, key: str, a: np.ndarray) -> np.ndarray:
    if a.dtype.kind not in "fiub":
        raise UserError(f"{path}: '{key}' must hold numbers, got dtype {a.dtype}")
    if a.ndim not in (2, 3, 4, 5):
        raise UserError(f"{path}: '{key}' must be [N, F], [N, H, W], [N, C, H, W] or "
                        f"[N, T, C, H, W], got shape {list(a.shape)}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise UserError(f"{path}: '{key}' contains NaN or inf; clean the data first")
    return a[:, None] if a.ndim == 3 else a


def _labels(path: Path, key: str, a: np.ndarray, n: int, xkey: str) -> np.ndarray:
    if a.ndim != 1:
        raise UserError(f"{path}: '{key}' must be a 1-d array of class labels, got shape "
                        f"{list(a.shape)}")
    if len(a) != n:
        raise UserError(f"{path}: '{key}' has {len(a)} labels but '{xkey}' has {n} samples; "
                        f"give one label per sample")
    if a.dtype.kind not in "iuf" or (a.dtype.kind == "f" and not np.isfinite(a).all()):
        raise UserError(f"{path}: '{key}' must hold integer class labels, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.all(a == np.round(a)):
        raise UserError(f"{path}: '{key}' holds non-integer labels; use class indices 0..K-1")
    if len(a) and a.min() < 0:
        raise UserError(f"{path}: '{key}' holds negative labels (min {a.min()}); labels are "
                        f"class indices 0..K-1")
    return a.astype(np.int64)


@register_dataset("npz")
def npz(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
        timesteps: Optional[int] = None) -> DataSplits:
    """Your arrays: npz:PATH with x, y (and optional x_test, y_test)."""
    if not arg:
        raise UserError("npz needs a path: --dataset npz:PATH.npz")
    path = Path(arg).expanduser()
    data = _read(path)
    for key in ("x", "y"):
        if key not in data:
            raise UserError(f"{path} has no array '{key}' (it has: {', '.join(data) or 'none'}); "
                            f"save it with numpy.savez(path, x=..., y=...)")
    if ("x_test" in data) != ("y_test" in data):
        raise UserError(f"{path} has only one of 'x_test' and 'y_test'; give both or neither")
    x = _samples(path, "x", data["x"])
    y = _labels(path, "y", data["y"], len(x), "x")
    if len(x) == 0:
        raise UserError(f"{path}: 'x' holds no samples")
    if "x_test" in data:
        x_test = _samples(path, "x_test", data["x_test"])
        y_test = _labels(path, "y_test", data["y_test"], len(x_test), "x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise UserError(f"{path}: 'x_test' samples have shape {list(x_test.shape[1:])} but "
                            f"'x' samples {list(x.shape[1:])}; give both the same shape")
    else:
        pool, test = stratified_split(y, TEST_FRACTION, 0)
        x, y, x_test, y_test = x[pool], y[pool], x[test], y[test]
    num_classes = int(max(y.max(initial=0), y_test.max(initial=0))) + 1
    if num_classes < 2:
        raise UserError(f"{path}: the labels name only one class; a classifier needs two or more")
    distinct = len(np.union1d(np.unique(y), np.unique(y_test)))
    if num_classes > 2 * distinct:  # e.g. raw ids: a 1e9-way readout would need a terabyte
        raise UserError(f"{path}: labels are not class indices 0..K-1 ({distinct} distinct "
                        f"values, the largest {num_classes - 1}); remap them, e.g. "
                        f"y = np.unique(y, return_inverse=True)[1]")
    kind, frames_t = "static", None
    if x.ndim == 5:
        kind, frames_t = "frames", int(x.shape[1])
        if timesteps is not None and timesteps != frames_t:
            raise UserError(f"{path} holds event frames with T={frames_t} time steps but the "
                            f"run asks for {timesteps}; pass --timesteps {frames_t}")
    return make_splits(f"npz:{path}", kind, x, y, x_test, y_test, num_classes, val_fraction,
                       seed, timesteps=frames_t)
