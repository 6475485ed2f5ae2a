"""``mnist1d``: MNIST-1D (Greydanus 2020, "Scaling down deep learning", arXiv 2011.14439).

Ten digit templates of 12 points, padded, dilated, scaled, shifted, sheared and noised into
signals of 40 points (``mnist1d_generator``: our own code, checked sample for sample against
the published ``mnist1d`` package). Generated in memory (a fraction of a second for 5,000
samples), no download. A small benchmark with headroom: the published ladder is logistic
regression ~32%, MLP ~68%, CNN ~94%, humans ~96% test accuracy.

    --dataset mnist1d                      # the published 5,000 samples, flat features [40]
    --dataset mnist1d:samples=20000        # a larger set from the same generator and seed
    --dataset mnist1d:form=sequence        # one value per time step: frames [T=40, 1]

Options (``mnist1d:key=value,...``):

- ``samples``: how many samples to generate, a positive multiple of 10 (default 5,000, the
  published set; ``N/10`` per class). The generator draws sample by sample, so a larger set
  does not start with the published one.
- ``form``: ``flat`` (default) gives each sample as 40 standardised values, shape ``[40]``,
  encoded over the run's T like any static input (``--encoding direct`` repeats it);
  ``sequence`` gives it as event-style frames ``[T, 1]`` with T = 40, one value per time step
  (like ``shd``), so the network sees the signal in time and must integrate it; the run needs
  ``--timesteps 40``.

Splits: the published one — the first 80% of the shuffled samples train, the last 20% test
(4,000 / 1,000 for the default set), the same for every run seed; a stratified
``val_fraction`` (default 10%) of the training part is held out for validation, drawn by the
run's seed (3,600 / 400 / 1,000 by default). Values are standardised over the whole set (mean
0, std 1, as published), so use ``--encoding direct`` (the default), not poisson or latency.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DataSplits, make_splits
from spikesculpt.data.options import parse_options
from spikesculpt.data.registry import register_dataset
from spikesculpt.data.sets.mnist1d_generator import NUM_CLASSES, Mnist1dArgs, make_mnist1d

PUBLISHED_SAMPLES = Mnist1dArgs().num_samples
SEQUENCE_STEPS = Mnist1dArgs().final_seq_length
MAX_SAMPLES = 1_000_000
FORMS = ("flat", "sequence")
DEFAULTS = {"samples": PUBLISHED_SAMPLES, "form": "flat"}


@lru_cache(maxsize=4)
def mnist1d_arrays(samples: int = PUBLISHED_SAMPLES
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, x_test, y_test)`` of the set with ``samples`` samples: signals ``[N, 40]``
    float32 (read-only, shared by every caller), labels int64."""
    arrays = make_mnist1d(Mnist1dArgs(num_samples=samples))
    out = tuple(a.astype(np.float32) if a.dtype.kind == "f" else a for a in arrays)
    for a in out:
        a.flags.writeable = False
    return out  # type: ignore[return-value]


def mnist1d_options(arg: Optional[str]) -> dict:
    """The checked options of ``mnist1d:ARG`` (see the module docstring)."""
    opts = parse_options("mnist1d", arg, DEFAULTS)
    n = opts["samples"]
    if n <= 0 or n % NUM_CLASSES or n > MAX_SAMPLES:
        raise UserError(f"mnist1d: samples={n} must be a positive multiple of 10 up to "
                        f"{MAX_SAMPLES:,} (the same count per class); e.g. mnist1d:samples=10000")
    if n < 100:
        raise UserError(f"mnist1d: samples={n} leaves too few per class for train, validation "
                        f"and test; use at least 100, e.g. mnist1d:samples=1000")
    if opts["form"] not in FORMS:
        raise UserError(f"mnist1d: form={opts['form']!r} is unknown; use form=flat (40 "
                        f"features) or form=sequence (one value per time step, T=40)")
    return opts


def dataset_name(opts: dict) -> str:
    """``mnist1d`` plus the options that differ from the defaults: ``mnist1d:form=sequence``."""
    given = [f"{k}={v}" for k, v in opts.items() if v != DEFAULTS[k]]
    return "mnist1d" + (":" + ",".join(given) if given else "")


@register_dataset("mnist1d")
def mnist1d(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
            timesteps: Optional[int] = None) -> DataSplits:
    """MNIST-1D (Greydanus 2020), 40-point signals, 10 classes (embedded, generated offline)."""
    opts = mnist1d_options(arg)
    name = dataset_name(opts)
    x, y, x_test, y_test = mnist1d_arrays(opts["samples"])
    if opts["form"] == "flat":
        return make_splits(name, "static", x, y, x_test.copy(), y_test.copy(), NUM_CLASSES,
                           val_fraction, seed)
    if timesteps is not None and timesteps != SEQUENCE_STEPS:
        raise UserError(f"{name} feeds one value per time step, T={SEQUENCE_STEPS}, but the run "
                        f"asks for {timesteps}; pass --timesteps {SEQUENCE_STEPS}")
    return make_splits(name, "frames", x[:, :, None], y, x_test[:, :, None].copy(),
                       y_test.copy(), NUM_CLASSES, val_fraction, seed, timesteps=SEQUENCE_STEPS)
