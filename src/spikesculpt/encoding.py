"""Input encoders: static samples ``x [B, ...]`` -> time-major input ``[T, B, ...]``.

    from spikesculpt.encoding import encode
    encode(x, 4)                           # direct: the analog image repeated (a view, no copy)
    encode(x, 4, "poisson", generator=g)   # Bernoulli spikes with P(spike) = x at each step
    encode(x, 4, "latency")                # one spike per pixel, brighter = earlier
    encode(frames, 4, "none")              # already time-major [T, B, ...]: passed through

``direct``   The first layer receives the analog input at every step as a constant current
             (the encoding of most recent deep SNNs: tdBN, TET, Kim et al.). Any real values are
             allowed (normalised images may be negative). The result is ``x.expand(T, ...)``, a
             view sharing ``x``'s memory: do not write into it (``.clone()`` if you must).
``poisson``  Rate coding: ``spike[t] ~ Bernoulli(x)`` independently per step and element, so the
             expected rate is ``x``. Needs ``x`` in [0, 1]. Draws come from ``generator`` when
             given (seeded, reproducible); a generator on another device than ``x`` (e.g. a CPU
             generator with CUDA data) draws there and moves the spikes, so the same seed gives
             the same spikes on every device.
``latency``  Time-to-first-spike: each element spikes once, at step
             ``t = round((1 - x) * (T - 1))`` (``torch.round``: halves to even), so x = 1 fires at
             t = 0 and small x late. Our choice: ``x == 0`` never fires (no intensity, no
             event — the input stays silent where the image is black), and T = 1 puts every
             nonzero element at t = 0. Needs ``x`` in [0, 1].
``none``     The input is already time-major ``[T, B, ...]`` (event frames); returned unchanged,
             after checking that its first axis has ``timesteps`` entries. Data stored as
             ``[B, T, ...]`` is transposed by the data layer, not here.

Spike outputs have ``x``'s floating dtype and device. Bad input raises ``UserError``.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from spikesculpt.core.errors import UserError
from spikesculpt.core.registry import Registry

ENCODERS = Registry("encoder")

Encoder = Callable[[torch.Tensor, int, Optional[torch.Generator]], torch.Tensor]


def static_encoders() -> list[str]:
    """The encoders of static samples ``[B, ...]`` (all registered ones but those that take
    time-major input, ``none``): the choices of ``TrainConfig.encoding``."""
    return [n for n in ENCODERS.names() if not getattr(ENCODERS.get(n), "time_major_input", False)]


def encode(x: torch.Tensor, timesteps: int, method: str = "direct",
           generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Encode ``x [B, ...]`` into ``[T, B, ...]`` with the registered encoder ``method``."""
    encoder = ENCODERS.get(method)
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise UserError(f"timesteps must be a positive integer, got {timesteps!r}; "
                        f"e.g. --timesteps 4")
    if not isinstance(x, torch.Tensor):
        raise UserError(f"encode expects a torch.Tensor, got {type(x).__name__}")
    return encoder(x, timesteps, generator)


def _check_float(x: torch.Tensor, method: str) -> None:
    if not x.is_floating_point():
        raise UserError(f"{method} encoding needs floating-point input, got {x.dtype}; convert "
                        f"it first, e.g. x.float() / 255 for 8-bit images")
    if x.dim() < 1:
        raise UserError(f"{method} encoding needs a batch [B, ...], got a scalar")


def _check_unit_range(x: torch.Tensor, method: str) -> None:
    _check_float(x, method)
    if x.numel() == 0:
        return
    lo, hi = torch.aminmax(x.detach())
    lo, hi = float(lo), float(hi)
    if not (lo >= 0.0 and hi <= 1.0):  # also rejects NaN
        raise UserError(f"{method} encoding needs intensities in [0, 1], got values in "
                        f"[{lo:.4g}, {hi:.4g}]; scale the data to [0, 1] (no mean/std "
                        f"normalisation) or use direct encoding")


@ENCODERS.register("direct")
def direct(x: torch.Tensor, timesteps: int, generator: Optional[torch.Generator] = None):
    """Analog input repeated at every step (constant current); a view, no copy."""
    _check_float(x, "direct")
    return x.unsqueeze(0).expand(timesteps, *x.shape)


@ENCODERS.register("poisson")
def poisson(x: torch.Tensor, timesteps: int, generator: Optional[torch.Generator] = None):
    """Rate coding: independent Bernoulli(x) spikes at every step; x in [0, 1]."""
    _check_unit_range(x, "poisson")
    shape = (timesteps, *x.shape)
    if generator is not None and generator.device != x.device:
        u = torch.rand(shape, generator=generator, device=generator.device, dtype=x.dtype)
        return (u < x.to(generator.device)).to(device=x.device, dtype=x.dtype)
    u = torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)
    return (u < x).to(x.dtype)


@ENCODERS.register("latency")
def latency(x: torch.Tensor, timesteps: int, generator: Optional[torch.Generator] = None):
    """Time-to-first-spike: one spike at t = round((1 - x)(T - 1)); brighter = earlier; 0 = none."""
    _check_unit_range(x, "latency")
    steps = torch.round((1 - x.detach()) * (timesteps - 1)).long().clamp_(0, timesteps - 1)
    out = torch.zeros((timesteps, *x.shape), dtype=x.dtype, device=x.device)
    out.scatter_(0, steps.unsqueeze(0), (x.detach() > 0).to(x.dtype).unsqueeze(0))
    return out


@ENCODERS.register("none")
def passthrough(x: torch.Tensor, timesteps: int, generator: Optional[torch.Generator] = None):
    """Already time-major [T, B, ...] (event frames): returned unchanged."""
    if x.dim() < 2 or x.shape[0] != timesteps:
        raise UserError(f"encoding 'none' expects time-major input [T={timesteps}, B, ...], got "
                        f"shape {list(x.shape)}; set timesteps to the number of frames, or "
                        f"encode static data with direct/poisson/latency")
    return x


passthrough.time_major_input = True  # not a choice for static data
