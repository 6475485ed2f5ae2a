"""Real sparse inference: a trained sparse model whose linear and convolution layers compute only
with their nonzero weights (and, for low activity, only with the spikes that arrived).

    from spikesculpt.inference import to_sparse_inference
    fast, report = to_sparse_inference(model)            # a converted copy; ``model`` is untouched
    fast, report = to_sparse_inference(model, calibrate_on=x)   # + per-layer kernel choice
    logits = fast(x)                                     # x [T, B, ...], same predictions

``SparseLinear`` replaces every ``nn.Linear`` (subclasses included, e.g. SpikingJelly's
``layer.Linear``) and ``SparseConv2d`` / ``SparseConv1d`` (``inference/sparse_conv.py``) every
stride-1 ``nn.Conv2d`` / ``nn.Conv1d`` whose weight density is at most ``max_density`` (default
0.5). ``SparseLinear`` keeps the nonzero weights twice — CSR by output for the vectorised
``rows`` kernel and CSC by input for the event-driven ``events`` kernel
(``inference/cpu_kernel.py``). Inputs ``[..., in]`` (e.g. ``[T, B, in]``) are processed as
``T·B`` rows. Everything else (neurons, BatchNorm, pooling, strided convolutions) is kept as is.

Which kernel runs: ``mode="auto"`` picks per call by the input's activity (the event-driven
kernels below a fixed activity). ``calibrate_on`` (a sample input) replaces that guess by a
measurement (``inference/calibrate.py``): each converted layer's input on the sample is captured,
every kernel — the sparse ones and PyTorch's dense one — is timed on it, and the fastest is
fixed as the layer's ``mode`` (saved in its state dict). A layer where sparsity does not pay on
this CPU thus stays dense.

Inference only (no autograd). Results equal the dense masked model's up to float32 rounding
(the sums run in another order); predictions are identical in the tests. Without the native
kernels (no C compiler, CUDA tensors, other dtypes) PyTorch's CSR matmul / dense convolution run.
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Iterable, Optional

import torch
from torch import nn

from spikesculpt.inference.calibrate import calibrate
from spikesculpt.inference.fold import fold_batchnorm
from spikesculpt.inference.pooling import replace_pools
from spikesculpt.inference.sparse_conv import SparseConv1d, SparseConv2d, convertible
from spikesculpt.inference.sparse_linear import MODES, SparseLinear


def _deepcopy(model: nn.Module) -> nn.Module:
    try:
        return copy.deepcopy(model)
    except Exception as exc:  # e.g. a module holding non-copyable hooks
        raise ValueError(f"cannot copy the model for conversion ({type(exc).__name__}: {exc}); "
                         f"remove forward hooks first") from None


def inference_rewrites(model: nn.Module) -> dict[str, str]:
    """The rewrites ``to_sparse_inference`` applies before converting (in place, eval mode),
    none of which depends on sparsity: BatchNorm folded into the layer before it, 2x2 average
    and max pools by one-pass native kernels. Returns ``{layer: norm folded into it}``. Apply
    it to a dense model to compare with the sparse one on equal terms."""
    model.eval()
    folded = fold_batchnorm(model)
    replace_pools(model)
    return folded


def _convert(module: nn.Module, mode: str) -> tuple[Optional[nn.Module], Optional[str]]:
    """``(converted, None)`` for a convertible layer, else ``(None, why not)``."""
    if isinstance(module, nn.Linear):
        return SparseLinear.from_linear(module, mode), None
    why = convertible(module)
    if why is not None:
        return None, why
    cls = SparseConv2d if isinstance(module, nn.Conv2d) else SparseConv1d
    return cls.from_conv(module, CONV_MODE[mode]), None


CONV_MODE = {"auto": "auto", "rows": "direct", "events": "events", "torch": "dense",
             "dense": "dense"}  # a linear layers' mode given to to_sparse_inference -> conv's
LAYER_KINDS = {nn.Linear: "linear", nn.Conv2d: "conv2d", nn.Conv1d: "conv1d"}


def _kind(module: nn.Module) -> Optional[str]:
    for cls, kind in LAYER_KINDS.items():
        if isinstance(module, cls):
            return kind
    return None


@torch.no_grad()
def to_sparse_inference(model: nn.Module, max_density: float = 0.5, mode: str = "auto",
                        inplace: bool = False, calibrate_on: Optional[torch.Tensor] = None,
                        calibration_calls: int = 3, rewrite: bool = True
                        ) -> tuple[nn.Module, list[dict]]:
    """A CPU copy of ``model`` (in eval mode) with each sparse-enough ``nn.Linear``,
    ``nn.Conv2d`` and ``nn.Conv1d`` replaced by its sparse module; returns ``(model, report)``
    with one ``{"name", "kind", "density", "converted"}`` per such layer (``name``: the weight's
    state-dict key; ``kind``: linear / conv2d / conv1d; ``reason`` when it was not converted).

    ``mode``: ``auto`` (by activity), or one kernel for every layer (``rows`` / ``events`` /
    ``torch`` / ``dense`` for linear layers; convolutions run ``direct`` for ``rows``,
    ``dense`` for ``torch``). ``calibrate_on``: a sample input ``[T, B, ...]``; each
    converted layer is then timed on its own input with every kernel and keeps the fastest
    (``report[i]["kernel"]``, ``report[i]["calibration_ms"]``; see ``inference/calibrate.py``).
    ``rewrite``: first apply the inference rewrites of ``inference_rewrites`` — each eval-mode
    BatchNorm folded into the layer before it (``inference/fold.py``;
    ``report[i]["bn_folded"]`` names it: one pass less per layer, the same outputs up to
    float32 rounding, the same zeros) and 2x2 average and max pooling by one-pass native
    kernels (``inference/pooling.py``, bit-identical).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if _kind(model) is not None:
        converted, why = _convert(model, mode)
        if converted is None:
            raise ValueError(f"cannot convert {type(model).__name__}: {why}")
        return converted, [{"name": "weight", "kind": _kind(model),
                            "density": converted.density, "converted": True}]
    target = model if inplace else _deepcopy(model)
    target.cpu().eval()  # the native kernels run on the CPU
    folded = inference_rewrites(target) if rewrite else {}
    report = []
    for name, child in list(target.named_modules()):
        kind = _kind(child)
        if kind is None:
            continue
        parent_name, _, child_name = name.rpartition(".")
        parent = target.get_submodule(parent_name) if parent_name else target
        density = float((child.weight != 0).float().mean())
        entry = {"name": f"{name}.weight", "kind": kind, "density": density, "converted": False}
        if name in folded:
            entry["bn_folded"] = folded[name]
        if density > max_density:
            entry["reason"] = f"density {density:.3f} > max_density {max_density}"
        else:
            converted, why = _convert(child, mode)
            if converted is None:
                entry["reason"] = why
            else:
                setattr(parent, child_name, converted)
                entry["converted"] = True
        report.append(entry)
    if calibrate_on is not None:
        chosen = calibrate(target, calibrate_on, calls=calibration_calls)
        for entry in report:
            entry.update(chosen.get(entry["name"].rsplit(".", 1)[0], {}))
    return target, report


