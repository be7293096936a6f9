"""Importing this module sets the collector of the process that imports it for a
start-up and for forking (:func:`tau3mu.collector.tune`,
:func:`tau3mu.collector.freeze_before_forks`). The forkserver of a local cluster imports
it before its other modules (``tau3mu.local_workers.WARM_MODULES``); nothing else does.
"""

from __future__ import annotations

from tau3mu import collector

__all__: list[str] = []

collector.tune()
collector.freeze_before_forks()
