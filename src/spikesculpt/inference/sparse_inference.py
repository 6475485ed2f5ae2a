"""Real sparse inference: a trained sparse model whose linear layers compute only with their
nonzero weights (and, for low activity, only with the spikes that arrived).

    from spikesculpt.inference import to_sparse_inference
    fast, report = to_sparse_inference(model)       # a converted copy; ``model`` is untouched
    logits = fast(x)                                # x [T, B, ...], same predictions as model(x)

``SparseLinear`` replaces every ``nn.Linear`` (subclasses included, e.g. SpikingJelly's
``layer.Linear``) whose weight density is at most ``max_density`` (default 0.5: the measured
break-even with a dense GEMM is ~0.6–0.7, benchmarks/bench_sparse_inference.py). It keeps the
nonzero weights twice — CSR by output for the vectorised ``rows`` kernel and CSC by input for
the event-driven ``events`` kernel (``export/cpu_kernel.py``) — and picks per call by the input's
activity (``mode="auto"``). Inputs ``[..., in]`` (e.g. ``[T, B, in]``) are processed as
``T·B`` rows. Everything else (neurons, BatchNorm, pooling, convolutions) is kept as is.

Convolutions stay dense: measured on the digits conv model and on 3x3 convs of 16–128 channels,
unfolding the input (im2col) for a sparse matmul costs more than the dense convolution saves at
the densities of interest (see benchmarks/README.md), so converting them does not pay on CPU.

Inference only (no autograd). Results equal the dense masked model's up to float32 rounding
(the sums run in another order); predictions are identical in the tests. Without the native
kernel (no C compiler, CUDA tensors, other dtypes) PyTorch's CSR matmul is used.
"""

from __future__ import annotations

import copy
import time
import warnings
from typing import Callable, Iterable, Optional

import torch
from torch import nn

from spikesculpt.inference import cpu_kernel

MODES = ("auto", "rows", "events", "torch")


class SparseLinear(nn.Module):
    """Inference-only ``nn.Linear`` on the nonzero weights: ``[..., in] -> [..., out]``.

    Buffers: ``rowptr``/``cols``/``vals`` (CSR by output), ``colptr``/``rows``/``vals_by_input``
    (CSC by input), ``bias``. ``mode``: ``auto`` (events below ``cpu_kernel.EVENT_ACTIVITY`` input
    activity, else rows), ``rows``, ``events``, or ``torch`` (PyTorch CSR matmul).
    """

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                 mode: str = "auto"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.out_features, self.in_features = weight.shape
        self.mode = mode
        self.nnz = int((weight != 0).sum())
        rowptr, cols, vals = cpu_kernel.csr_by_output(weight)
        colptr, rows, vals_t = cpu_kernel.csr_by_output(weight.t())
        for name, t in (("rowptr", rowptr), ("cols", cols), ("vals", vals), ("colptr", colptr),
                        ("rows", rows), ("vals_by_input", vals_t)):
            self.register_buffer(name, t, persistent=True)
        self.register_buffer("bias", None if bias is None
                             else bias.detach().to(torch.float32).clone())
        self.last_kernel = None  # which kernel ran last: "rows" | "events" | "torch"

    @classmethod
    def from_linear(cls, linear: nn.Linear, mode: str = "auto") -> "SparseLinear":
        return cls(linear.weight.detach(), linear.bias, mode)

    @property
    def density(self) -> float:
        return self.nnz / (self.in_features * self.out_features)

    def to_dense_weight(self) -> torch.Tensor:
        """The weight ``[out, in]`` with zeros in place (exactly the converted weight)."""
        w = torch.zeros(self.out_features, self.in_features)
        row = torch.repeat_interleave(torch.arange(self.out_features),
                                      self.rowptr[1:] - self.rowptr[:-1])
        w[row, self.cols.long()] = self.vals
        return w

    def _torch(self, x2: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():  # "beta" / invariant-check notices from torch.sparse
            warnings.simplefilter("ignore", UserWarning)
            w = torch.sparse_csr_tensor(self.rowptr, self.cols.long(), self.vals,
                                        (self.out_features, self.in_features),
                                        device=self.vals.device)
            y = (w @ x2.t()).t()
        return y + self.bias if self.bias is not None else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected input [..., {self.in_features}], got {list(x.shape)}")
        lead = x.shape[:-1]
        x2 = x.detach().reshape(-1, self.in_features)
        use_native = (self.mode != "torch" and x2.device.type == "cpu"
                      and x2.dtype == torch.float32 and cpu_kernel.available())
        if not use_native:
            self.last_kernel = "torch"
            y = self._torch(x2.to(self.vals.dtype)).to(x.dtype)
        else:
            x2 = x2.contiguous()
            kind = self.mode
            if kind == "auto":
                kind = "events" if cpu_kernel.activity(x2) < cpu_kernel.EVENT_ACTIVITY else "rows"
            self.last_kernel = kind
            if kind == "events":
                y = cpu_kernel.events_linear(x2, self.colptr, self.rows, self.vals_by_input,
                                          self.bias, self.out_features)
            else:
                y = cpu_kernel.rows_linear(x2, self.rowptr, self.cols, self.vals, self.bias,
                                        self.out_features)
        return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"density={self.density:.4f}, bias={self.bias is not None}, mode={self.mode}")


