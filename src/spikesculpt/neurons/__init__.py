"""Spiking neurons. Time-major everywhere: inputs and outputs are ``[T, B, ...]``."""

from spikesculpt.neurons.modules import LIF, NEURONS, SpikingNeuron, create_neuron  # noqa: F401
from spikesculpt.neurons.surrogate import SURROGATES, create_surrogate, spike  # noqa: F401
