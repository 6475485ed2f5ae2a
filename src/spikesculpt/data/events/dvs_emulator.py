"""A seeded event-camera (DVS) emulator: static images -> ON/OFF event streams.

How N-MNIST (Orchard et al., Front. Neurosci. 2015) and CIFAR10-DVS (Li et al., Front. Neurosci.
2017) were recorded: a static image is shown to an event camera while the image (or the camera)
moves along small saccades; every pixel reports the *changes* of its log intensity. This module
does the same in software, with the pixel model of the DVS emulators ESIM (Rebecq et al., CoRL
2018) and v2e (Hu, Liu & Delbruck, CVPR-W 2021), reduced to what a static scene needs.

Scene and motion (all lengths in sensor pixels, times in microseconds):

- the grey image (RGB is converted to luminance 0.299 R + 0.587 G + 0.114 B; values are clamped
  to [0, 1]) is drawn, bilinearly upsampled, into the centred square of side
  ``S = size - 2 * margin`` of a ``size x size`` sensor; outside it the scene is black;
- the image moves along ``saccades`` straight segments of ``saccade_ms`` each at constant speed,
  visiting in turn the corners of the triangle ``(0, -A/2) -> (A/2, A/2) -> (-A/2, A/2)`` with
  ``A = amplitude`` (the N-MNIST pattern: three saccades around a triangle, ~100 ms each); the
  recording lasts ``saccades * saccade_ms``;
- the scene is sampled every ``dt_ms``: at step k (time ``t_k = k * dt``) the sensor sees the
  intensity ``I_k(u, v) = image(u - dx_k, v - dy_k)`` at pixel centres.

Pixel model (per pixel, per polarity):

- log intensity ``L = log(dark + I)``; ``dark`` (default 0.1) keeps black finite, like the
  photoreceptor's dark current (v2e's linear region near zero);
- every pixel keeps a reference ``L_ref``, set to ``L_0`` at the start;
- at step k, ``D = L_k - L_ref``; if ``D >= C_on`` the pixel emits ``n = floor(D / C_on)`` ON
  events and ``L_ref += n * C_on``; if ``-D >= C_off`` it emits ``n = floor(-D / C_off)`` OFF
  events and ``L_ref -= n * C_off``. The n events of one step get the timestamps
  ``t_{k-1} + (i + 1) * dt // n``, i = 0..n-1 (spread evenly over the step, the last at t_k);
- refractory period ``r = refractory_ms`` (0 = off): a pixel whose last event was at ``t_last``
  may fire at step k only if ``t_k - t_last >= r``, and then emits a single event (the rest of
  the change stays pending, its reference moves by one threshold only), so it fires at most once
  per ``max(r, dt)``;
- threshold mismatch: ``C_on`` and ``C_off`` are drawn once per pixel as
  ``threshold * (1 + mismatch * N(0, 1))`` (clipped at 0.01): a fixed pattern of this sensor,
  the same for every image (v2e's ``sigma_thres``, default 0.03);
- background activity: shot-noise events at ``noise_hz`` per pixel (ON and OFF together, half
  each), uniform in time and space, independent of the scene (v2e's shot noise).

Randomness is explicit and seeded: the mismatch pattern comes from ``seed``; the noise of an
image from ``(seed, CRC-32 of the image's bytes)``, so a sample's events do not depend on its
position in the dataset, the batch it was emulated in, or the other samples.

Not modelled (v2e has them): the photoreceptor low-pass filter (finite bandwidth at low light),
leak events, hot pixels, timestamp jitter.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from spikesculpt.core.errors import UserError
from spikesculpt.data.events.stream import EVENT_DTYPE

LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class DVSEmulator:
    """Parameters of the emulated sensor and motion (see the module docstring for the model).

    Defaults give N-MNIST-like recordings: a 34x34 sensor, the image 28x28 in its centre, three
    100 ms saccades of 3 px, thresholds 0.2 (+-3% mismatch), no refractory period, 0.1 Hz noise.
    """

    size: int = 34               # sensor side, pixels (square sensor, 2 polarities)
    margin: int = 3              # free border: the image is drawn in a (size - 2 margin)^2 square
    saccades: int = 3            # number of straight motion segments
    saccade_ms: float = 100.0    # duration of one saccade
    amplitude: float = 3.0       # side of the saccade triangle, sensor pixels
    dt_ms: float = 1.0           # simulation step
    threshold: float = 0.2       # contrast threshold C (log-intensity units), ON and OFF
    mismatch: float = 0.03       # relative std of the per-pixel thresholds
    refractory_ms: float = 0.0   # refractory period (0 = none)
    noise_hz: float = 0.1        # background activity per pixel (ON + OFF)
    dark: float = 0.1            # L = log(dark + I)
    seed: int = 0                # mismatch pattern and noise

    def __post_init__(self):
        checks = [("size", self.size > 0 and float(self.size).is_integer()),
                  ("margin", self.margin >= 0 and float(self.margin).is_integer()
                   and self.size - 2 * self.margin > 0),
                  ("saccades", self.saccades > 0 and float(self.saccades).is_integer()),
                  ("saccade_ms", self.saccade_ms > 0), ("amplitude", self.amplitude >= 0),
                  ("dt_ms", 0 < self.dt_ms <= self.saccade_ms),
                  ("threshold", self.threshold > 0), ("mismatch", self.mismatch >= 0),
                  ("refractory_ms", self.refractory_ms >= 0), ("noise_hz", self.noise_hz >= 0),
                  ("dark", self.dark > 0), ("seed", float(self.seed).is_integer())]
        for name, ok in checks:
            if not ok:
                raise UserError(f"DVS emulator: {name}={getattr(self, name)!r} is out of range; "
                                f"see 'spikesculpt.data.events.dvs_emulator' for the allowed "
                                f"values (e.g. size > 2 margin, 0 < dt_ms <= saccade_ms, "
                                f"threshold > 0)")
        for name in ("size", "margin", "saccades", "seed"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for f in fields(self):
            if f.type == "float":
                object.__setattr__(self, f.name, float(getattr(self, f.name)))

    # ------------------------------------------------------------------ derived quantities
    @property
    def sensor(self) -> tuple[int, int, int]:
        """``(W, H, P)``."""
        return (self.size, self.size, 2)

    @property
    def steps(self) -> int:
        """Simulation steps of the whole recording (after the initial frame)."""
        return int(round(self.saccades * self.saccade_ms / self.dt_ms))

    @property
    def duration_us(self) -> int:
        return int(round(self.saccades * self.saccade_ms * 1000))

    def times_us(self) -> np.ndarray:
        """``t_0 = 0, t_1, ..., t_K``: the sampling instants, integers in microseconds."""
        return np.round(np.linspace(0, self.duration_us, self.steps + 1)).astype(np.int64)

    def to_dict(self) -> dict:
        return asdict(self)

    def path(self) -> np.ndarray:
        """Displacements ``[K + 1, 2]`` (dx, dy) of the image at every sampling instant."""
        a = self.amplitude
        corners = np.array([[0.0, -a / 2], [a / 2, a / 2], [-a / 2, a / 2]])
        t = self.times_us() / (self.saccade_ms * 1000)      # in saccades
        seg = np.minimum(np.floor(t).astype(int), self.saccades - 1)
        frac = (t - seg)[:, None]
        start, end = corners[seg % 3], corners[(seg + 1) % 3]
        return start + frac * (end - start)

    def thresholds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel ``(C_on, C_off)``, each ``[H, W]`` float32: this sensor's fixed pattern."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0]))
        z = rng.standard_normal((2, self.size, self.size))
        c = np.maximum(self.threshold * (1 + self.mismatch * z), 0.01).astype(np.float32)
        return torch.from_numpy(c[0]), torch.from_numpy(c[1])

    # ------------------------------------------------------------------ emulation
    def emulate(self, images, chunk: int = 256) -> list[np.ndarray]:
        """Event streams of ``images`` (``[N, H, W]``, ``[N, 1, H, W]`` or ``[N, 3, H, W]``,
        values in [0, 1]): one ``EVENT_DTYPE`` array per image, sorted by time."""
        grey = grey_images(images)
        out: list[np.ndarray] = []
        for start in range(0, len(grey), chunk):
            out.extend(self._emulate_chunk(grey[start:start + chunk]))
        return out

    def iter_emulate(self, images, chunk: int = 256) -> Iterator[np.ndarray]:
        """Like :meth:`emulate`, one image's events at a time (bounded memory)."""
        grey = grey_images(images)
        for start in range(0, len(grey), chunk):
            yield from self._emulate_chunk(grey[start:start + chunk])

    def _emulate_chunk(self, grey: np.ndarray) -> list[np.ndarray]:
        # Hundreds of small tensor ops per step: one thread is as fast as two on an idle
        # machine and many times faster on a busy one (no OpenMP spin-waiting).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._emulate_chunk_1t(grey)
        finally:
            torch.set_num_threads(threads)

    def _emulate_chunk_1t(self, grey: np.ndarray) -> list[np.ndarray]:
        n = len(grey)
        if n == 0:
            return []
        times = self.times_us()
        c_on, c_off = self.thresholds()
        frames = self._log_frames(torch.from_numpy(grey))
        idx, t, x, y, p = simulate_pixels(frames, times, c_on, c_off,
                                          int(round(self.refractory_ms * 1000)))
        order = np.argsort(idx, kind="stable")   # events are in time order within a sample
        idx, t, x, y, p = idx[order], t[order], x[order], y[order], p[order]
        bounds = np.searchsorted(idx, np.arange(n + 1))
        result = []
        for i in range(n):
            a, b = bounds[i], bounds[i + 1]
            ev = np.empty(b - a, dtype=EVENT_DTYPE)
            ev["t"], ev["x"], ev["y"], ev["p"] = t[a:b], x[a:b], y[a:b], p[a:b]
            result.append(self._add_noise(ev, grey[i]))
        return result

    def _log_frames(self, grey: torch.Tensor) -> Iterator[torch.Tensor]:
        """``log(dark + I_k)`` ``[N, size, size]`` for every sampling instant k."""
        n = grey.shape[0]
        s_img = self.size - 2 * self.margin
        centres = torch.arange(self.size, dtype=torch.float64) + 0.5
        imgs = grey[:, None].float()
        for dx, dy in self.path():
            # sensor position u sees image position u - dx; normalised for grid_sample
            gx = 2 * (centres - dx - self.margin) / s_img - 1
            gy = 2 * (centres - dy - self.margin) / s_img - 1
            grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).float()
            scene = F.grid_sample(imgs, grid[None].expand(n, -1, -1, -1), mode="bilinear",
                                  padding_mode="zeros", align_corners=False)[:, 0]
            yield torch.log(scene.clamp_(0, 1) + self.dark)

    def _add_noise(self, ev: np.ndarray, image: np.ndarray) -> np.ndarray:
        if self.noise_hz <= 0:
            return ev
        key = zlib.crc32(np.ascontiguousarray(image, dtype=np.float32).tobytes())
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1, key]))
        mean = self.noise_hz * self.duration_us * 1e-6 * self.size * self.size
        k = int(rng.poisson(mean))
        if k == 0:
            return ev
        noise = np.empty(k, dtype=EVENT_DTYPE)
        noise["t"] = rng.integers(0, self.duration_us, k)
        noise["x"] = rng.integers(0, self.size, k)
        noise["y"] = rng.integers(0, self.size, k)
        noise["p"] = rng.integers(0, 2, k)
        merged = np.concatenate([ev, noise])
        return merged[np.argsort(merged["t"], kind="stable")]


