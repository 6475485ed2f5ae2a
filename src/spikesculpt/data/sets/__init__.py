"""The built-in datasets, one reader per file; importing this package registers them all.

Static sets: ``digits`` (embedded), ``mnist1d`` (embedded, generated; also as a sequence),
``npz:PATH`` (your arrays), ``vision`` (``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``,
``imagenet``). Event sets: ``digits_dvs`` (``digits-dvs`` and ``dvs:NAME`` through the DVS
emulator), ``nmnist``, ``cifar10dvs``, ``dvs128`` (``dvs128-gesture``), ``shd``. A reader
may import ``spikesculpt.data.events`` (the event pipeline) and the base of
``spikesculpt.data`` (registry, options, base types, files), never the other way round.
"""

from spikesculpt.data.sets import (  # noqa: F401  (each registers itself)
    cifar10dvs,
    digits,
    digits_dvs,
    dvs128,
    mnist1d,
    nmnist,
    npz,
    shd,
    vision,
)
