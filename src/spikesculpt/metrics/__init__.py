"""Measurements of a model: parameter counts and density, spiking activity, accuracy."""

from spikesculpt.metrics.activity import ActivityRecorder  # noqa: F401
from spikesculpt.metrics.model_stats import model_stats  # noqa: F401
