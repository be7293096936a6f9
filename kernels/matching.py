"""Run 2 candidate links: the candidate's copy of (pt, eta, phi) equals the collection's.

The Run 2 ntuples have no index linking a candidate to its muons and track (docs/physics.md, "Input layouts"):
the link is exact equality of the kinematics the producer copied. A nested loop per
event in numba does it without the ``ak.cartesian`` product of candidates and
collection entries.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numba
import numpy as np
from numpy.typing import NDArray

from tau3mu.kernels.buffers import check_same_structure, is_typetracer, jagged, on_typetracer, wrap


@numba.njit(cache=True, nogil=True)
def _match_kernel(
    c_off: NDArray[np.int64],
    c_pt: NDArray[Any],
    c_eta: NDArray[Any],
    c_phi: NDArray[Any],
    m_off: NDArray[np.int64],
    m_pt: NDArray[Any],
    m_eta: NDArray[Any],
    m_phi: NDArray[Any],
    out: NDArray[np.int64],
) -> None:
    for event in range(len(c_off) - 1):
        m_start, m_stop = m_off[event], m_off[event + 1]
        for i in range(c_off[event], c_off[event + 1]):
            found = -1
            # NaN compares unequal to everything, so it never matches
            for j in range(m_start, m_stop):
                if c_pt[i] == m_pt[j] and c_eta[i] == m_eta[j] and c_phi[i] == m_phi[j]:
                    found = j - m_start
                    break
            out[i] = found


def _to_float32(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # beyond float32's range: inf, as the producer's cast
        return values.astype(np.float32)


def match_to_collection(
    pt: Any,
    eta: Any,
    phi: Any,
    coll_pt: Any,
    coll_eta: Any,
    coll_phi: Any,
    *,
    round_to_float32: bool = False,
) -> ak.Array:
    """Per candidate, the index of the first collection entry with equal (pt, eta, phi).

    Inputs are jagged numeric arrays (``var * float32|float64``): three for the
    candidates, three for the collection (muons or tracks), same events. Returns
    ``var * int64`` with the candidates' structure: the local index in the event's
    collection, -1 where nothing matches. Exact equality, as the producer copies
    values; NaN never matches; duplicates in the collection give the first index.

    ``round_to_float32=True`` rounds the candidate's values to float32 before comparing
    (Run 2 muons: the candidate's doubles are copies of float32 muon values); leave it
    False for doubles against doubles (tracks). Without it mixed precisions compare
    after widening to float64.

    On typetracers: touches all six inputs and returns a ``var * int64`` typetracer.
    """
    arrays = (pt, eta, phi, coll_pt, coll_eta, coll_phi)
    if is_typetracer(*arrays):
        return on_typetracer(match_to_collection, arrays, round_to_float32=round_to_float32)
    cands = [jagged(a, "match_to_collection candidates") for a in arrays[:3]]
    coll = [jagged(a, "match_to_collection collection") for a in arrays[3:]]
    check_same_structure([c[0] for c in cands], "match_to_collection candidates")
    check_same_structure([c[0] for c in coll], "match_to_collection collection")
    c_off, m_off = cands[0][0], coll[0][0]
    if len(c_off) != len(m_off):
        raise ValueError(
            f"match_to_collection: {len(c_off) - 1} events of candidates but "
            f"{len(m_off) - 1} of the collection"
        )
    c_values = [c[1] for c in cands]
    if round_to_float32:
        c_values = [_to_float32(v) for v in c_values]
    out = np.empty(len(c_values[0]), dtype=np.int64)
    c_pt, c_eta, c_phi = c_values
    m_pt, m_eta, m_phi = (c[1] for c in coll)
    _match_kernel(c_off, c_pt, c_eta, c_phi, m_off, m_pt, m_eta, m_phi, out)
    return wrap(c_off, out)
