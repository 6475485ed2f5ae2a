"""Datasets: a registry of loaders that return train / validation / test splits.

    from spikesculpt.data import load_dataset
    splits = load_dataset("digits", seed=0)        # DataSplits(train, val, test, info)
    splits.info.input_shape                        # (1, 8, 8)

Registered: ``digits`` (embedded default, scikit-learn's 8x8 digits), ``mnist1d`` (embedded,
MNIST-1D generated offline), ``npz:PATH`` (your own arrays), ``digits-dvs`` and ``dvs:NAME``
(static images through the DVS emulator), the event datasets ``nmnist``, ``cifar10-dvs``,
``dvs128-gesture``, ``shd`` (under ``--data-root``) and the torchvision image sets ``mnist``,
``fashion-mnist``, ``cifar10``, ``cifar100``, ``imagenet``. Each dataset lives in one file of
``sets/`` and registers itself with ``@register_dataset``.

Layout (docs/data.md): this folder holds the base every reader uses (``registry``, ``options``,
``base`` types and splits, ``files`` under ``--data-root``) and the training-side helpers
(``augment``, ``show``); ``events/`` is the event pipeline; ``sets/`` the readers. Imports point
down: ``sets`` -> ``events`` -> base.
"""

from spikesculpt.data import sets  # noqa: F401  (registers the built-in datasets)
from spikesculpt.data.base import DatasetInfo, DataSplits, stratified_split  # noqa: F401
from spikesculpt.data.registry import (  # noqa: F401
    DATASETS,
    load_dataset,
    register_dataset,
    split_name,
)

__all__ = ["DATASETS", "DataSplits", "DatasetInfo", "load_dataset", "register_dataset",
           "split_name", "stratified_split"]
