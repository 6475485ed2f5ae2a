"""Measurements of a model: parameter counts and density, spiking activity, accuracy."""

from spikesculpt.metrics.activity import ActivityRecorder  # noqa: F401
from spikesculpt.metrics.efficiency import measure_efficiency  # noqa: F401
from spikesculpt.metrics.energy import ENERGY_PRESETS, energy_pj  # noqa: F401
from spikesculpt.metrics.footprint import footprint  # noqa: F401
from spikesculpt.metrics.model_stats import model_stats  # noqa: F401
from spikesculpt.metrics.synops import SynOpsCounter  # noqa: F401
