"""Synthetic ntuples in the Run 2 and Run 3 layouts, standing in for CMS data."""

from __future__ import annotations

from tau3mu.synth.dataset import EVENTS_PER_INVERSE_FB, generate_dataset
from tau3mu.synth.physics import SyntheticEvents, Tuning, simulate
from tau3mu.synth.run3 import write_run3


def write_run2(*args, **kwargs):
    """Run 2 writer; imports ROOT only when called."""
    from tau3mu.synth.run2 import write_run2 as _write

    return _write(*args, **kwargs)


__all__ = [
    "EVENTS_PER_INVERSE_FB",
    "SyntheticEvents",
    "Tuning",
    "generate_dataset",
    "simulate",
    "write_run2",
    "write_run3",
]
