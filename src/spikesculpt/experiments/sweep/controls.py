"""Control cells of a sweep: "a smaller dense network with the same number of connections".

``matched-dense`` (``--controls matched-dense``, ``controls: [matched-dense]``): for every
density d of the grid, a ``dense`` cell whose model is narrowed until its connections (the
prunable weights, ``models.utils.prunable_parameters``: conv / linear weights, the ones a sparse
method masks) number as close as possible to what the sparse cells keep at d:

    target(d) = round(d · P)        P = prunable weights of the cell's full-width model

(the global budget of ``sparse.allocation.layer_counts``, which every sparse method draws its
masks from, dense-kept layers included). E.g. the MLP 40-512-512-10 on mnist1d has P = 287,744;
at d = 0.1 the target is 28,774 connections, and width 0.286 (hidden 146-146) gives 28,616
(147-147 would give 28,959).

The model is narrowed through its ``width`` option (every registered builder has one: it
multiplies hidden sizes / channels / the embedding dimension), searched by bisection on
w ∈ (0, w₀] (w₀ = the cell's own width, the builder's default when unset): the connection count
C(w) is a non-decreasing step function of w, counted by building the model on the ``meta``
device (shapes only, no memory, ~10 ms). The chosen count is the one nearest to the target (a tie
goes to the smaller model); the width recorded is the shortest decimal that gives that count.
"""

from __future__ import annotations

import copy
import inspect
import math
from typing import Callable, Optional

import torch

from spikesculpt.config import TrainConfig
from spikesculpt.core.errors import UserError
from spikesculpt.data import load_dataset
from spikesculpt.experiments.train_run import build_model
from spikesculpt.models import MODELS, prunable_parameters

CONTROLS = ("matched-dense",)
WIDTH = "width"
BISECTION_STEPS = 60
MIN_WIDTH = 1e-9   # every scaled size rounds to its floor of 1 here


def check_controls(controls) -> list[str]:
    """The control names as a list; one-line ``UserError`` for an unknown one."""
    if isinstance(controls, str):
        controls = [c.strip() for c in controls.split(",") if c.strip()]
    if not isinstance(controls, (list, tuple)):
        raise UserError(f"controls must be a list of names, got {controls!r}; e.g. "
                        f"controls: [matched-dense]")
    for name in controls:
        if name not in CONTROLS:
            raise UserError(f"unknown control {name!r}; the controls are: {', '.join(CONTROLS)}")
    return list(dict.fromkeys(controls))


def has_width(model: str) -> bool:
    """Whether the registered model builder ``model`` takes a ``width`` option."""
    return WIDTH in inspect.signature(MODELS.get(model)).parameters


def widened_models() -> list[str]:
    """The registered models with a ``width`` option (the ones ``matched-dense`` can narrow)."""
    return [name for name in MODELS.names() if has_width(name)]


def connection_counter(config: TrainConfig) -> Callable[[float], int]:
    """``count(w)``: the prunable weights of ``config``'s model built with ``width=w`` (on the
    meta device: shapes only)."""
    if not has_width(config.model):
        raise UserError(f"control matched-dense narrows the model through its width option; "
                        f"model {config.model!r} has none (models with one: "
                        f"{', '.join(widened_models())})")
    info = load_dataset(config.dataset, seed=0, val_fraction=config.val_fraction,
                        data_root=config.data_root, timesteps=config.timesteps,
                        download=config.download).info

    def count(width: float) -> int:
        narrowed = copy.deepcopy(config)
        narrowed.model_kwargs = {**config.model_kwargs, WIDTH: width}
        with torch.device("meta"):
            model = build_model(narrowed, info)
        return sum(p.numel() for _, p in prunable_parameters(model))

    return count


def base_width(config: TrainConfig) -> float:
    """The width the config's model is built with (its ``model_kwargs``, else the default)."""
    width = config.model_kwargs.get(WIDTH)
    if width is None:
        width = inspect.signature(MODELS.get(config.model)).parameters[WIDTH].default
    if isinstance(width, bool) or not isinstance(width, (int, float)) or width <= 0:
        raise UserError(f"control matched-dense needs a positive model width, got {width!r}")
    return float(width)


def matched_width(count: Callable[[float], int], full_width: float,
                  target: int) -> tuple[float, int]:
    """``(w, count(w))`` with ``count(w)`` nearest to ``target`` over w ∈ (0, full_width] (a tie
    goes to the smaller count), w the shortest decimal giving that count. ``count`` must be
    non-decreasing in w."""
    lo, hi = MIN_WIDTH * full_width, float(full_width)
    c_lo, c_hi = count(lo), count(hi)
    if c_hi <= target:
        return hi, c_hi
    if c_lo >= target:
        return _shortest(count, lo, hi, c_lo), c_lo
    for _ in range(BISECTION_STEPS):  # invariant: count(lo) <= target < count(hi)
        mid = 0.5 * (lo + hi)
        c_mid = count(mid)
        lo, hi, c_lo, c_hi = (mid, hi, c_mid, c_hi) if c_mid <= target else (lo, mid, c_lo, c_mid)
    if target - c_lo <= c_hi - target:
        return _shortest(count, lo, full_width, c_lo), c_lo
    return _shortest(count, hi, full_width, c_hi), c_hi


def _shortest(count: Callable[[float], int], width: float, full_width: float,
              wanted: int) -> float:
    """The decimal with the fewest digits near ``width`` that still gives ``wanted``
    connections (``width`` itself if none has ≤ 12 digits)."""
    for digits in range(1, 13):
        scale = 10 ** digits
        for candidate in (math.floor(width * scale) / scale, math.ceil(width * scale) / scale):
            if 0 < candidate <= full_width and count(candidate) == wanted:
                return candidate
    return width


def matched_dense_config(config: TrainConfig, density: float,
                         counters: Optional[dict] = None) -> tuple[TrainConfig, int, int]:
    """``config`` (a ``dense`` cell's) narrowed to ``round(density · P)`` connections:
    ``(config with model_kwargs.width set, its connections, the target)``. ``counters`` caches
    one counter per model / dataset (the dataset is read once)."""
    key = (config.dataset, config.data_root, config.timesteps, config.model,
           repr(sorted((k, repr(v)) for k, v in config.model_kwargs.items() if k != WIDTH)),
           config.neuron.name)
    counters = {} if counters is None else counters
    if key not in counters:
        counters[key] = connection_counter(config)
    count = counters[key]
    full = base_width(config)
    target = round(density * count(full))
    width, connections = matched_width(count, full, target)
    narrowed = copy.deepcopy(config)
    narrowed.model_kwargs = {**config.model_kwargs, WIDTH: width}
    return narrowed, connections, target
