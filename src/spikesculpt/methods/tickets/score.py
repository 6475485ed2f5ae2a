"""Score tickets: connection tickets found by a learned score over frozen weights.

Edge-popup (Ramanujan, Wortsman, Kembhavi, Farhadi, Rastegari, *What's hidden in a randomly
weighted neural network?*, CVPR 2020) and biprop (Diffenderfer & Kailkhura, *Multi-prize
lottery ticket hypothesis*, ICLR 2021), the connection tickets of Cheng et al. (arXiv
2311.12060). The weights W stay at their random initialisation; every prunable weight gets a
score s, and the forward pass uses, per layer,

    M = top_k(|s|)                           exactly k = round(d · n) ones (ties: lower index)
    W_eff = W ⊙ M                            (edge-popup, real weights)
    W_eff = α · sign(W) ⊙ M,  α = ‖M ⊙ W‖₁ / ‖M‖₁      (biprop, ``--binary-weights``)

The top-k is a straight-through estimator on |s|: ``∂L/∂s = ∂L/∂M ⊙ sign(s)`` (so
``∂L/∂s = ∂L/∂W_eff ⊙ W ⊙ sign(s)`` for real weights), and α is differentiated through M as
well. Only the scores learn; every other parameter (biases, BatchNorm affine, PLIF time
constants) stays at its initial value — the BatchNorm running statistics do update (buffers).

From the papers: per-layer top-k at the same density in every layer, |s| ranking, straight-
through gradient, scores initialised like Kaiming-uniform weights (edge-popup's code: bound
1/√fan_in), α = mean |W| over the kept weights (biprop). Our choices: scores drawn from a
seeded generator (``score_generator``); the exported model holds W_eff (zeros in place), so it
is an ordinary sparse model. ``α`` applies to binary weights only (with real weights the
ticket is W ⊙ M, as in edge-popup). The ``score`` and ``multilevel`` strategies of
``spikesculpt lottery`` (``experiments/lottery/``) are built from these pieces.

The wrapper (``ScoreNet``) runs the wrapped model through ``torch.func.functional_call`` with
the effective weights: the model keeps its parameter names, so the mask is keyed by them.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from torch import nn
from torch.func import functional_call

from spikesculpt.core.errors import UserError
from spikesculpt.sparse import Mask

SCORE_STREAM = 31_337


class TopK(torch.autograd.Function):
    """Forward: 0/1 mask of the ``k`` largest entries of ``values``; backward: straight through.

    Called on ``|s|`` computed in the graph (as edge-popup's code does), so the gradient that
    reaches a score is ``∂L/∂M · sign(s)``: a negative score is pushed *down* (towards larger
    |s|) when its connection should be kept.
    """

    @staticmethod
    def forward(ctx, values: torch.Tensor, k: int) -> torch.Tensor:
        flat = values.detach().reshape(-1)
        idx = torch.sort(flat, descending=True, stable=True).indices[:k]
        mask = torch.zeros_like(flat)
        mask[idx] = 1
        return mask.view_as(values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def effective_weight(weight: torch.Tensor, mask: torch.Tensor, binary: bool) -> torch.Tensor:
    """``W ⊙ M``, or ``α · sign(W) ⊙ M`` with ``α = ‖M ⊙ W‖₁ / ‖M‖₁`` (biprop)."""
    if binary:
        alpha = (weight.abs() * mask).sum() / mask.sum().clamp_min(1)
        return alpha * torch.sign(weight) * mask
    return weight * mask


def _key(name: str) -> str:
    return name.replace(".", "__")


class ScoreNet(nn.Module):
    """``net`` with frozen weights; a learned score per weight of ``names`` picks the ticket."""

    def __init__(self, net: nn.Module, names: Iterable[str], density: float, binary: bool,
                 generator: torch.Generator, trainable: Iterable[str] = ()):
        super().__init__()
        if not 0 < density <= 1:
            raise UserError(f"score tickets need a density in (0, 1], got {density!r}")
        self.net = net
        self.names = list(names)
        self.binary = bool(binary)
        self.density = float(density)
        trainable = set(trainable)
        for n, p in net.named_parameters():
            p.requires_grad_(n in trainable)
        params = dict(net.named_parameters())
        self.k = {n: max(1, int(round(density * params[n].numel()))) for n in self.names}
        self.scores = nn.ParameterDict()
        for n in self.names:
            w = params[n]
            fan_in = w[0].numel() if w.dim() > 1 else w.numel()
            bound = 1.0 / math.sqrt(max(1, fan_in))   # Kaiming-uniform with a = √5
            s = (torch.rand(w.shape, generator=generator) * 2 - 1) * bound
            self.scores[_key(n)] = nn.Parameter(s.to(w.device, w.dtype))

    def score(self, name: str) -> torch.Tensor:
        return self.scores[_key(name)]

    def effective(self, name: str) -> torch.Tensor:
        weight = dict(self.net.named_parameters())[name]
        mask = TopK.apply(self.score(name).abs(), self.k[name])
        return effective_weight(weight, mask, self.binary)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = {n: self.effective(n) for n in self.names}
        return functional_call(self.net, weights, (x,), strict=False)

    @torch.no_grad()
    def mask(self) -> Mask:
        return Mask({n: TopK.apply(self.score(n).abs(), self.k[n]).bool().cpu()
                     for n in self.names})

    @torch.no_grad()
    def export(self) -> tuple[nn.Module, Mask]:
        """Write W_eff into the wrapped model's weights; return (model, mask)."""
        params = dict(self.net.named_parameters())
        for n in self.names:
            params[n].copy_(self.effective(n))
        return self.net, self.mask()


def apply_ticket(model: nn.Module, mask: Mask, binary: bool) -> None:
    """Turn ``model``'s weights of ``mask`` into the ticket's W_eff in place (no scores)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, m in mask.items():
            params[n].copy_(effective_weight(params[n], m.to(params[n].device,
                                                              params[n].dtype), binary))


def score_generator(seed: int, level: int) -> torch.Generator:
    """The generator of level ``level``'s initial scores in a run with ``seed``."""
    return torch.Generator().manual_seed(seed * 1_000_003 + SCORE_STREAM + 7_919 * level)


def frozen(model: nn.Module, names: Optional[Iterable[str]] = None) -> None:
    """Freeze ``names`` (default: every parameter) of ``model``."""
    wanted = None if names is None else set(names)
    for n, p in model.named_parameters():
        if wanted is None or n in wanted:
            p.requires_grad_(False)
