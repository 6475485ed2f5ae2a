"""Training methods: each turns a config into callbacks for the shared training loop.

A method is registered by name and called as ``factory(model, config) -> list[Callback]``.
``dense`` adds nothing. Sparse methods (ESL, SET, RigL, static), lottery tickets and genetic
encoding plug in here as callbacks, never as edits of the loop.
"""

from spikesculpt.registry import Registry

METHODS = Registry("method")


@METHODS.register("dense")
def dense(model, config):
    """Plain dense training: every weight is trained, no mask."""
    return []
