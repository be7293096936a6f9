"""Numba-compiled kernels on jagged arrays: arrays in, arrays out, no coffea, no I/O."""

from __future__ import annotations

from tau3mu.kernels.jagged import best_candidate, gather, match_to_collection, trigger_fired

__all__ = ["best_candidate", "gather", "match_to_collection", "trigger_fired"]
