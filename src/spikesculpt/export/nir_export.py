"""NIR export and import (optional extra ``nir``: ``pip install 'spikesculpt[nir]'`` — nir 1.0.8,
nirtorch 2.6).

``to_nir(model)`` turns a feed-forward spikesculpt model into a ``nir.NIRGraph`` chain
``input -> ... -> output``; ``from_nir(graph)`` builds a time-major PyTorch module back from it
(through ``nirtorch.nir_to_torch`` with spikesculpt's node map, so the graph is executed the way
other NIR tools execute it); ``write_nir`` / ``read_nir`` use ``nir.write`` / ``nir.read``.

Time convention. NIR neurons are continuous-time ODEs; a consumer discretises them with its
own time step ``dt`` in seconds. SpikingJelly 2.0 (``import_from_nir(graph, dt=1e-4)``) and
snnTorch 1.0 (``import_from_nir``, ``dt = 1e-4`` fixed) both read ``dt = 1e-4``, so ``to_nir``
writes time in seconds at ``dt = DEFAULT_DT = 1e-4`` (``--dt`` in the CLI) and records ``dt`` in
the graph's metadata. ``from_nir`` reads that ``dt`` back (graphs written before, in time steps,
carry ``dt = 1``; a graph without it, e.g. SpikingJelly's, is read at ``1e-4``).

Derivation. NIR's LIF is ``τ dv/dt = (v_leak − v) + R·I``; one forward-Euler step of length
``dt`` is ``v ← v + (dt/τ)·((v_leak − v) + R·I)``. Our LIF (SpikingJelly's, ``decay_input``) is
``H = V + (X − (V − V_reset))/τ_steps``. They are the same step when ``τ = τ_steps·dt``,
``R = 1``, ``v_leak = V_reset`` and ``I = X`` (the weights unchanged). NIR's IF is
``dv/dt = R·I``: ``v ← v + dt·R·I`` equals our ``H = V + X`` when ``R = 1/dt``. Threshold and
hard reset are copied (``v_threshold``, ``v_reset``). How the consumers read this back:

- SpikingJelly: ``LIFNode(tau=τ/dt, decay_input=(r == 1), v_reset, v_threshold)`` (needs
  ``v_leak = v_reset`` and ``τ/dt > 1``) and ``IFNode`` (needs ``r = 1/dt``): our neurons.
- snnTorch: ``Leaky(beta = 1 − dt/τ, threshold = v_threshold·τ/(r·dt), reset to zero)`` with the
  same (unscaled) input: its membrane is ``τ_steps`` times ours, so it fires on the same steps;
  it needs ``v_leak = 0`` (so ``v_reset = 0``). Its IF import and batched Flatten are broken;
  see docs/export.md for the workarounds.

Mapping (NIR shapes exclude the batch and time axes):

========================================  ====================================================
spikesculpt                               NIR node
========================================  ====================================================
``nn.Linear`` (+ BatchNorm1d folded in)   ``Affine`` (``Linear`` without bias)
``nn.Conv2d`` (+ BatchNorm2d folded in)   ``Conv2d`` (with ``input_shape``)
``nn.AvgPool2d`` (``ceil_mode`` only on   ``AvgPool2d``
even sizes), ``AdaptiveAvgPool2d``
(sizes divisible)
the models' flatten                       ``Flatten`` (``start_dim=0``)
``LIF`` / ``ParametricLIF`` (hard reset)  ``LIF``: ``tau = τ_steps·dt`` seconds, ``r = 1``,
                                          ``v_leak = v_reset``, ``v_threshold``, ``v_reset``
``IF`` (hard reset)                       ``IF``: ``r = 1/dt``, ``v_threshold``, ``v_reset``
``SeqDropout``, ``nn.Dropout``            nothing (identity at inference)
========================================  ====================================================

Every neuron parameter is an array of the layer's shape (NIR requires arrays; snnTorch's
exporter breaks on scalars). We fire on ``H ≥ V_th`` (NIR writes ``v > v_thr``; they differ
only at exact equality). BatchNorm is folded into the preceding conv / linear (eval statistics),
which keeps the zeros of pruned weights. Node metadata: ``source`` (our module name),
``density`` (nonzero weights / weights) and ``mask_density`` (from the run's mask when given)
on connection nodes; ``neuron`` (``lif``/``plif``/``if``), ``threshold_rule`` (``">="``) and
(LIF) ``tau_steps`` (τ in time steps, exact) on neurons; the graph's metadata holds ``dt``
(seconds per time step), ``time_major``, ``spikesculpt``, ``model`` and ``method``.

Not representable (exporting raises ``UserError`` naming the module): soft reset (NIR neurons
reset to ``v_reset``), max pooling, residual blocks (``SpikingBasicBlock``), models that are not
``SpikingMLP`` / ``SpikingVGG`` / ``nn.Sequential`` chains, and any other module type.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from spikesculpt.core.errors import UserError
from spikesculpt.core.io import atomic_write
from spikesculpt.core.version import __version__
from spikesculpt.models.layers import ConvBNSpike, LinearSpike, SeqDropout, TimeDistributed
from spikesculpt.models.mlp import SpikingMLP
from spikesculpt.models.vgg import SpikingVGG
from spikesculpt.neurons import IF, LIF, ParametricLIF, SpikingNeuron

DEFAULT_DT = 1e-4
"""Seconds per time step written into exported graphs: the ``dt`` SpikingJelly's and snnTorch's
NIR importers discretise with."""


def _nir():
    try:
        import nir
    except ImportError:
        raise UserError("NIR export needs the optional packages nir and nirtorch; install them "
                        "with: pip install 'spikesculpt[nir]'") from None
    return nir


def check_dt(dt) -> float:
    """``dt`` (seconds per time step) as a positive finite float, else ``UserError``."""
    try:
        value = float(dt)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"dt must be a positive number of seconds per time step (e.g. "
                        f"{DEFAULT_DT:g}, what SpikingJelly and snnTorch read), got {dt!r}")
    return value


def _unsupported(name: str, module: nn.Module, why: str = "") -> UserError:
    return UserError(f"NIR cannot represent module {name or '<model>'!r} "
                     f"({type(module).__name__}){': ' + why if why else ''}; export with "
                     f"--format safetensors instead")


def _chain(model: nn.Module) -> list[tuple[str, object]]:
    """The model as an ordered list of (name, module or "flatten")."""

    if isinstance(model, SpikingMLP):
        return [("flatten", "flatten"), *_walk(model.hidden, "hidden"),
                ("readout", model.readout)]
    if isinstance(model, SpikingVGG):
        out = _walk(model.features, "features")
        if model.head_pool is not None:
            out += _walk(model.head_pool, "head_pool")
        out.append(("flatten", "flatten"))
        out += _walk(model.classifier, "classifier")
        return out + [("readout", model.readout)]
    if type(model) is nn.Sequential:
        return _walk(model, "")
    raise _unsupported("", model, "only SpikingMLP, SpikingVGG (conv, vgg*) and nn.Sequential "
                                  "chains are exported")


def _walk(module: nn.Module, prefix: str) -> list[tuple[str, object]]:
    if isinstance(module, (nn.Sequential, TimeDistributed)):
        out = []
        for name, child in module.named_children():
            out += _walk(child, f"{prefix}.{name}" if prefix else name)
        return out
    return [(prefix, module)]


def _fold_bn(weight: torch.Tensor, bias: Optional[torch.Tensor], bn) -> tuple:
    """Fold eval-mode BatchNorm into the preceding layer: w·γ/σ, (b − μ)·γ/σ + β."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    w = weight.detach() * scale.reshape(shape)
    b = (bias.detach() if bias is not None else torch.zeros_like(bn.running_mean))
    return w, (b - bn.running_mean) * scale + bn.bias.detach()


