"""Patch tickets: which models have tokens, and how many they keep.

The selection itself lives in the model (``models.spikformer.select_tokens``: per sample, the
``ceil(keep · N)`` tokens with the most spikes in the patch embedding's output, summed over T and
channels; dropped tokens lose their position embedding too). It is a model option
(``patch_keep``, ``--patch-keep``), so it works in ``spikesculpt train`` as well as in every
lottery strategy; ``multilevel`` sets it after finding the embedding's connection ticket.

A model *has tokens* when it (or a module inside it, e.g. under a score-ticket wrapper) sets
``has_tokens = True`` and provides ``patch_embed`` and ``set_patch_keep(keep)``; after a forward
pass its ``tokens_kept`` is the kept fraction N'/N.
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.models import MODELS, model_options
from spikesculpt.models.spikformer import check_patch_keep


def token_model(model: nn.Module) -> Optional[nn.Module]:
    """The module with tokens inside ``model`` (itself, or a wrapped one), else None."""
    for module in model.modules():
        if getattr(module, "has_tokens", False) and hasattr(module, "patch_embed"):
            return module
    return None


def tokens_kept(model: nn.Module) -> Optional[float]:
    found = token_model(model)
    value = getattr(found, "tokens_kept", None) if found is not None else None
    return None if value is None else float(value)


def require_tokens(model: nn.Module, name: str, what: str = "--patch-keep") -> nn.Module:
    found = token_model(model)
    if found is None:
        raise UserError(f"{what} needs a model with tokens from a patch embedding (e.g. --model "
                        f"spikformer); {name!r} has none")
    return found


def model_accepts_patch_keep(model_name: str) -> bool:
    """Whether the registered model ``model_name`` takes the ``patch_keep`` option."""

    return model_name in MODELS and "patch_keep" in model_options(model_name)


def check_patch_keep_option(model_name: str, model_kwargs: dict) -> None:
    """Bad-input check for ``--patch-keep`` before a run starts (range and model)."""
    if "patch_keep" not in model_kwargs:
        return

    check_patch_keep(model_kwargs["patch_keep"])

    MODELS.get(model_name)
    if not model_accepts_patch_keep(model_name):
        raise UserError(f"--patch-keep needs a model with tokens from a patch embedding (e.g. "
                        f"--model spikformer); {model_name!r} has none")
