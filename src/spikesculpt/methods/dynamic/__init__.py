"""Sparse training at fixed density: ``static``, ``set``, ``rigl``, ``esl`` (one file each)."""

from spikesculpt.methods.dynamic.base import SparseMethod  # noqa: F401
from spikesculpt.methods.dynamic import esl, rigl, set as set_method, static  # noqa: F401,E402
