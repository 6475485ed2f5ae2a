"""``SparseLinear``: an inference-only ``nn.Linear`` on its nonzero weights, with the native
``rows`` / ``events`` kernels of ``inference/cpu_kernel.py`` (PyTorch's CSR matmul or dense
``F.linear`` otherwise). Converted from ``nn.Linear`` layers by ``to_sparse_inference``."""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from spikesculpt.inference import cpu_kernel

MODES = ("auto", "rows", "events", "torch", "dense")


class SparseLinear(nn.Module):
    """Inference-only ``nn.Linear`` on the nonzero weights: ``[..., in] -> [..., out]``.

    Buffers: ``rowptr``/``cols``/``vals`` (CSR by output), ``colptr``/``rows``/``vals_by_input``
    (CSC by input), ``bias``; derived from them, not saved: the spike path's weight triples
    (``cpu_kernel.triples_by_output``). ``mode``: ``auto`` (events below
    ``cpu_kernel.EVENT_ACTIVITY`` input activity, else rows), ``rows``, ``events``, ``torch``
    (PyTorch CSR matmul) or ``dense`` (``F.linear`` on the weight with its zeros: what a
    calibration picks where sparsity does not pay). ``mode`` is saved with the state dict
    (``get_extra_state``).
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
        self._dense = None  # the weight with its zeros, built when the dense path first runs
        self._triples = cpu_kernel.triples_by_output(rowptr, cols, vals)  # the spike path's
        self.last_kernel = None  # which kernel ran last: "rows" | "events" | "torch" | "dense"

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

    def get_extra_state(self) -> dict:
        return {"mode": self.mode}

    def set_extra_state(self, state: dict) -> None:
        # runs after the buffers are loaded: rebuild what is derived from them
        self.mode = state.get("mode", self.mode)
        self._dense = None
        self._triples = cpu_kernel.triples_by_output(self.rowptr, self.cols, self.vals)

    def _torch(self, x2: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():  # "beta" / invariant-check notices from torch.sparse
            warnings.simplefilter("ignore", UserWarning)
            w = torch.sparse_csr_tensor(self.rowptr, self.cols.long(), self.vals,
                                        (self.out_features, self.in_features),
                                        device=self.vals.device)
            y = (w @ x2.t()).t()
        return y + self.bias if self.bias is not None else y

    def choose(self, x2: torch.Tensor) -> str:
        """The kernel ``mode`` runs on ``x2 [N, in]``."""
        native = (x2.device.type == "cpu" and x2.dtype == torch.float32
                  and cpu_kernel.available())
        if self.mode in ("torch", "dense"):
            return self.mode
        if not native:
            return "torch"
        if self.mode == "auto":
            return ("events" if cpu_kernel.activity(x2) < cpu_kernel.EVENT_ACTIVITY
                    else "rows")
        return self.mode

    def run_kernel(self, kind: str, x2: torch.Tensor) -> torch.Tensor:
        """``[N, in] -> [N, out]`` with one named kernel (calibration times these)."""
        if kind == "dense":
            if self._dense is None:
                self._dense = self.to_dense_weight()
            return F.linear(x2, self._dense.to(x2.dtype),
                            None if self.bias is None else self.bias.to(x2.dtype))
        if kind == "torch":
            return self._torch(x2.to(self.vals.dtype)).to(x2.dtype)
        buf = self._buffers  # a plain dict: nn.Module's attribute lookup of buffers costs
        # ~0.6 µs each, 5-10% of a small layer's kernel call (784->512, density 0.02)
        if kind == "events":
            return cpu_kernel.events_linear(x2, buf["colptr"], buf["rows"],
                                            buf["vals_by_input"], buf["bias"], self.out_features)
        return cpu_kernel.rows_linear(x2, buf["rowptr"], buf["cols"], buf["vals"], buf["bias"],
                                      self.out_features, self._triples)

    def as_kernel_input(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., in] -> [N, in]``: what the kernels take."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected input [..., {self.in_features}], got {list(x.shape)}")
        x = x.detach()
        return x if x.dim() == 2 else x.reshape(-1, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = self.as_kernel_input(x)
        kind = self.choose(x2)
        if kind in ("rows", "events"):
            x2 = x2.contiguous()
        self.last_kernel = kind
        y = self.run_kernel(kind, x2)
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"density={self.density:.4f}, bias={self.bias is not None}, mode={self.mode}")
