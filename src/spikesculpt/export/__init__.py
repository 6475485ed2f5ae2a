"""Deployment: sparse inference (``to_sparse_inference``), safetensors export with packed masks,
NIR export (optional extra ``nir``). The CLI's ``spikesculpt export`` and ``evaluate --sparse``
are built on these."""

from spikesculpt.export.sparse_inference import SparseLinear, to_sparse_inference  # noqa: F401

__all__ = ["SparseLinear", "to_sparse_inference"]
