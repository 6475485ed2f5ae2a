"""Parameter counts and connection density.

- ``params_total``: every trainable parameter (weights, biases, norm affine, learnable tau).
- ``params_prunable``: weights of conv / linear layers (not biases, not norms) — the connections.
- ``density`` = nonzero prunable weights / prunable weights (the fraction of connections kept;
  sparsity = 1 - density).
- ``layers``: ``[{"name", "shape", "density"}]`` where name is the weight's state-dict key.

Gene-encoded models (``methods/genetic``): an encoded layer (``GeneLinear``/``GeneConv2d``) has no
weight *parameter* — its weight is generated from gene parameters — so it is not prunable and
not listed; ``params_total`` counts its genes (and the shared interaction once),
``params_prunable``/``density`` cover the layers left plain (0 / 1.0 when all are encoded). The
generated connections are all present (dense). The genetic method adds ``params_plain`` and
``compression`` to metrics.json (``parameter_report``).
"""

from __future__ import annotations

from torch import nn

from spikesculpt.models.utils import prunable_parameters


def model_stats(model: nn.Module) -> dict:
    layers = []
    total_prunable = nonzero_prunable = 0
    for name, weight in prunable_parameters(model):
        n = weight.numel()
        nz = int((weight.detach() != 0).sum())
        total_prunable += n
        nonzero_prunable += nz
        layers.append({"name": name, "shape": list(weight.shape), "density": nz / n})
    return {
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_prunable": total_prunable,
        "nonzero_prunable": nonzero_prunable,
        "density": nonzero_prunable / total_prunable if total_prunable else 1.0,
        "layers": layers,
    }
