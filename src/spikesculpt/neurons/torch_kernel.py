"""The PyTorch-ops kernel of the fused multi-step neurons (``impl="torch"``): any device, any dtype.

``functional.py`` holds the dynamics and the chain rule (its module docstring); this module holds
the vectorised form of both, which ``functional._FusedNeuron`` runs off CPU (or whenever the
native kernel does not apply) and which the native C kernel (``cpu_kernel.py``) must reproduce
bit for bit (its self-test compares the two forwards). Shapes: ``x``, ``-H`` and ``S`` are
time-major ``[T, ...]``; r = 1/tau is a float (LIF), a 0-dim tensor (PLIF) or None (IF).

- :func:`fused_forward`: ``-(r·X + r·V_reset)`` for all t in one op, written into the buffer that
  becomes ``-H``; then per step two in-place ops for a hard reset (``-H[t] += (1-r)·(-V)``,
  ``-V = threshold(-H[t], -V_th, -V_reset)``) or three for a soft reset; spikes for all t in one
  comparison.
- :func:`fused_backward`: g', D and r·g'·dL/dS for all t in a few vectorised in-place ops, then
  one ``addcmul_`` per step for the recurrence ``G[t] = r·g'·dL/dS[t] + (1-r)·D[t]·G[t+1]``.
- :func:`fused_decay_grad`: PLIF's ``dL/dr = Σ_t dL/dH[t]·(X[t] + V_reset - V[t-1])``.
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from spikesculpt.neurons.surrogate import Surrogate

Decay = Union[float, torch.Tensor]


def rest_potential(v_reset: Optional[float]) -> float:
    """V[-1]: ``v_reset`` (hard reset), 0 for a soft reset (``v_reset=None``)."""
    return 0.0 if v_reset is None else v_reset


def neg_input(x: torch.Tensor, r: Optional[Decay], v_reset: Optional[float]) -> torch.Tensor:
    """``-(r·x + r·V_reset)`` (LIF) or ``-x`` (IF, r=None) as a new contiguous [T, ...] buffer."""
    if r is None:
        return torch.neg(x).contiguous()
    out = torch.mul(x, -r).contiguous()
    if v_reset is not None and v_reset != 0.0:
        out.sub_(r * v_reset)
    return out


def fused_forward(x: torch.Tensor, r: Optional[Decay], v_threshold: float,
                  v_reset: Optional[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and the negated pre-spike membrane ``-H`` for all t (no autograd).

    Works on ``-H`` so that "fire and hard-reset" is one ``torch.threshold`` per step:
    ``threshold(-H, -V_th, -V_reset)`` keeps -H where -H > -V_th (H < V_th, no spike) and writes
    -V_reset elsewhere. Negation is exact in floating point, so this is bit-identical to the
    step function.
    """
    nh = neg_input(x, r, v_reset)  # -(r·X + r·V_reset) for all t; becomes -H in place
    s = torch.empty_like(nh)
    hs = nh.unbind(0)
    nv = torch.empty_like(hs[0])  # -V, carried over time
    v0 = rest_potential(v_reset)
    thr = v_threshold
    if r is None:
        def charge(h, nv_):
            h.add_(nv_)
    elif isinstance(r, torch.Tensor):
        a_t = 1.0 - r

        def charge(h, nv_):
            h.addcmul_(nv_, a_t)
    else:
        a = 1.0 - r

        def charge(h, nv_):
            h.add_(nv_, alpha=a)
    if v_reset is None:
        ss = s.unbind(0)
        for t, h in enumerate(hs):
            if t > 0:
                charge(h, nv)
            torch.le(h, -thr, out=ss[t])                # S = [H >= V_th]
            torch.add(h, ss[t], alpha=thr, out=nv)      # -V = -H + V_th·S
    else:
        for t, h in enumerate(hs):
            if t > 0:
                charge(h, nv)
            elif v0 != 0.0:
                nv.fill_(-v0)
                charge(h, nv)
            torch.threshold(h, -thr, -v_reset, out=nv)  # -V = -H if H < V_th else -V_reset
        torch.le(nh, -thr, out=s)
    return s, nh


