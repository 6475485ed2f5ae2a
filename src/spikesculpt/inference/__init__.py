"""Sparse inference: ``SparseLinear`` (CSR/CSC weights, native C kernels for spiking input on
the CPU), ``SparseConv2d`` / ``SparseConv1d`` (direct and event-driven sparse convolutions), the
per-layer kernel calibration, and ``to_sparse_inference`` (a trained sparse model with its linear
and convolution layers converted). ``spikesculpt evaluate --sparse`` is built on it."""

from spikesculpt.inference.sparse_conv import SparseConv1d, SparseConv2d  # noqa: F401
from spikesculpt.inference.sparse_inference import to_sparse_inference  # noqa: F401
from spikesculpt.inference.sparse_linear import SparseLinear  # noqa: F401

__all__ = ["SparseConv1d", "SparseConv2d", "SparseLinear", "to_sparse_inference"]
