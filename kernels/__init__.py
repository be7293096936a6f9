"""Numba-compiled kernels on jagged arrays: arrays in, arrays out, no coffea, no I/O.

Each public function wraps a ``@numba.njit(cache=True)`` core on flat buffers, takes
and returns :class:`awkward.Array`, and on typetracers (dask-awkward graph building)
touches its inputs and returns the output's typetracer without running the core, so it
can be handed to :func:`dask_awkward.map_partitions` as is.
"""

from __future__ import annotations

from tau3mu.kernels.best import best_candidate
from tau3mu.kernels.dimuon import dimuon_mass, dimuon_mass_values
from tau3mu.kernels.gather import gather, gather_values
from tau3mu.kernels.kinematics import delta_r, delta_r_values, pair_mass, pair_mass_values
from tau3mu.kernels.matching import match_to_collection
from tau3mu.kernels.trigger import trigger_fired
from tau3mu.kernels.vectors import split_string_vectors, strip_vector_headers

__all__ = [
    "best_candidate",
    "delta_r",
    "delta_r_values",
    "dimuon_mass",
    "dimuon_mass_values",
    "gather",
    "gather_values",
    "match_to_collection",
    "pair_mass",
    "pair_mass_values",
    "split_string_vectors",
    "strip_vector_headers",
    "trigger_fired",
]
