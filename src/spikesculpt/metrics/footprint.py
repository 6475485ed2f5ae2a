"""Memory footprint of a model in bytes: as stored densely, and with sparse weights in CSR.

- ``dense``: every parameter and buffer (BatchNorm running statistics included) at its dtype's
  size — the number NeuroBench's ``Footprint`` reports, zeros of pruned weights included.
- ``sparse``: the same, except that each connection weight (``prunable_parameters``) is stored
  in compressed sparse rows when that is smaller: ``nnz · (value bytes + 4)`` for the values and
  their int32 column indices plus ``(rows + 1) · 4`` for the int32 row pointers, where rows =
  ``weight.shape[0]`` (output units / output channels) and the columns are the flattened rest.
  A layer whose CSR would be larger than dense (density above ~0.5 for float32) stays dense.

This is a storage format (what shipping the weights costs). The sparse inference model
(``spikesculpt.inference.sparse_inference``) holds this CSR plus its transpose (CSC, for the
event-driven kernel), i.e. about twice the sparse weight bytes in memory.
"""

from __future__ import annotations

from torch import nn

from spikesculpt.models.utils import prunable_parameters

INDEX_BYTES = 4  # int32 indices and row pointers


def csr_bytes(rows: int, nnz: int, value_bytes: int) -> int:
    """Bytes of a CSR matrix: values + column indices + row pointers."""
    return nnz * (value_bytes + INDEX_BYTES) + (rows + 1) * INDEX_BYTES


def footprint(model: nn.Module) -> dict:
    """``{"dense": bytes, "sparse": bytes, "layers": {weight name: {"dense", "sparse",
    "format"}}}`` — ``format`` is ``"csr"`` or ``"dense"``, whichever is smaller."""
    tensors = {id(p): p for p in model.parameters()}
    tensors.update({id(b): b for b in model.buffers()})
    dense = sum(t.numel() * t.element_size() for t in tensors.values())
    layers, saved = {}, 0
    for name, weight in prunable_parameters(model):
        d = weight.numel() * weight.element_size()
        nnz = int((weight.detach() != 0).sum())
        c = csr_bytes(weight.shape[0], nnz, weight.element_size())
        s = min(d, c)
        layers[name] = {"dense": d, "sparse": s, "format": "csr" if c < d else "dense"}
        saved += d - s
    return {"dense": dense, "sparse": dense - saved, "layers": layers}
