"""Per-candidate values of linked objects: ``values[index]`` per event, -1 for no link.

Awkward's own jagged indexing needs the -1 entries masked first (``ak.mask`` then
``ak.fill_none``) and fails with a generic message on a bad index; the kernel does
both in one pass and names the event of a corrupt link.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numba
import numpy as np
from numpy.typing import NDArray

from tau3mu.kernels.buffers import is_typetracer, jagged, on_typetracer, wrap


@numba.njit(cache=True, nogil=True)
def _gather_kernel(
    v_off: NDArray[np.int64],
    values: NDArray[Any],
    i_off: NDArray[np.int64],
    index: NDArray[np.int64],
    fill: Any,
    out: NDArray[Any],
) -> int:
    for event in range(len(i_off) - 1):
        start = v_off[event]
        size = v_off[event + 1] - start
        for i in range(i_off[event], i_off[event + 1]):
            k = index[i]
            if k < 0:
                out[i] = fill
            elif k >= size:
                return event  # a corrupt link: report, do not read a neighbour's entry
            else:
                out[i] = values[start + k]
    return -1


def result_dtype(values_dtype: Any, fill: Any) -> np.dtype:
    """``values``' dtype if ``fill`` fits in it exactly, else the promoted dtype.

    NumPy 2 promotion with a Python scalar (float32 values, NaN fill: float32; int32
    values, -1 fill: int32), falling back to value-based promotion when the fill does
    not survive the cast (uint8 values, -1 fill: int16).
    """
    dtype = np.result_type(values_dtype, fill)
    with np.errstate(all="ignore"):
        try:
            cast = np.array(fill).astype(dtype)
        except (OverflowError, ValueError):
            cast = None
    same = cast is not None and (cast == fill or (np.isnan(fill) and np.isnan(cast)))
    if not same:
        dtype = np.result_type(values_dtype, np.min_scalar_type(fill))
    return np.dtype(dtype)


def gather_values(
    v_off: np.ndarray, values: np.ndarray, i_off: np.ndarray, index: np.ndarray, fill: Any
) -> np.ndarray:
    """:func:`gather` on flat buffers: offsets (int64, from 0) and contents of the
    collection and of the indices, same number of events; returns the flat output."""
    dtype = result_dtype(values.dtype, fill)
    out = np.empty(len(index), dtype=dtype)
    bad = _gather_kernel(
        np.asarray(v_off, dtype=np.int64),
        values.astype(dtype, copy=False),
        np.asarray(i_off, dtype=np.int64),
        index.astype(np.int64, copy=False),
        dtype.type(fill),
        out,
    )
    if bad >= 0:
        raise IndexError(
            f"gather: link index beyond the collection's size in event {bad} of the chunk "
            "(a corrupt input: indices must be -1 or below the number of entries)"
        )
    return out


def gather(values: Any, index: Any, fill: Any = np.nan, *, option: bool = False) -> ak.Array:
    """Per event, ``values[index]`` of a collection, for jagged local indices.

    ``values``: ``var * number`` per collection entry; ``index``: ``var * int`` (int32
    or int64) per candidate, same events. A negative index means no link: the output
    holds ``fill`` there, or None with ``option=True`` (then the type is ``var *
    ?dtype`` and ``~ak.is_none(out, axis=1)`` is the validity mask; it is also simply
    ``index >= 0``). The output dtype is :func:`result_dtype` of values and fill, so
    float32 stays float32 with a NaN fill.

    An index beyond its event's collection is a corrupt file, not a missing link: it
    raises ``IndexError`` naming the event of the chunk. A different number of events
    raises ``ValueError``.

    On typetracers: touches both inputs and returns a typetracer of the output type.
    """
    if is_typetracer(values, index):
        return on_typetracer(gather, (values, index), fill=fill, option=option)
    v_off, v = jagged(values, "gather values")
    i_off, idx = jagged(index, "gather index", np.int64)
    if len(v_off) != len(i_off):
        raise ValueError(
            f"gather: {len(v_off) - 1} events of values but {len(i_off) - 1} of indices"
        )
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather: indices must be integers, not {idx.dtype}")
    out = gather_values(v_off, v, i_off, idx, fill)
    if not option:
        return wrap(i_off, out)
    content = ak.contents.ByteMaskedArray(
        ak.index.Index8((idx >= 0).view(np.int8)),
        ak.contents.NumpyArray(out),
        valid_when=True,
    )
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(i_off), content))
