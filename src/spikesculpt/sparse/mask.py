"""``Mask``: which connections exist, keyed by parameter name.

A mask maps the state-dict name of a prunable weight (``"hidden.0.fc.weight"``) to a boolean
tensor of the weight's shape: ``True`` = the connection exists (active), ``False`` = pruned.
Layers absent from the mask are dense. Names, never positions, identify layers, so a mask
survives ``deepcopy``, re-ordering of modules and reloading into a fresh model.

Density is the fraction of connections kept: ``density(name) = active / numel`` per layer and
``density() = Σ active / Σ numel`` over the masked layers (a model-wide density that includes
unmasked dense layers is ``metrics.model_stats``' job).

On disk (``save`` / ``load``) a mask is a safetensors file with one ``uint8`` tensor of packed
bits per layer (``numpy.packbits`` of the flattened mask, big-endian bit order) and the shapes in
the JSON metadata: 1 bit per connection, 32x smaller than float32 weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.core.io import atomic_write


class Mask:
    """``{parameter name: bool tensor}`` with validation, densities and (packed) storage."""

    def __init__(self, masks: Mapping[str, torch.Tensor]):
        self._masks: dict[str, torch.Tensor] = {}
        for name, m in masks.items():
            if not isinstance(m, torch.Tensor):
                raise UserError(f"mask of {name!r} must be a tensor, got {type(m).__name__}")
            if m.dtype != torch.bool:
                if m.is_floating_point() or m.dtype in (torch.int8, torch.int16, torch.int32,
                                                          torch.int64, torch.uint8):
                    if not bool(((m == 0) | (m == 1)).all()):
                        raise UserError(f"mask of {name!r} holds values other than 0 and 1; "
                                        f"a mask is boolean (1 = keep the connection)")
                m = m != 0
            self._masks[name] = m

    # ------------------------------------------------------------------ construction
    @classmethod
    def ones_like(cls, model: nn.Module, names) -> "Mask":
        params = dict(model.named_parameters())
        return cls({n: torch.ones_like(params[n], dtype=torch.bool) for n in names})

    def clone(self) -> "Mask":
        return Mask({n: m.clone() for n, m in self._masks.items()})

    def to(self, device) -> "Mask":
        return Mask({n: m.to(device) for n, m in self._masks.items()})

    # ------------------------------------------------------------------ access
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._masks[name]

    def __contains__(self, name: str) -> bool:
        return name in self._masks

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def names(self) -> list[str]:
        return list(self._masks)

    def items(self):
        return self._masks.items()

    def __eq__(self, other) -> bool:
        return (isinstance(other, Mask) and self.names() == other.names()
                and all(torch.equal(self[n].cpu(), other[n].cpu()) for n in self))

    # ------------------------------------------------------------------ measures
    def active(self, name: str) -> int:
        return int(self._masks[name].sum())

    def density(self, name: str | None = None) -> float:
        """Fraction kept in layer ``name``, or over all masked layers."""
        if name is not None:
            m = self._masks[name]
            return self.active(name) / m.numel()
        total = sum(m.numel() for m in self._masks.values())
        return sum(self.active(n) for n in self._masks) / total if total else 1.0

    # ------------------------------------------------------------------ model
    def validate(self, model: nn.Module) -> "Mask":
        """Every name is a parameter of ``model`` with the mask's shape; else ``UserError``."""
        params = dict(model.named_parameters())
        for name, m in self._masks.items():
            if name not in params:
                raise UserError(f"mask names {name!r}, which is not a parameter of the model; "
                                f"masks are keyed by state-dict names such as "
                                f"{next(iter(params), '?')!r}")
            if tuple(params[name].shape) != tuple(m.shape):
                raise UserError(f"mask of {name!r} has shape {list(m.shape)} but the weight has "
                                f"{list(params[name].shape)}; rebuild the mask for this model")
        return self

    @torch.no_grad()
    def apply_(self, model: nn.Module) -> None:
        """Zero the pruned weights of ``model`` in place."""
        params = dict(model.named_parameters())
        for name, m in self._masks.items():
            params[name].masked_fill_(~m.to(params[name].device), 0)

    # ------------------------------------------------------------------ storage
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: m.clone().cpu() for n, m in self._masks.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Copy ``state`` into the existing tensors (references held elsewhere stay valid)."""
        if set(state) != set(self._masks):
            raise UserError("stored mask names differ from this model's; the checkpoint is from "
                            "another model or method")
        for n, m in self._masks.items():
            m.copy_(state[n].to(m.device))

    def packed(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """(``{name: uint8 packed bits}``, metadata ``{"shapes": json}``) for safetensors."""
        tensors, shapes = {}, {}
        for n, m in self._masks.items():
            bits = np.packbits(m.detach().cpu().numpy().reshape(-1).astype(np.uint8))
            tensors[n] = torch.from_numpy(bits)
            shapes[n] = list(m.shape)
        return tensors, {"shapes": json.dumps(shapes), "format": "spikesculpt-mask-v1"}

    @classmethod
    def from_packed(cls, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> "Mask":
        shapes = json.loads(metadata["shapes"])
        masks = {}
        for n, shape in shapes.items():
            numel = int(np.prod(shape)) if shape else 1
            bits = np.unpackbits(tensors[n].numpy())[:numel].astype(bool)
            masks[n] = torch.from_numpy(bits.reshape(shape))
        return cls(masks)

    def save(self, path: str | Path) -> Path:

        tensors, meta = self.packed()
        return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))

    @classmethod
    def load(cls, path: str | Path) -> "Mask":

        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
            return cls.from_packed(tensors, meta)
        except (OSError, SafetensorError, KeyError, ValueError) as exc:
            raise UserError(f"cannot read mask file {path} ({type(exc).__name__}); it is missing "
                            f"or corrupt") from None

    def __repr__(self) -> str:
        return f"Mask({len(self)} layers, density={self.density():.4f})"
