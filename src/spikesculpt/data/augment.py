"""Train-time augmentation of image and event-frame batches (``--augment``).

    --augment standard           # = flip+shift
    --augment flip+shift+cutout

Operations, applied in the order given to every training batch (never to validation or test),
independently per sample, identically over the time steps of one sample (an event recording is
flipped or shifted as a whole):

- ``flip``: mirror left-right with probability 1/2.
- ``shift`` (alias ``crop``): move by ``(dy, dx)``, each uniform in ``-pad..pad`` with
  ``pad = max(1, round(min(H, W) / 8))`` (4 px on 32x32, 4 on 34x34, 1 on 8x8), filling with
  zeros. For images this is exactly the standard "random crop of the zero-padded image"
  (padding 4 on CIFAR); for event frames it is the usual small spatial jitter.
- ``cutout`` (DeVries & Taylor 2017): zero a square of side ``max(1, round(min(H, W) / 2))``
  (16 on 32x32) at a uniformly drawn centre (it may stick out of the image).

``standard`` = ``flip+shift``, the CIFAR recipe (random crop with padding + horizontal flip)
and the usual event-frame recipe. Do not flip data whose classes differ by handedness
(DVS128 Gesture: a mirrored left-arm gesture is the right-arm class) or digits.

Layouts: static images ``[B, C, H, W]``, event frames ``[B, T, C, H, W]``; flat features (SHD,
``[B, F]`` / ``[B, T, F]``) cannot be augmented this way (``UserError``). Randomness comes from
the generator the trainer passes, seeded by ``(seed, epoch)``, so runs and resumes repeat.
"""

from __future__ import annotations

from typing import Optional

import torch

from spikesculpt.core.errors import UserError

OPS = ("flip", "shift", "cutout")
ALIASES = {"crop": ("shift",), "standard": ("flip", "shift"), "none": ()}


def parse_augment(spec: Optional[str]) -> tuple[str, ...]:
    """``"flip+shift"`` -> ``("flip", "shift")``; ``"none"``/empty -> ``()``."""
    if spec is None:
        return ()
    if not isinstance(spec, str):
        raise UserError(f"augment must be a string such as 'standard' or 'flip+shift', got "
                        f"{spec!r}")
    ops: list[str] = []
    for part in (p.strip().lower() for p in spec.replace(",", "+").split("+")):
        if not part:
            continue
        if part in ALIASES:
            ops.extend(ALIASES[part])
        elif part in OPS:
            ops.append(part)
        else:
            raise UserError(f"unknown augmentation {part!r}; choose from: "
                            f"{', '.join(OPS + tuple(ALIASES))}, joined with + "
                            f"(e.g. --augment flip+shift)")
    return tuple(ops)


class BatchAugment:
    """Callable ``(x [B, ...], generator) -> x`` applying ``ops`` (see the module docstring)."""

    def __init__(self, ops: tuple[str, ...], image_size: tuple[int, int]):
        self.ops = ops
        h, w = image_size
        self.pad = max(1, round(min(h, w) / 8))
        self.hole = max(1, round(min(h, w) / 2))

    def __call__(self, x: torch.Tensor, generator: Optional[torch.Generator] = None):
        if not self.ops:
            return x
        x = x.clone()
        for op in self.ops:
            x = getattr(self, "_" + op)(x, generator)
        return x

    @staticmethod
    def _flip(x, g):
        mask = torch.rand(x.shape[0], generator=g) < 0.5
        x[mask] = x[mask].flip(-1)
        return x

    def _shift(self, x, g):
        b, (h, w), p = x.shape[0], x.shape[-2:], self.pad
        d = torch.randint(-p, p + 1, (b, 2), generator=g).tolist()
        out = torch.zeros_like(x)
        for i, (dy, dx) in enumerate(d):
            ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h),
                                                                       slice(0, h + dy))
            xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w),
                                                                       slice(0, w + dx))
            out[i, ..., yd, xd] = x[i, ..., ys, xs]
        return out

    def _cutout(self, x, g):
        b, (h, w) = x.shape[0], x.shape[-2:]
        cy = torch.randint(0, h, (b,), generator=g).tolist()
        cx = torch.randint(0, w, (b,), generator=g).tolist()
        half = self.hole // 2
        for i in range(b):
            y0, x0 = max(cy[i] - half, 0), max(cx[i] - half, 0)
            x[i, ..., y0:cy[i] - half + self.hole, x0:cx[i] - half + self.hole] = 0
        return x


def build_augment(spec: Optional[str], info) -> Optional[BatchAugment]:
    """The augmentation for a dataset's ``info`` (a ``DatasetInfo``), or None for ``none``."""
    ops = parse_augment(spec)
    if not ops:
        return None
    if info.image_size is None:
        raise UserError(f"--augment {spec} needs image-like data [C, H, W]; {info.name} holds "
                        f"flat features {list(info.input_shape)}: drop --augment")
    return BatchAugment(ops, info.image_size)