def fused_backward(gs: torch.Tensor, nh: torch.Tensor, s: torch.Tensor, b: float, a: float,
                   v_threshold: float, v_reset: Optional[float], detach_reset: bool,
                    surrogate: Surrogate) -> torch.Tensor:
    """G = dL/dX for all t from dL/dS, the saved -H and S (see ``functional``'s docstring);
    ``b`` = r (1 for IF), ``a`` = 1 - r (1 for IF)."""
    thr = v_threshold
    # b·g'(H - V_th) for all t; built-in surrogates are even, so g' is evaluated at V_th - H
    g = torch.add(nh, thr)
    if not surrogate.even:
        g.neg_()
    g = surrogate.grad_(g, scale=b)
    # M[t] = (1-r)·dV[t]/dH[t] = a·m[t]
    if v_reset is not None:
        m = torch.gt(nh, -thr, out=torch.empty_like(nh))    # 1 - S
        if not detach_reset:
            nhv = nh if v_reset == 0.0 else nh + v_reset      # V_reset - H
            m.addcmul_(nhv, g, value=1.0 / b)                # + (V_reset - H)·g'
    elif not detach_reset:
        m = torch.rsub(g, 1.0, alpha=thr / b)                # 1 - V_th·g'
    else:
        m = None                                             # 1
    g.mul_(gs)                                               # b·g'·dL/dS
    gl = g.unbind(0)
    if m is None:
        for t in range(len(gl) - 2, -1, -1):
            gl[t].add_(gl[t + 1], alpha=a)
    else:
        ml = m.unbind(0)
        for t in range(len(gl) - 2, -1, -1):
            gl[t].addcmul_(ml[t], gl[t + 1], value=a)
    return g


def backward(gs: torch.Tensor, nh: torch.Tensor, s: torch.Tensor, x: Optional[torch.Tensor],
             r: Optional[Decay], v_threshold: float, v_reset: Optional[float],
             detach_reset: bool, surrogate: Surrogate, want_gr: bool
             ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """dL/dX and, with ``want_gr`` (PLIF; needs x), dL/dr from dL/dS and the saved -H and S;
    r = 1/tau as a float (LIF), a 0-dim tensor (PLIF) or None (IF): b = r, a = 1 - r (IF: 1,
    1). The backward of the autograd Function and of the custom op (``ops.py``) alike."""
    b = 1.0 if r is None else float(r)
    a = 1.0 if r is None else 1.0 - b
    g = fused_backward(gs, nh, s, b, a, v_threshold, v_reset, detach_reset, surrogate)
    gr = fused_decay_grad(g, nh, s, x, b, v_threshold, v_reset) if want_gr else None
    return g, gr


def fused_decay_grad(g: torch.Tensor, nh: torch.Tensor, s: torch.Tensor, x: torch.Tensor,
                     r: float, v_threshold: float, v_reset: Optional[float]) -> torch.Tensor:
    """PLIF: ``dL/dr = Σ_t dL/dH[t]·(X[t] + V_reset - V[t-1])`` with ``dL/dH = G / r``, from
    G = dL/dX (:func:`fused_backward`), the saved -H, S and X; a 0-dim tensor of G's dtype."""
    thr = v_threshold
    u = torch.empty_like(nh)                         # -V[t-1]
    u[0].fill_(-rest_potential(v_reset))
    if nh.shape[0] > 1:
        if v_reset is None:
            torch.add(nh[:-1], s[:-1], alpha=thr, out=u[1:])
        else:
            torch.threshold(nh[:-1], -thr, -v_reset, out=u[1:])
    u.add_(x)
    if v_reset is not None and v_reset != 0.0:
        u.add_(v_reset)
    return torch.dot(g.reshape(-1), u.reshape(-1)) / r
