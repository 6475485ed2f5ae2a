"""The MNIST-1D generator (Greydanus 2020, "Scaling down deep learning", arXiv 2011.14439).

Our own code for the published procedure (package ``mnist1d`` 0.0.2.post1,
``mnist1d.data.make_dataset(get_dataset_args())``), written so that it draws the same random
numbers in the same order and so reproduces the published set sample for sample
(``tests/test_mnist1d.py`` checks it against the package when it is installed).

Ten hand-made templates of 12 points, one per digit, whitened and divided by 6. Each sample is
one template through these steps, with the published arguments:

1. pad: add ``eps = 1e-8`` (so the template is nonzero everywhere) and append
   ``p = 36 + floor(u·25)`` zeros, ``u ~ U[0, 1)``;
2. dilate: resample the ``12 + p`` points linearly to ``12 + 60 = 72`` points;
3. scale: multiply by ``1 + 0.4·(u - 0.5)``;
4. translate: roll right by ``k ~ uniform{0..47}`` points;
5. correlated noise: every point still exactly zero (the padding) is replaced by
   ``gaussian_filter(0.25·n, sigma=2)`` with ``n ~ N(0, 1)^72`` (reflecting edges, 4 sigma);
6. i.i.d. noise: add ``0.02·n``, ``n ~ N(0, 1)^72``;
7. shear: subtract ``0.75·(u - 0.5)·linspace(-0.5, 0.5, 72)``;
8. subsample: resample linearly to 40 points.

Samples are made class by class (``N/10`` of digit 0, then of 1, ...), then shuffled by a
permutation of all N, then standardised with the mean and standard deviation of the whole
array (train and test together). The first ``int(0.8·N)`` samples are the training set, the
rest the test set.

Random numbers: one ``numpy.random.RandomState(seed)`` (the stream ``np.random.seed(seed)``
gives the package's global state; the global state itself is not touched), drawn per sample in
the order rand (pad), rand (scale), choice(48) (translate), randn(72) (correlated noise),
randn(72) (i.i.d. noise), rand (shear), and at the end ``permutation(N)``. The linear resampling
is ``numpy.interp``, which is what the package's ``scipy.interpolate.interp1d(kind="linear")``
runs for 1-d float64 data in current SciPy (checked with 1.17); a SciPy whose ``interp1d``
computes the line itself may differ in the last bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter1d

NUM_CLASSES = 10

# The published templates (mnist1d/data.py, get_templates), one row per digit 0..9.
TEMPLATE_POINTS = np.asarray([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])


@dataclass(frozen=True)
class Mnist1dArgs:
    """The generator's arguments; the defaults are the published ones (``get_dataset_args``)."""

    num_samples: int = 5000
    train_split: float = 0.8
    template_len: int = 12
    padding: tuple[int, int] = (36, 60)
    scale_coeff: float = 0.4
    max_translation: int = 48
    corr_noise_scale: float = 0.25
    iid_noise_scale: float = 2e-2
    shear_scale: float = 0.75
    final_seq_length: int = 40
    seed: int = 42

    @property
    def dilated_length(self) -> int:
        """Points after step 2: ``template_len + padding[1]`` (72)."""
        return self.template_len + self.padding[1]


def templates() -> np.ndarray:
    """``[10, 12]`` float64: each row whitened (mean 0, std 1), shifted to start at 0, / 6."""
    x = TEMPLATE_POINTS.astype(np.float64)
    x = x - x.mean(1, keepdims=True)
    x = x / x.std(1, keepdims=True)
    x = x - x[:, :1]
    return x / 6.0


@lru_cache(maxsize=None)
def grid(n: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """``linspace(low, high, n)``, computed once per length (read-only)."""
    out = np.linspace(low, high, n)
    out.flags.writeable = False
    return out


def resample(x: np.ndarray, n: int) -> np.ndarray:
    """``x [L]`` (points at ``linspace(0, 1, L)``) linearly resampled at ``linspace(0, 1, n)``."""
    return np.interp(grid(n), grid(len(x)), x)


@dataclass
class Draws:
    """The random numbers of all N samples, drawn sample by sample in the published order."""

    pad: np.ndarray          # [N] U[0, 1)
    scale: np.ndarray        # [N] U[0, 1)
    shift: np.ndarray        # [N] int in 0..max_translation-1
    corr_noise: np.ndarray   # [N, 72] standard normal
    iid_noise: np.ndarray    # [N, 72] standard normal
    shear: np.ndarray        # [N] U[0, 1)


def draw(rng: np.random.RandomState, count: int, args: Mnist1dArgs) -> Draws:
    """The random numbers of ``count`` samples (rand, rand, choice, randn, randn, rand each)."""
    n = args.dilated_length
    pad, scale, shear = np.empty(count), np.empty(count), np.empty(count)
    shift = np.empty(count, dtype=np.int64)
    corr, iid = np.empty((count, n)), np.empty((count, n))
    for i in range(count):
        pad[i], scale[i] = rng.rand(), rng.rand()
        shift[i] = rng.choice(args.max_translation)
        corr[i], iid[i] = rng.randn(n), rng.randn(n)
        shear[i] = rng.rand()
    return Draws(pad, scale, shift, corr, iid, shear)


def transform(shapes: np.ndarray, d: Draws, args: Mnist1dArgs, eps: float = 1e-8
              ) -> np.ndarray:
    """Templates ``[N, 12]`` through steps 1-8 of the module docstring -> ``[N, 40]`` float64.

    Steps 1-2 and 8 run per sample (``numpy.interp`` is one-dimensional), the rest on all rows
    at once; every value is computed with the same floating-point operations as the package's
    per-sample code, so the results are bit for bit the same."""
    low, high = args.padding
    pads = low + (d.pad * (high - low + 1)).astype(np.int64)
    x = np.stack([resample(np.concatenate([t + eps, np.zeros(p)]), args.dilated_length)
                  for t, p in zip(shapes, pads)])                           # [N, 72]
    x *= (1 + args.scale_coeff * (d.scale - 0.5))[:, None]
    cols = (np.arange(x.shape[1])[None, :] - d.shift[:, None]) % x.shape[1]
    x = np.take_along_axis(x, cols, axis=1)                                 # roll right by shift
    noise = gaussian_filter1d(args.corr_noise_scale * d.corr_noise, 2, axis=-1)
    x = np.where(x != 0, x, noise)
    x = x + args.iid_noise_scale * d.iid_noise
    x = x - (args.shear_scale * (d.shear - 0.5))[:, None] * grid(x.shape[1], -0.5, 0.5)
    return np.stack([resample(row, args.final_seq_length) for row in x])


def make_mnist1d(args: Mnist1dArgs = Mnist1dArgs()
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, x_test, y_test)``: signals ``[N, 40]`` float64 standardised over the whole set,
    labels ``[N]`` int64; train = the first ``int(train_split·N)`` shuffled samples."""
    rng = np.random.RandomState(args.seed)
    per_class = args.num_samples // NUM_CLASSES
    y = np.repeat(np.arange(NUM_CLASSES, dtype=np.int64), per_class)       # class by class
    x = transform(templates()[y], draw(rng, len(y), args), args)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    x = (x - x.mean()) / x.std()
    split = int(len(y) * args.train_split)
    return x[:split], y[:split], x[split:], y[split:]
