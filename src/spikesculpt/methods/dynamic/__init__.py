"""Sparse training at fixed density: ``static``, ``set``, ``rigl``, ``esl`` (one file each)."""

from spikesculpt.methods.dynamic import esl, rigl, static  # noqa: F401,E402
from spikesculpt.methods.dynamic import set as set_method
from spikesculpt.methods.dynamic.base import SparseMethod  # noqa: F401
