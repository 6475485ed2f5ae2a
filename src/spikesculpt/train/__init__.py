"""Training: the loop, its callbacks, losses, optimizers, and whole runs with their outputs."""

from spikesculpt.train.callbacks import Callback  # noqa: F401
from spikesculpt.train.population import PopulationTrainer  # noqa: F401
from spikesculpt.train.trainer import Trainer  # noqa: F401
