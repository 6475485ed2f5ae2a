"""Datasets: a registry of loaders that return train / validation / test splits.

    from spikesculpt.data import load_dataset
    splits = load_dataset("digits", seed=0)        # DataSplits(train, val, test, info)
    splits.info.input_shape                        # (1, 8, 8)

Registered: ``digits`` (embedded default, scikit-learn's 8x8 digits), ``npz:PATH`` (your own
arrays), ``digits-dvs`` and ``dvs:NAME`` (static images through the DVS emulator), the native
event datasets ``nmnist``, ``cifar10-dvs``, ``dvs128-gesture``, ``shd`` (under ``--data-root``)
and the torchvision image sets ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``,
``imagenet``. Each dataset lives in one file and registers itself with ``@register_dataset``.
"""

from spikesculpt.data import cifar10dvs, digits, digits_dvs, dvs128, nmnist, npz, shd, vision  # noqa: F401,E402  (register the built-in datasets)  # noqa: F401,E402
from spikesculpt.data.base import DatasetInfo, DataSplits, stratified_split  # noqa: F401
from spikesculpt.data.registry import DATASETS, load_dataset, register_dataset, split_name  # noqa: F401

__all__ = ["DATASETS", "DataSplits", "DatasetInfo", "load_dataset", "register_dataset",
           "split_name", "stratified_split"]
