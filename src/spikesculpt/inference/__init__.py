"""Sparse inference: ``SparseLinear`` (CSR/CSC weights, a native C kernel for spiking input on
the CPU) and ``to_sparse_inference`` (a trained sparse model with its linear layers converted).
``spikesculpt evaluate --sparse`` is built on it."""

from spikesculpt.inference.sparse_inference import SparseLinear, to_sparse_inference  # noqa: F401

__all__ = ["SparseLinear", "to_sparse_inference"]
