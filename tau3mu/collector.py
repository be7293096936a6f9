"""The cyclic garbage collector of tau3mu's own processes: the ``tau3mu`` command and the
forkserver that a local cluster's workers are forked from.

Imports, numba's set-up and TensorFlow's build hundreds of thousands of long-lived
objects; at Python's default thresholds the collector traces all of them again at every
full collection while they are built, and once more when the interpreter tears its
modules down (docs/benchmarks.md, "Where the time goes"). These processes therefore run
the collector at :data:`THRESHOLDS` (:func:`tune`), and move what they built out of its
reach (:func:`gc.freeze`) before they exit or fork. Nothing here runs on import; a
notebook calling tau3mu's API keeps its own collector.
"""

from __future__ import annotations

import gc
import os

__all__ = ["THRESHOLDS", "freeze_before_forks", "tune"]

#: the collector's thresholds: a young collection every 10,000 net allocations (Python's
#: default 700), each older generation after 10 collections of the younger
THRESHOLDS = (10_000, 10, 10)


def tune() -> None:
    """Run this process's collector at :data:`THRESHOLDS`."""
    gc.set_threshold(*THRESHOLDS)


def freeze_before_forks() -> None:
    """Freeze this process's objects (:func:`gc.freeze`) before each ``fork``, so that a
    child neither traces what it inherits nor copies its pages by touching them (Python's
    own advice for a parent that forks without exec)."""
    os.register_at_fork(before=gc.freeze)
