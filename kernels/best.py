"""The best candidate per event: the smallest value (vertex chi2) among those passing.

With awkward this is ``ak.argmin(ak.mask(values, mask), axis=1)`` plus NaN handling
and ``ak.fill_none``, several passes with option types; the kernel is one pass.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numba
import numpy as np
from numpy.typing import NDArray

from tau3mu.kernels.buffers import (
    check_same_structure,
    is_typetracer,
    jagged,
    list_layout,
    on_typetracer,
)


@numba.njit(cache=True, nogil=True)
def _best_kernel(
    offsets: NDArray[np.int64],
    values: NDArray[np.floating[Any]],
    mask: NDArray[np.bool_],
    out: NDArray[np.int64],
) -> None:
    for event in range(len(offsets) - 1):
        best = -1
        best_value = values.dtype.type(0)
        for i in range(offsets[event], offsets[event + 1]):
            v = values[i]
            # strict < keeps the lowest index on ties; NaN fails every comparison
            if mask[i] and not np.isnan(v) and (best < 0 or v < best_value):
                best = i - offsets[event]
                best_value = v
        out[event] = best


def best_candidate(values: Any, mask: Any) -> ak.Array:
    """Per event, the local index of the smallest ``values`` entry among ``mask``-ed ones.

    ``values``: ``var * number`` (float32/float64; integers are compared as float64);
    ``mask``: ``var * bool`` of the same structure (``var * ?bool`` allowed: None does
    not pass). Returns a flat ``int64`` array, one entry per event: -1 where no entry
    passes. Ties go to the lowest index. NaN never wins: a NaN entry counts as not
    passing (an event whose passing entries are all NaN gets -1); +-inf are ordinary
    values.

    On typetracers: touches both inputs and returns an ``int64`` typetracer.
    """
    if is_typetracer(values, mask):
        return on_typetracer(best_candidate, (values, mask))
    mask_layout = list_layout(mask, "best_candidate mask")
    if not isinstance(mask_layout, ak.contents.EmptyArray) and mask_layout.content.is_option:
        mask = ak.fill_none(mask, False, axis=-1)
    off, v = jagged(values, "best_candidate values")
    m_off, m = jagged(mask, "best_candidate mask", np.bool_)
    check_same_structure([off, m_off], "best_candidate values and mask")
    if v.dtype not in (np.float32, np.float64):
        v = v.astype(np.float64)
    out = np.empty(len(off) - 1, dtype=np.int64)
    _best_kernel(off, v, m.astype(np.bool_, copy=False), out)
    return ak.Array(out)