def _arr(t) -> np.ndarray:
    return np.asarray(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t,
                      dtype=np.float32)


class _Builder:
    def __init__(self, nir, shape, masks, dt: float):
        self.nir, self.shape, self.masks = nir, tuple(int(s) for s in shape), masks or {}
        self.dt = dt
        self.nodes, self.order = {}, []

    def add(self, name, node):
        name = name.replace(".", "_") or "node"
        while name in self.nodes:
            name += "_"
        self.nodes[name] = node
        self.order.append(name)

    def conn_meta(self, name, weight):
        meta = {"source": name, "density": float((weight != 0).float().mean())}
        key = f"{name}.weight"
        if key in self.masks:
            meta["mask_density"] = float(self.masks[key].float().mean())
        return meta

    def linear(self, name, module: nn.Linear, bn=None):
        if len(self.shape) != 1 or self.shape[0] != module.in_features:
            raise _unsupported(name, module, f"input shape {list(self.shape)} is not "
                                             f"[{module.in_features}]")
        w, b = module.weight.detach(), module.bias
        meta = self.conn_meta(name, w)
        if bn is not None:
            w, b = _fold_bn(w, b, bn)
            meta["batchnorm_folded"] = True
        if b is None:
            self.add(name, self.nir.Linear(weight=_arr(w), metadata=meta))
        else:
            self.add(name, self.nir.Affine(weight=_arr(w), bias=_arr(b), metadata=meta))
        self.shape = (module.out_features,)

    def conv(self, name, module: nn.Conv2d, bn=None):
        if not isinstance(module, nn.Conv2d) or module.padding_mode != "zeros" \
                or isinstance(module.padding, str) or len(self.shape) != 3:
            raise _unsupported(name, module, "only zero-padded Conv2d on [C, H, W] maps")
        w, b = module.weight.detach(), module.bias
        meta = self.conn_meta(name, w)
        if bn is not None:
            w, b = _fold_bn(w, b, bn)
            meta["batchnorm_folded"] = True
        if b is None:
            b = torch.zeros(module.out_channels)
        node = self.nir.Conv2d(input_shape=tuple(self.shape[1:]), weight=_arr(w),
                               stride=module.stride, padding=module.padding,
                               dilation=module.dilation, groups=module.groups, bias=_arr(b),
                               metadata=meta)
        self.add(name, node)
        h, wd = self.shape[1:]
        k, s, p, d = module.kernel_size, module.stride, module.padding, module.dilation
        self.shape = (module.out_channels,
                      (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1,
                      (wd + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1)

    def neuron(self, name, module: SpikingNeuron):
        """LIF: ``tau = τ_steps·dt`` s, ``r = 1``, ``v_leak = v_reset``; IF: ``r = 1/dt``
        (forward Euler at ``dt`` reproduces our discrete step; module docstring)."""
        if module.v_reset is None:
            raise _unsupported(name, module, "soft reset (subtract the threshold) has no NIR "
                                             "equivalent; train with a hard reset (--v-reset 0)")
        shape = self.shape
        full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
        meta = {"source": name, "threshold_rule": ">="}
        if isinstance(module, IF):
            meta["neuron"] = "if"
            node = self.nir.IF(r=full(1.0 / self.dt), v_threshold=full(module.v_threshold),
                               v_reset=full(module.v_reset), metadata=meta)
        elif isinstance(module, (LIF, ParametricLIF)):
            if isinstance(module, ParametricLIF):
                tau = 1.0 / float(torch.sigmoid(module.w.detach()))
                meta.update(neuron="plif", w=float(module.w.detach()))
            else:
                tau = module.tau
                meta["neuron"] = "lif"
            meta["tau_steps"] = float(tau)
            node = self.nir.LIF(tau=full(tau * self.dt), r=full(1.0),
                                v_leak=full(module.v_reset),
                                v_threshold=full(module.v_threshold),
                                v_reset=full(module.v_reset), metadata=meta)
        else:
            raise _unsupported(name, module)
        self.add(name, node)

    def pool(self, name, module):
        if isinstance(module, nn.AdaptiveAvgPool2d):
            out = module.output_size
            out = (out, out) if isinstance(out, int) else tuple(out)
            h, w = self.shape[1:]
            if None in out or h % out[0] or w % out[1]:
                raise _unsupported(name, module, f"{h}x{w} is not divisible into {out}")
            k = (h // out[0], w // out[1])
            stride, pad = k, (0, 0)
        elif isinstance(module, nn.AvgPool2d):
            pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
            k, stride, pad = pair(module.kernel_size), pair(module.stride or module.kernel_size), \
                pair(module.padding)
            h, w = self.shape[1:]
            exact = all((n + 2 * p - kk) % s == 0 for n, p, kk, s in
                        ((h, pad[0], k[0], stride[0]), (w, pad[1], k[1], stride[1])))
            if module.ceil_mode and not exact:
                raise _unsupported(name, module, f"ceil-mode pooling of a {h}x{w} map (odd "
                                                 f"size) has no NIR equivalent")
            if pad != (0, 0) and not module.count_include_pad:
                raise _unsupported(name, module, "padding without count_include_pad")
        else:
            raise _unsupported(name, module, "NIR has no max pooling" if isinstance(
                module, nn.MaxPool2d) else "")
        self.add(name, self.nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(stride),
                                          padding=np.array(pad), metadata={"source": name}))
        c, h, w = self.shape
        self.shape = (c, (h + 2 * pad[0] - k[0]) // stride[0] + 1,
                      (w + 2 * pad[1] - k[1]) // stride[1] + 1)

    def flatten(self):
        self.add("flatten", self.nir.Flatten(input_type={"input": np.array(self.shape)},
                                             start_dim=0, end_dim=-1))
        self.shape = (int(math.prod(self.shape)),)


def to_nir(model: nn.Module, input_shape=None, masks: Optional[dict] = None,
           metadata: Optional[dict] = None, dt: float = DEFAULT_DT):
    """``nir.NIRGraph`` of ``model`` (a chain). ``input_shape`` per sample, without batch and
    time (default from the model: ``(C, H, W)`` or ``(F,)``); ``masks`` ``{weight name: bool
    tensor}`` for ``mask_density``; ``metadata`` adds to the graph's metadata; ``dt`` seconds
    per time step (time constants are written in seconds: ``tau = τ_steps·dt``)."""
    dt = check_dt(dt)
    nir = _nir()
    if input_shape is None:
        image = getattr(model, "image_size", None)
        if image is not None:
            input_shape = (model.in_channels, *image)
        elif getattr(model, "in_features", None):
            input_shape = (model.in_features,)
        else:
            raise UserError("to_nir needs input_shape (per sample, e.g. (2, 32, 32)) for this "
                            "model")
    b = _Builder(nir, input_shape, masks, dt)
    b.add("input", nir.Input(input_type={"input": np.array(b.shape)}))
    chain = _chain(model)
    i = 0
    while i < len(chain):
        name, m = chain[i]
        nxt = chain[i + 1][1] if i + 1 < len(chain) else None
        if m == "flatten":
            if len(b.shape) > 1:
                b.flatten()
        elif isinstance(m, LinearSpike):
            b.linear(f"{name}.fc", m.fc, m.bn)
            b.neuron(f"{name}.spike", m.spike)
        elif isinstance(m, ConvBNSpike):
            b.conv(f"{name}.conv", m.conv, m.bn)
            b.neuron(f"{name}.spike", m.spike)
        elif isinstance(m, nn.Linear):
            bn = nxt if isinstance(nxt, nn.BatchNorm1d) else None
            b.linear(name, m, bn)
            i += bn is not None
        elif isinstance(m, nn.Conv2d):
            bn = nxt if isinstance(nxt, nn.BatchNorm2d) else None
            b.conv(name, m, bn)
            i += bn is not None
        elif isinstance(m, SpikingNeuron):
            b.neuron(name, m)
        elif isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d)):
            b.pool(name, m)
        elif isinstance(m, nn.Flatten):
            b.flatten()
        elif isinstance(m, (SeqDropout, nn.Dropout, nn.Identity)):
            pass
        else:
            raise _unsupported(name, m)
        i += 1
    b.add("output", nir.Output(output_type={"output": np.array(b.shape)}))
    edges = list(zip(b.order[:-1], b.order[1:]))
    meta = {"dt": dt, "time_major": f"inputs are [T, B, ...]; one time step = dt = {dt:g} s",
            "spikesculpt": __version__,
            "model": getattr(model, "model_name", type(model).__name__)}
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=b.nodes, edges=edges, metadata=meta)


