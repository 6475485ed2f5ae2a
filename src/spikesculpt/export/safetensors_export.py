"""Export a trained model as one safetensors file: dense weights with zeros in place, the masks
packed as bits, and JSON metadata — loadable with plain PyTorch + safetensors.

File layout (``format = "spikesculpt-export-v1"``):

- every tensor of ``model.state_dict()`` under its own name (weights with the pruned entries
  exactly 0, biases, BatchNorm statistics, PLIF's ``w``): ``model.load_state_dict`` takes them
  as they are;
- ``masks/<weight name>``: ``uint8`` packed bits of the boolean mask (``numpy.packbits`` of the
  flattened mask, big-endian bit order; 1 = connection kept) — the run's ``masks.safetensors``
  for sparse methods, else absent;
- metadata (all strings, JSON where structured): ``format``, ``model``, ``method``,
  ``density`` (nonzero / prunable weights), ``mask_density``, ``layer_density`` (per weight),
  ``mask_shapes`` (``{name: shape}``), ``mask_bit_order`` (``"big"``), ``config`` (the run's
  full config), ``config_hash``, ``spikesculpt`` (version).

Plain loading (no spikesculpt needed)::

    from safetensors.torch import load_file
    from safetensors import safe_open
    import json, numpy as np, torch
    tensors = load_file("export.safetensors")
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("masks/")})
    meta = safe_open("export.safetensors", "pt").metadata()
    shapes = json.loads(meta["mask_shapes"])
    masks = {n: torch.from_numpy(np.unpackbits(tensors["masks/" + n].numpy())[:int(np.prod(s))]
                                 .reshape(s).astype(bool)) for n, s in shapes.items()}

``read_export(path)`` does exactly that and returns ``(state_dict, masks, metadata)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.core.io import atomic_write
from spikesculpt.core.version import __version__
from spikesculpt.metrics.model_stats import model_stats
from spikesculpt.sparse import Mask

FORMAT = "spikesculpt-export-v1"
MASK_PREFIX = "masks/"


def export_safetensors(model: nn.Module, path: str | Path, mask: Optional[Mask] = None,
                       metadata: Optional[dict] = None) -> Path:
    """Write ``model`` (+ ``mask``) to ``path`` atomically; ``metadata`` adds to the header."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    stats = model_stats(model)
    meta = {"format": FORMAT, "spikesculpt": __version__,
            "density": stats["density"],
            "layer_density": {layer["name"]: layer["density"] for layer in stats["layers"]}}
    if mask is not None and len(mask):
        packed, mask_meta = mask.packed()
        for name, bits in packed.items():
            tensors[MASK_PREFIX + name] = bits
        meta.update(mask_shapes=json.loads(mask_meta["shapes"]), mask_bit_order="big",
                    mask_density=mask.density())
    else:
        meta.update(mask_shapes={})
    meta.update(metadata or {})
    strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=strings))


def read_export(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """``(state_dict, {weight name: bool mask}, metadata)`` of an exported file (metadata values
    JSON-decoded where they are JSON)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw_meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (OSError, SafetensorError) as exc:
        raise UserError(f"cannot read {path} ({type(exc).__name__}); it is missing or "
                        f"corrupt") from None
    meta = {}
    for k, v in raw_meta.items():
        try:
            meta[k] = json.loads(v)
        except ValueError:
            meta[k] = v
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a spikesculpt export (format {meta.get('format')!r})")
    state = {k: v for k, v in tensors.items() if not k.startswith(MASK_PREFIX)}
    shapes = meta.get("mask_shapes", {})
    packed = {n: tensors[MASK_PREFIX + n] for n in shapes}
    masks = dict(Mask.from_packed(packed, {"shapes": json.dumps(shapes)}).items()) if shapes else {}
    return state, masks, meta
