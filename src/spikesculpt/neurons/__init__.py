"""Spiking neurons: LIF, IF and parametric LIF, with surrogate gradients.

Time-major convention (used everywhere in spikesculpt): a sequence is a tensor ``[T, B, ...]``
with time first, batch second, then any feature dimensions (``[T, B, F]`` for dense layers,
``[T, B, C, H, W]`` for convolutions). A neuron module maps ``x[T, B, ...] -> spikes[T, B, ...]``
of the same shape and dtype with values in {0, 1}; it starts from rest at every call (stateless,
no ``reset()`` calls). Layers that do not care about time (``nn.Linear``, convolutions after
flattening ``T·B``) see ``T·B`` independent rows.

Layout of this package:

- ``surrogate.py``: ``SURROGATES`` registry (``atan``, ``sigmoid``, ``triangle``,
  ``fast_sigmoid``), ``create_surrogate``, ``spike`` (Θ forward, surrogate derivative backward).
- ``functional.py``: pure step functions with explicit state (``lif_step``, ``if_step``) and
  fused whole-sequence kernels (``lif_multistep``, ``if_multistep``) with a hand-written backward.
- ``torch_kernel.py``: the fused forward / backward in PyTorch ops (any device and dtype; the
  reference the C kernel reproduces bit for bit).
- ``cpu_kernel.py``: the C kernel behind the fused functions on CPU (compiled on first use, cached;
  falls back to ``torch_kernel`` with identical results). ``native_status()`` reports on it;
  ``SPIKESCULPT_NATIVE=0`` turns it off.
- ``gpu_kernel.py`` and ``triton_kernels.py``: the Triton kernels behind the fused functions on
  CUDA tensors (float32 / float16 / bfloat16; one launch forward, one backward; the backward
  recomputes H from the saved input). Triton is imported on first use only;
  ``SPIKESCULPT_TRITON=0`` turns it off, ``gpu_kernel.status()`` reports on it.
- ``ops.py``: the fused neuron as a PyTorch custom op (``spikesculpt::neuron_forward`` and its
  backward), what ``torch.compile`` traces, so a compiled model keeps these kernels.
  Imports: ``surrogate`` <- ``torch_kernel`` <- ``cpu_kernel`` <- ``gpu_kernel`` (<-
  ``triton_kernels``) <- ``ops`` <- ``functional`` <- ``modules`` (no circle).
- ``modules.py``: ``SpikingNeuron`` modules ``LIF``, ``IF``, ``ParametricLIF`` and the ``NEURONS``
  registry (``lif``, ``if``, ``plif``); ``create_neuron(name, **kwargs)``.

The dynamics follow SpikingJelly (Fang et al. 2023, Science Advances), see ``functional.py``.
"""

from spikesculpt.neurons import functional  # noqa: F401
from spikesculpt.neurons.cpu_kernel import status as native_status  # noqa: F401
from spikesculpt.neurons.functional import (  # noqa: F401
    if_multistep,
    if_step,
    lif_multistep,
    lif_step,
)
from spikesculpt.neurons.modules import (  # noqa: F401
    IF,
    LIF,
    NEURONS,
    ParametricLIF,
    SpikingNeuron,
    create_neuron,
)
from spikesculpt.neurons.surrogate import (  # noqa: F401
    SURROGATES,
    Surrogate,
    create_surrogate,
    spike,
)

__all__ = [
    "SpikingNeuron", "LIF", "IF", "ParametricLIF", "NEURONS", "create_neuron",
    "Surrogate", "SURROGATES", "create_surrogate", "spike",
    "functional", "lif_step", "if_step", "lif_multistep", "if_multistep", "native_status",
]
