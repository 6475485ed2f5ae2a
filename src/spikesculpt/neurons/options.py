"""``NeuronConfig``: the options of the spiking neuron of every hidden layer (declared once,
here; ``TrainConfig.neuron`` holds one; the CLI's neuron flags are derived from it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from spikesculpt.core.checks import require_finite
from spikesculpt.core.errors import UserError


@dataclass
class NeuronConfig:
    """Spiking neuron of every hidden layer (see ``spikesculpt.neurons``)."""

    name: str = "lif"            # lif | if | plif
    tau: float = 2.0             # membrane time constant, in time steps (lif; plif: initial tau)
    v_threshold: float = 1.0     # firing threshold
    v_reset: Optional[float] = 0.0  # hard-reset potential; None = soft reset (subtract threshold)
    detach_reset: bool = False   # cut the gradient through the reset
    surrogate: str = "atan"      # atan | sigmoid | triangle
    alpha: Optional[float] = None  # surrogate width; None = the surrogate's default

    def validate(self) -> "NeuronConfig":
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
        """Keyword arguments for ``create_neuron(self.name, **kwargs)``."""
        kw: dict[str, Any] = dict(v_threshold=self.v_threshold, v_reset=self.v_reset,
                                  detach_reset=self.detach_reset, surrogate=self.surrogate,
                                  alpha=self.alpha)
        if self.name == "lif":
            kw["tau"] = self.tau
        elif self.name == "plif":
            kw["init_tau"] = self.tau
        return kw
