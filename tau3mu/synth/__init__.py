"""Synthetic ntuples in the Run 2 and Run 3 layouts, standing in for CMS data.

The names below are imported on first use (PEP 562): ``tau3mu --help`` and ``tau3mu
run`` import this package to build the command line and should not pay for numba's
simulation kernels or the writers.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "EVENTS_PER_INVERSE_FB": "tau3mu.synth.dataset",
    "generate_dataset": "tau3mu.synth.dataset",
    "SyntheticEvents": "tau3mu.synth.events",
    "Tuning": "tau3mu.synth.tuning",
    "simulate": "tau3mu.synth.physics",
    "write_run3": "tau3mu.synth.run3",
}


def write_run2(*args: Any, **kwargs: Any) -> Any:
    """Run 2 writer; imports ROOT only when called."""
    from tau3mu.synth.run2 import write_run2 as _write

    return _write(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EVENTS_PER_INVERSE_FB",
    "SyntheticEvents",
    "Tuning",
    "generate_dataset",
    "simulate",
    "write_run2",
    "write_run3",
]
