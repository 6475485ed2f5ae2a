"""spikesculpt: efficient spiking neural networks, built the way brains build wiring.

Conventions (see docs and ``neurons/``): tensors are time-major, ``[T, B, ...]``; density is the
fraction of weights kept.
"""

__version__ = "0.1.0"

from spikesculpt.errors import UserError  # noqa: F401


def fit(model, splits, config=None, method=None, progress=True, **options):
    """Train any time-major SNN on a dataset's splits; see ``spikesculpt.train.fit.fit``."""
    from spikesculpt.train.fit import fit as _fit

    return _fit(model, splits, config, method, progress, **options)


def sparsify(model, optimizer, method="esl", total_steps=1, steps_per_epoch=None, seed=0,
             **options):
    """Sparsify ``model`` and run ``method`` in ``optimizer``'s hooks; see
    ``spikesculpt.train.fit.sparsify``."""
    from spikesculpt.train.fit import sparsify as _sparsify

    return _sparsify(model, optimizer, method, total_steps, steps_per_epoch, seed, **options)


def calibrate_firing(model, x, min_rate=0.1):
    """Scale up the Linear / Conv layers whose spiking neurons fire below ``min_rate`` on the
    input batch ``x [T, B, ...]``; see ``spikesculpt.models.calibrate``. ``fit`` does this itself
    (``init_firing``); call it before a loop of your own (``sparsify``)."""
    from spikesculpt.models.calibrate import calibrate_firing as _calibrate

    return _calibrate(model, x, min_rate)
