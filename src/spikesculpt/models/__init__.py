"""Spiking models: a registry of builders and the helpers the training loop and sparse core use.

    from spikesculpt.models import create_model, prunable_parameters
    model = create_model("vgg16", in_channels=3, image_size=32, num_classes=10, width=0.5)
    logits = model(x)            # x [T, B, 3, 32, 32] -> [T, B, 10], one output per time step

Every model is time-major and ends in a plain linear readout (``model.readout``). Neurons come
from ``spikesculpt.neurons`` (``neuron="lif" | "if" | "plif"``, ``neuron_kwargs={...}``).
"""

# Register the built-in models (import order = nothing; the registry sorts names).
from spikesculpt.models import (  # noqa: F401,E402
                                         conv,
                                         conv1d,
                                         mlp,
                                         resnet,
                                         spikformer,  # noqa: F401,E402
                                         vgg,
)
from spikesculpt.models.base import SpikingModel  # noqa: F401
from spikesculpt.models.factory import MODELS, create_model, model_options, register_model  # noqa: F401
from spikesculpt.models.layers import (  # noqa: F401
                                         Conv1dBNSpike,
                                         ConvBNSpike,
                                         LinearSpike,
                                         SeqDropout,
                                         TimeDistributed,
                                         seq_apply,
)
from spikesculpt.models.utils import count_parameters, prunable_parameters, spiking_modules  # noqa: F401

__all__ = ["MODELS", "create_model", "register_model", "model_options", "SpikingModel",
           "TimeDistributed", "ConvBNSpike", "Conv1dBNSpike", "LinearSpike", "SeqDropout",
           "seq_apply", "prunable_parameters", "spiking_modules", "count_parameters"]