def write_nir(graph, path: str | Path) -> Path:
    """``nir.write`` atomically (temp file + rename)."""
    nir = _nir()
    return atomic_write(path, lambda tmp: nir.write(tmp, graph))


def read_nir(path: str | Path):
    nir = _nir()
    try:
        return nir.read(str(path))
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"cannot read NIR file {path} ({type(exc).__name__})") from None


# ------------------------------------------------------------------------------------ import


class _SeqFlatten(nn.Module):
    """Flatten every axis after [T, B]."""

    def forward(self, x):
        return x.flatten(2)


def _graph_dt(graph, dt) -> float:
    """The ``dt`` to read ``graph`` with: ``dt`` if given, else the graph's metadata ``dt``
    (ours: 1e-4 s, or 1 for graphs written in time steps), else ``DEFAULT_DT``."""
    if dt is None:
        dt = (getattr(graph, "metadata", None) or {}).get("dt", DEFAULT_DT)
    return check_dt(np.asarray(dt).reshape(-1)[0] if np.ndim(dt) else dt)


def _lif_tau_steps(node, name: str, dt: float) -> float:
    """τ in time steps: ``tau / dt``, or our exact ``tau_steps`` when the metadata agrees."""
    tau = _uniform(node, "tau", name) / dt
    if not (math.isfinite(tau) and tau >= 1.0):
        raise UserError(f"NIR node {name}: tau / dt = {tau:g} time steps at dt = {dt:g} s; "
                        f"spikesculpt's LIF needs >= 1; read the graph at the dt it was "
                        f"written with (from_nir(graph, dt=...))")
    exact = node.metadata.get("tau_steps")
    if exact is not None and math.isclose(float(exact), tau, rel_tol=1e-5):
        return float(exact)
    return tau


