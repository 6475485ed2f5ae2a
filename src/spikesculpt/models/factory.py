"""The model registry, ``create_model`` and the argument checks shared by the builders.

    @register_model("mymodel")
    def mymodel(*, in_channels, image_size, num_classes, neuron, width=1.0, depth=3):
        '''One line for `spikesculpt list models`.'''
        return MyModel(...)

    model = create_model("mymodel", in_channels=3, image_size=32, num_classes=10, depth=4)

A builder receives the checked common arguments — ``in_channels`` (int), ``image_size``
(``(H, W)`` or ``None`` for flat feature vectors), ``num_classes`` (int) and ``neuron`` (a
zero-argument factory returning a fresh spiking neuron module) — plus its own keyword options,
and returns an ``nn.Module`` mapping time-major input ``[T, B, C, H, W]`` (``[T, B, F]``) to
per-time-step logits ``[T, B, num_classes]``. Unknown options and bad values raise ``UserError``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.core.registry import Registry
from spikesculpt.neurons import NEURONS, create_neuron

MODELS = Registry("model")

COMMON_ARGS = ("in_channels", "image_size", "num_classes", "neuron")


def register_model(name: str) -> Callable:
    """Decorator: register a model builder under ``name`` (see the module docstring)."""
    return MODELS.register(name)


def create_model(name: str, *, in_channels: int = 1, image_size: Any = (8, 8),
                 num_classes: int = 10, timesteps: int = 4, neuron: Any = "lif",
                 neuron_kwargs: Optional[dict] = None, **model_kwargs) -> nn.Module:
    """Build the registered model ``name``.

    Args:
        in_channels: input channels (1 for grey images, 2 for ON/OFF event frames).
        image_size: ``H`` or ``(H, W)`` of the input; ``None`` for flat feature vectors
            ``[T, B, F]`` (then pass ``in_features=F``; only ``mlp`` accepts them).
        num_classes: outputs of the linear readout.
        timesteps: T. The models run with any T; it is checked and kept in ``model.spec``.
        neuron: a registered neuron name (``spikesculpt list neurons``), or a zero-argument
            callable returning a fresh neuron module that maps ``[T, B, ...]`` to spikes and
            starts from rest at every call (activity metrics only see ``SpikingNeuron``s).
        neuron_kwargs: keyword arguments for every neuron (``tau``, ``v_threshold``, ...).
        **model_kwargs: the model's own options, e.g. ``width=0.5``, ``hidden=(128,)``.

    Returns an ``nn.Module`` mapping ``[T, B, C, H, W]`` (``[T, B, F]``) to logits
    ``[T, B, num_classes]``, one per time step. ``model.spec`` records the arguments.
    """
    builder = MODELS.get(name)
    in_channels = positive_int("in_channels", in_channels)
    size = image_size_arg(image_size)
    num_classes = positive_int("num_classes", num_classes)
    positive_int("timesteps", timesteps)
    if size is None and "in_features" not in inspect.signature(builder).parameters:
        require_image(name, size)  # before the option check: flat data comes with in_features
    _check_options(name, builder, model_kwargs)
    make_neuron = neuron_factory(neuron, neuron_kwargs)
    model = builder(in_channels=in_channels, image_size=size, num_classes=num_classes,
                    neuron=make_neuron, **model_kwargs)
    model.spec = {"model": name, "in_channels": in_channels, "image_size": size,
                  "num_classes": num_classes, "timesteps": timesteps,
                  "neuron": neuron if isinstance(neuron, str) else repr(neuron),
                  "neuron_kwargs": dict(neuron_kwargs or {}), **model_kwargs}
    return model


def model_options(name: str) -> dict[str, Any]:
    """The options of model ``name`` and their defaults (for help texts and ``list``)."""
    params = inspect.signature(MODELS.get(name)).parameters
    return {k: p.default for k, p in params.items()
            if k not in COMMON_ARGS and p.kind is p.KEYWORD_ONLY}


def _check_options(name: str, builder: Callable, kwargs: dict) -> None:
    params = inspect.signature(builder).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    allowed = [k for k in params if k not in COMMON_ARGS]
    for key in kwargs:
        if key in COMMON_ARGS or key not in params:
            raise UserError(f"model {name!r} has no option {key!r}; its options are: "
                            f"{', '.join(allowed) or '(none)'}")


def neuron_factory(neuron: Any, neuron_kwargs: Optional[dict]) -> Callable[[], nn.Module]:
    """A zero-argument callable building one fresh neuron per spiking layer."""
    kwargs = dict(neuron_kwargs or {})
    if callable(neuron) and not isinstance(neuron, str):
        if kwargs:
            raise UserError("neuron_kwargs apply to registered neuron names only; bind them "
                            "into your neuron factory (e.g. functools.partial)")
        return neuron
    NEURONS.get(neuron)  # UserError for unknown names, listing the valid ones
    try:
        create_neuron(neuron, **kwargs)
    except TypeError as exc:
        raise UserError(f"neuron {neuron!r} rejects its arguments {sorted(kwargs)}: {exc}; "
                        f"drop or rename the option") from None
    return lambda: create_neuron(neuron, **kwargs)


# --------------------------------------------------------------------------- argument checks
def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    if not _is_int(value) or value <= 0:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def int_tuple(name: str, value: Any, allow_empty: bool = False) -> tuple[int, ...]:
    """A positive int or a list/tuple of positive ints (YAML and CLI give lists)."""
    items = (value,) if _is_int(value) else value
    if not isinstance(items, (list, tuple)) or not all(_is_int(v) and v > 0 for v in items) \
            or (not items and not allow_empty):
        raise UserError(f"{name} must be a positive integer or a list of them, got {value!r}; "
                        f"e.g. {name}=[128,128]")
    return tuple(int(v) for v in items)


def image_size_arg(value: Any) -> Optional[tuple[int, int]]:
    """``None`` (flat features), ``S`` -> ``(S, S)``, or ``(H, W)``; all sides positive."""
    if value is None:
        return None
    if _is_int(value):
        value = (value, value)
    if isinstance(value, torch.Size):
        value = tuple(value)
    if not isinstance(value, (list, tuple)) or len(value) != 2 \
            or not all(_is_int(v) and v > 0 for v in value):
        raise UserError(f"image_size must be a positive integer or (height, width), got "
                        f"{value!r}; e.g. image_size=32 or image_size=(48, 48)")
    return int(value[0]), int(value[1])


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1."""
    return max(1, int(round(channels * width)))


def require_image(name: str, image_size: Optional[Sequence[int]]) -> tuple[int, int]:
    if image_size is None:
        raise UserError(f"model {name!r} needs image input [T, B, C, H, W] (image_size); this "
                        f"input is a flat feature vector — use --model mlp")
    return tuple(image_size)  # type: ignore[return-value]


def pool_kind(name: str, value: Any) -> str:
    if value not in ("avg", "max"):
        raise UserError(f"model {name!r}: pool must be 'avg' or 'max', got {value!r}")
    return value


def head_pool_arg(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if not _is_int(value) or value <= 0:
        raise UserError(f"model {name!r}: head_pool must be a positive integer (pool the last "
                        f"feature map to head_pool x head_pool) or null, got {value!r}")
    return int(value)


def dropout_arg(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise UserError(f"model {name!r}: dropout must be in [0, 1), got {value!r}")
    return float(value)
