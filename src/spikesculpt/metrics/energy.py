"""Energy estimate from synaptic operations: E = e_MAC · MACs + e_AC · ACs, in picojoules.

Constants: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
energy per operation at 45 nm, 0.9 V (the table SNN papers quote):

=========  ===========  ===========  =========================================================
preset     e_MAC (pJ)   e_AC (pJ)    from Horowitz 2014
=========  ===========  ===========  =========================================================
``fp32``   4.6          0.9          32-bit float mult 3.7 + add 0.9; add 0.9  (the default)
``fp16``   1.5          0.4          16-bit float mult 1.1 + add 0.4; add 0.4
``int8``   0.23         0.03         8-bit int mult 0.2 + add 0.03; add 0.03
=========  ===========  ===========  =========================================================

A MAC is one multiplication plus one addition; an AC (a spike arriving at a synapse) one
addition. The estimate counts arithmetic only — no memory access, data movement or neuron
updates, which on real hardware often dominate — so use it to compare models under one
accounting, not as a measurement. Units: pJ per sample (the SynOps are per sample, over all
T time steps).
"""

from __future__ import annotations

from spikesculpt.core.errors import UserError

#: preset -> (pJ per MAC, pJ per AC), 45 nm, Horowitz ISSCC 2014.
ENERGY_PRESETS: dict[str, tuple[float, float]] = {
    "fp32": (4.6, 0.9),
    "fp16": (1.5, 0.4),
    "int8": (0.23, 0.03),
}
DEFAULT_PRESET = "fp32"


def energy_per_op(preset: str = DEFAULT_PRESET) -> tuple[float, float]:
    """(pJ per MAC, pJ per AC) of ``preset``; ``UserError`` for an unknown preset."""
    try:
        return ENERGY_PRESETS[preset]
    except KeyError:
        raise UserError(f"unknown energy preset {preset!r}; choose one of "
                        f"{', '.join(ENERGY_PRESETS)}") from None


def energy_pj(macs: float, acs: float, preset: str = DEFAULT_PRESET) -> float:
    """E = e_MAC · macs + e_AC · acs in pJ (e.g. per sample, if the counts are per sample)."""
    e_mac, e_ac = energy_per_op(preset)
    return e_mac * macs + e_ac * acs