def _uniform(node, field: str, name: str) -> float:
    v = np.asarray(getattr(node, field))
    if v.size and not np.all(v == v.flat[0]):
        raise UserError(f"NIR node {name}: per-neuron {field} values are not supported by "
                        f"spikesculpt's neurons (one value per layer)")
    return float(v.flat[0])


def node_map(dt: float = DEFAULT_DT) -> dict:
    """spikesculpt's NIR node -> time-major module map (for ``nirtorch.nir_to_torch``), reading
    time constants in seconds at ``dt`` seconds per time step."""
    nir = _nir()
    dt = check_dt(dt)

    def affine(node):
        w = torch.from_numpy(np.asarray(node.weight, dtype=np.float32))
        lin = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
        with torch.no_grad():
            lin.weight.copy_(w)
            if lin.bias is not None:
                lin.bias.copy_(torch.from_numpy(np.asarray(node.bias, dtype=np.float32)))
        return lin

    def conv(node):
        w = torch.from_numpy(np.asarray(node.weight, dtype=np.float32))
        c = nn.Conv2d(w.shape[1] * node.groups, w.shape[0], tuple(w.shape[2:]),
                      stride=tuple(np.atleast_1d(node.stride).tolist()) if np.size(node.stride) > 1
                      else int(np.asarray(node.stride).flat[0]),
                      padding=tuple(np.atleast_1d(node.padding).tolist()) if np.size(node.padding) > 1
                      else int(np.asarray(node.padding).flat[0]),
                      dilation=tuple(np.atleast_1d(node.dilation).tolist()) if np.size(node.dilation) > 1
                      else int(np.asarray(node.dilation).flat[0]),
                      groups=int(node.groups), bias=True)
        with torch.no_grad():
            c.weight.copy_(w)
            c.bias.copy_(torch.from_numpy(np.asarray(node.bias, dtype=np.float32)))
        return TimeDistributed(c)

    def lif(node):
        name = node.metadata.get("source", "LIF")
        thr, vr = _uniform(node, "v_threshold", name), _uniform(node, "v_reset", name)
        if not math.isclose(_uniform(node, "r", name), 1.0, rel_tol=1e-6) \
                or _uniform(node, "v_leak", name) != vr:
            raise UserError(f"NIR node {name}: only r = 1 and v_leak = v_reset map onto "
                            f"spikesculpt's LIF")
        if node.metadata.get("neuron") == "plif":
            plif = ParametricLIF(v_threshold=thr, v_reset=vr)
            with torch.no_grad():
                plif.w.fill_(float(node.metadata["w"]))
            return plif
        return LIF(tau=_lif_tau_steps(node, name, dt), v_threshold=thr, v_reset=vr)

    def if_(node):
        name = node.metadata.get("source", "IF")
        if not math.isclose(_uniform(node, "r", name) * dt, 1.0, rel_tol=1e-6):
            raise UserError(f"NIR node {name}: only r = 1/dt (= {1 / dt:g}) maps onto "
                            f"spikesculpt's IF at dt = {dt:g} s; pass the graph's dt")
        return IF(v_threshold=_uniform(node, "v_threshold", name),
                  v_reset=_uniform(node, "v_reset", name))

    def avgpool(node):
        return TimeDistributed(nn.AvgPool2d(tuple(int(v) for v in node.kernel_size),
                                            tuple(int(v) for v in node.stride),
                                            tuple(int(v) for v in node.padding)))

    return {nir.Input: lambda node: nn.Identity(), nir.Output: lambda node: nn.Identity(),
            nir.Affine: affine, nir.Linear: affine, nir.Conv2d: conv, nir.LIF: lif, nir.IF: if_,
            nir.AvgPool2d: avgpool, nir.Flatten: lambda node: _SeqFlatten()}


class NIRModel(nn.Module):
    """A NIR graph executed time-major: ``[T, B, ...] -> [T, B, ...]`` (nirtorch's graph module,
    whose state is unused: every spikesculpt module processes the whole sequence)."""

    def __init__(self, graph_module: nn.Module):
        super().__init__()
        self.graph = graph_module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.graph(x)
        return out[0] if isinstance(out, tuple) else out


def from_nir(graph, dt: Optional[float] = None) -> NIRModel:
    """A PyTorch module running ``graph`` (a ``nir.NIRGraph`` or a path) on ``[T, B, ...]``,
    one time step = ``dt`` seconds (default: the graph's metadata ``dt``, else 1e-4)."""
    if isinstance(graph, (str, Path)):
        graph = read_nir(graph)
    _nir()
    import nirtorch

    return NIRModel(nirtorch.nir_to_torch(graph, node_map(_graph_dt(graph, dt)),
                                          default_map={}))