def _deepcopy(model: nn.Module) -> nn.Module:
    try:
        return copy.deepcopy(model)
    except Exception as exc:  # e.g. a module holding non-copyable hooks
        raise ValueError(f"cannot copy the model for conversion ({type(exc).__name__}: {exc}); "
                         f"remove forward hooks first") from None


@torch.no_grad()
def to_sparse_inference(model: nn.Module, max_density: float = 0.5, mode: str = "auto",
                        inplace: bool = False) -> tuple[nn.Module, list[dict]]:
    """A CPU copy of ``model`` (in eval mode) with each sparse-enough ``nn.Linear`` replaced by a
    ``SparseLinear``; returns ``(model, report)`` with one ``{"name", "density", "converted"}``
    per linear layer (``name``: the weight's state-dict key)."""
    if isinstance(model, nn.Linear):
        converted = SparseLinear.from_linear(model, mode)
        return converted, [{"name": "weight", "density": converted.density, "converted": True}]
    target = model if inplace else _deepcopy(model)
    target.cpu().eval()  # the native kernels run on the CPU
    report = []
    for name, child in list(target.named_modules()):
        if not isinstance(child, nn.Linear):
            continue
        parent_name, _, child_name = name.rpartition(".")
        parent = target.get_submodule(parent_name) if parent_name else target
        density = float((child.weight != 0).float().mean())
        converted = density <= max_density
        if converted:
            setattr(parent, child_name, SparseLinear.from_linear(child, mode))
        report.append({"name": f"{name}.weight", "density": density, "converted": converted})
    return target, report


def _time(fn: Callable[[], torch.Tensor]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@torch.no_grad()
def compare_models(dense: nn.Module, sparse: nn.Module, batches: Iterable[torch.Tensor],
                   rounds: int = 5) -> dict:
    """Run both models on every batch (time-major ``[T, B, ...]``) ``rounds`` times, interleaved
    (dense, sparse, dense, ...): predictions (argmax of the time-averaged logits), their
    agreement, the largest logit difference, and the time: per batch the best of the rounds for
    each model (robust to preemption on a shared machine); ``*_seconds_per_batch`` is the mean
    of those over the batches and ``speedup`` = Σ dense / Σ sparse."""
    dense.eval()
    sparse.eval()
    batches = list(batches)
    agree = total = 0
    max_diff = 0.0
    preds_dense, preds_sparse = [], []
    best_dense, best_sparse = [], []
    for x in batches:
        out = {}
        td = ts = float("inf")
        for _ in range(max(rounds, 1)):
            td = min(td, _time(lambda: out.__setitem__("d", dense(x))))
            ts = min(ts, _time(lambda: out.__setitem__("s", sparse(x))))
        best_dense.append(td)
        best_sparse.append(ts)
        pd, ps = out["d"].mean(0).argmax(-1), out["s"].mean(0).argmax(-1)
        preds_dense.append(pd)
        preds_sparse.append(ps)
        agree += int((pd == ps).sum())
        total += pd.numel()
        max_diff = max(max_diff, float((out["d"] - out["s"]).abs().max()))
    n = max(len(batches), 1)
    return {"predictions_dense": torch.cat(preds_dense) if preds_dense else torch.empty(0),
            "predictions_sparse": torch.cat(preds_sparse) if preds_sparse else torch.empty(0),
            "agreement": agree / max(total, 1), "max_logit_difference": max_diff,
            "dense_seconds_per_batch": sum(best_dense) / n,
            "sparse_seconds_per_batch": sum(best_sparse) / n,
            "speedup": sum(best_dense) / sum(best_sparse) if batches else float("nan"),
            "batches": len(batches), "rounds": rounds}
