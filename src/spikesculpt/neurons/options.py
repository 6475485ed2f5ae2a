"""``NeuronConfig``: the options of the spiking neuron of every hidden layer (declared once,
here; ``TrainConfig.neuron`` holds one; the CLI's neuron flags are derived from it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from spikesculpt.core.checks import require_finite
from spikesculpt.core.errors import UserError
from spikesculpt.core.options import check_choices, option
from spikesculpt.neurons.modules import NEURONS, SpikingNeuron
from spikesculpt.neurons.surrogate import SURROGATES


@dataclass
class NeuronConfig:
    """Spiking neuron of every hidden layer (see ``spikesculpt.neurons``)."""

    name: str = option("lif", flag="--neuron", choices=NEURONS.names, kind="neuron",
                       help="spiking neuron of every hidden layer")
    tau: float = option(2.0, help="membrane time constant in time steps (plif: initial value)")
    v_threshold: float = option(1.0, help="firing threshold")
    v_reset: Optional[float] = option(
        0.0, help="hard-reset potential (see --soft-reset)", none_means="soft reset",
        switches=(("--soft-reset", None,
                   "reset by subtracting the threshold instead of to v_reset"),))
    detach_reset: bool = option(False, help="no gradient through the reset")
    surrogate: str = option("atan", choices=SURROGATES.names, help="surrogate gradient")
    alpha: Optional[float] = option(None, flag="--surrogate-alpha",
                                    none_means="the surrogate's own",
                                    help="surrogate width parameter")

    def validate(self) -> "NeuronConfig":
        check_choices(self)
        require_finite("neuron tau", self.tau, "--tau 2.0")
        if not self.tau > 0:
            raise UserError(f"neuron tau must be > 0, got {self.tau!r}; pass e.g. --tau 2.0")
        require_finite("v_threshold", self.v_threshold, "--v-threshold 1.0")
        if not self.v_threshold > 0:
            raise UserError(f"v_threshold must be > 0, got {self.v_threshold!r}; pass e.g. "
                            f"--v-threshold 1.0")
        if self.v_reset is not None:
            require_finite("v_reset", self.v_reset, "--v-reset 0.0")
        if self.alpha is not None:
            require_finite("surrogate alpha", self.alpha, "--surrogate-alpha 2.0")
            if not self.alpha > 0:
                raise UserError(f"surrogate alpha must be > 0, got {self.alpha!r}")
        return self

    def module_kwargs(self) -> dict:
        """Keyword arguments for ``create_neuron(self.name, **kwargs)``: the fields the neuron
        declares in its ``config_arguments``, under its own argument names (``tau`` is LIF's
        ``tau``, PLIF's ``init_tau``; IF has none)."""
        neuron = NEURONS.get(self.name)
        arguments = getattr(neuron, "config_arguments", SpikingNeuron.config_arguments)
        return {argument: getattr(self, name) for name, argument in arguments.items()}