def _time(fn: Callable[[], torch.Tensor]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@torch.no_grad()
def compare_models(dense: nn.Module, sparse: nn.Module, batches: Iterable[torch.Tensor],
                   rounds: int = 5, reference: Optional[nn.Module] = None) -> dict:
    """Run both models (and ``reference``, if given) on every batch (time-major ``[T, B,
    ...]``) ``rounds`` times, interleaved (dense, sparse, reference, dense, ...): predictions
    (argmax of the time-averaged logits), their agreement, the largest logit difference, and
    the time: per batch the best of the rounds for each model (robust to preemption on a
    shared machine); ``*_seconds_per_batch`` is the mean of those over the batches,
    ``speedup`` = Σ dense / Σ sparse and ``speedup_vs_reference`` = Σ reference / Σ sparse."""
    models = {"d": dense, "s": sparse}
    if reference is not None:
        models["r"] = reference
    for m in models.values():
        m.eval()
    batches = list(batches)
    agree = total = 0
    max_diff = 0.0
    preds_dense, preds_sparse = [], []
    best = {k: [] for k in models}
    for x in batches:
        out = {}
        times = {k: float("inf") for k in models}
        for _ in range(max(rounds, 1)):
            for k, m in models.items():
                times[k] = min(times[k], _time(lambda: out.__setitem__(k, m(x))))
        for k in models:
            best[k].append(times[k])
        pd, ps = out["d"].mean(0).argmax(-1), out["s"].mean(0).argmax(-1)
        preds_dense.append(pd)
        preds_sparse.append(ps)
        agree += int((pd == ps).sum())
        total += pd.numel()
        max_diff = max(max_diff, float((out["d"] - out["s"]).abs().max()))
    n = max(len(batches), 1)
    result = {"predictions_dense": torch.cat(preds_dense) if preds_dense else torch.empty(0),
              "predictions_sparse": torch.cat(preds_sparse) if preds_sparse else torch.empty(0),
              "agreement": agree / max(total, 1), "max_logit_difference": max_diff,
              "dense_seconds_per_batch": sum(best["d"]) / n,
              "sparse_seconds_per_batch": sum(best["s"]) / n,
              "speedup": sum(best["d"]) / sum(best["s"]) if batches else float("nan"),
              "batches": len(batches), "rounds": rounds}
    if reference is not None:
        result["reference_seconds_per_batch"] = sum(best["r"]) / n
        result["speedup_vs_reference"] = (sum(best["r"]) / sum(best["s"]) if batches
                                          else float("nan"))
    return result