def grey_images(images) -> np.ndarray:
    """``[N, H, W]`` float32 in [0, 1] from ``[N, H, W]``, ``[N, 1, H, W]`` or ``[N, 3, H, W]``."""
    a = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    a = a.astype(np.float32, copy=False)
    if a.ndim == 4 and a.shape[1] == 3:
        a = np.tensordot(a, np.asarray(LUMA, dtype=np.float32), axes=([1], [0]))
    elif a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3:
        raise UserError(f"the DVS emulator takes images [N, H, W], [N, 1, H, W] or "
                        f"[N, 3, H, W], got shape {list(a.shape)}; it needs image data, not "
                        f"feature vectors or event frames")
    if not np.isfinite(a).all():
        raise UserError("the DVS emulator got NaN or inf pixel values; clean the images first")
    return np.clip(a, 0.0, 1.0)


def simulate_pixels(log_frames: Iterable[torch.Tensor], times_us: Sequence[int],
                    c_on: torch.Tensor, c_off: torch.Tensor, refractory_us: int = 0):
    """The pixel model on an explicit sequence of log-intensity frames.

    Args:
        log_frames: ``K + 1`` tensors ``[N, H, W]``: ``L_0`` (sets the references) then
            ``L_1 .. L_K``.
        times_us: the ``K + 1`` sampling instants (integers, increasing).
        c_on, c_off: thresholds, broadcastable to ``[N, H, W]`` (e.g. ``[H, W]`` or scalars).
        refractory_us: refractory period in microseconds (0 = none).

    Returns ``(sample, t, x, y, p)`` NumPy arrays of all events, in time order within a sample.
    """
    frames = iter(log_frames)
    try:
        ref = next(frames).clone()
    except StopIteration:
        raise ValueError("simulate_pixels needs at least one frame") from None
    times = [int(v) for v in times_us]
    last = torch.full(ref.shape, -(2 ** 62), dtype=torch.int64)
    parts: list[tuple] = []
    c_on = torch.as_tensor(c_on, dtype=ref.dtype)
    c_off = torch.as_tensor(c_off, dtype=ref.dtype)
    for k, frame in enumerate(frames, start=1):
        t_prev, t_now = times[k - 1], times[k]
        d = frame - ref
        n_on = torch.floor(d / c_on).clamp_(min=0).to(torch.int64)
        n_off = torch.floor(-d / c_off).clamp_(min=0).to(torch.int64)
        if refractory_us > 0:
            allowed = (t_now - last) >= refractory_us
            n_on = torch.where(allowed, n_on.clamp(max=1), 0)
            n_off = torch.where(allowed, n_off.clamp(max=1), 0)
        fired = (n_on > 0) | (n_off > 0)
        if not bool(fired.any()):
            continue
        ref += n_on * c_on - n_off * c_off
        last[fired] = t_now
        for counts, polarity in ((n_on, 1), (n_off, 0)):
            nz = counts.nonzero()
            if len(nz) == 0:
                continue
            c = counts[nz[:, 0], nz[:, 1], nz[:, 2]].numpy()
            rep = np.repeat(np.arange(len(c)), c)
            within = np.arange(len(rep)) - np.repeat(np.cumsum(c) - c, c)
            t = t_prev + ((t_now - t_prev) * (within + 1)) // c[rep]
            nz = nz.numpy()[rep]
            parts.append((nz[:, 0], t, nz[:, 2], nz[:, 1], np.full(len(rep), polarity)))
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, z, z
    cols = [np.concatenate([part[i] for part in parts]) for i in range(5)]
    return tuple(c.astype(np.int64) for c in cols)


def emulator_from_options(options: dict) -> DVSEmulator:
    """A ``DVSEmulator`` from ``{field: value}`` (unknown fields are a ``UserError``)."""
    known = {f.name for f in fields(DVSEmulator)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"unknown DVS emulator option {unknown[0]!r}; the options are: "
                        f"{', '.join(sorted(known))}")
    return DVSEmulator(**options)


