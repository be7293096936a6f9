"""Between awkward arrays and the flat numpy buffers the numba cores work on.

Every public kernel is a ``@numba.njit`` core on flat buffers (offsets and contents)
plus a wrapper taking and returning :class:`awkward.Array`. Wrappers reach the buffers
through awkward/numpy calls (``ak.to_packed``, ``ak.to_numpy``), which materialise
virtual buffers (coffea's ``mode="virtual"`` NanoEvents) on access.

Given typetracer arrays (what dask-awkward passes while it builds a graph), a wrapper
must not run its kernel: :func:`on_typetracer` touches the inputs' data, so
dask-awkward's column optimisation knows they are needed, runs the same wrapper on
length-zero arrays of the same forms and returns the result's typetracer. Eager and
lazy results then have the same type by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import awkward as ak
import numpy as np


def is_typetracer(*arrays: Any) -> bool:
    """True if any input is backed by awkward's typetracer (dask-awkward graph building)."""
    return any(ak.backend(a) == "typetracer" for a in arrays)


def on_typetracer(function: Callable[..., Any], arrays: Sequence[Any], **kwargs: Any) -> ak.Array:
    """``function``'s output type as an unknown-length typetracer, inputs' data touched."""
    zeros = []
    for array in arrays:
        if ak.backend(array) == "typetracer":
            # touches every buffer, then builds a real length-zero array of the same form
            zeros.append(ak.typetracer.length_zero_if_typetracer(array))
        else:
            zeros.append(ak.Array(ak.to_layout(array))[:0])
    result = function(*zeros, **kwargs)
    return ak.Array(ak.to_layout(result).to_typetracer(forget_length=True))


def _is_packed(layout: ak.contents.Content) -> bool:
    """Whether ``layout`` is a list of numbers that ``ak.to_packed`` returns as it is:
    offsets from 0 to the content's length, a contiguous one-dimensional content, and
    neither of them a string or other named array."""
    if not isinstance(layout, ak.contents.ListOffsetArray):
        return False
    content = layout.content
    if not isinstance(content, ak.contents.NumpyArray):
        return False
    if layout.parameter("__array__") is not None or content.parameter("__array__") is not None:
        return False
    offsets = layout.offsets.data
    shape = content.data.shape
    return (
        len(shape) == 1
        and content.is_contiguous
        and int(offsets[0]) == 0
        and int(offsets[-1]) == shape[0]
    )


def list_layout(array: Any, what: str) -> ak.contents.Content:
    """The packed layout of a one-level list array, as a ListOffsetArray (or EmptyArray)."""
    layout = ak.to_layout(array)
    if _is_packed(layout):
        return layout  # what ak.to_packed would return, without its dispatch
    layout = ak.to_layout(ak.to_packed(layout))
    if isinstance(layout, ak.contents.EmptyArray):
        return layout
    if layout.is_option or not layout.is_list or layout.parameter("__array__") is not None:
        raise TypeError(f"{what}: expected a jagged array (var * ...), got {ak.type(array)}")
    if not isinstance(layout, ak.contents.ListOffsetArray):
        layout = layout.to_ListOffsetArray64(True)
    return layout


def jagged(array: Any, what: str, empty_dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, contents) of a one-level jagged numeric array; offsets int64 from 0.

    Arrays of unknown type (no events, or only empty lists) give empty ``empty_dtype``
    contents. Option types (missing values) are rejected: no kernel guesses a default.
    """
    layout = list_layout(array, what)
    if isinstance(layout, ak.contents.EmptyArray):
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=empty_dtype)
    offsets = np.asarray(layout.offsets.data, dtype=np.int64)
    content = layout.content
    if isinstance(content, ak.contents.EmptyArray):
        return offsets - offsets[0], np.zeros(0, dtype=empty_dtype)
    if not isinstance(content, ak.contents.NumpyArray) or content.data.ndim != 1:
        raise TypeError(f"{what}: expected var * number, got {ak.type(array)}")
    values = ak.to_numpy(ak.Array(content))
    return offsets - offsets[0], values[offsets[0] : offsets[-1]]


def wrap(offsets: np.ndarray, content: np.ndarray) -> ak.Array:
    """A jagged ``ak.Array`` from int64 offsets and a flat content buffer."""
    return ak.Array(
        ak.contents.ListOffsetArray(ak.index.Index64(offsets), ak.contents.NumpyArray(content))
    )


def check_same_structure(offsets: Sequence[np.ndarray], what: str) -> None:
    """ValueError unless all offsets are equal: same events, same entries per event."""
    first = offsets[0]
    for other in offsets[1:]:
        if len(other) != len(first):
            raise ValueError(
                f"{what}: inputs have different numbers of events ({len(first) - 1} and "
                f"{len(other) - 1})"
            )
        bad = np.flatnonzero(other != first)
        if bad.size:
            event = max(int(bad[0]) - 1, 0)
            raise ValueError(
                f"{what}: inputs have different numbers of entries per event "
                f"(first in event {event} of the chunk)"
            )


def float64_buffers(arrays: Sequence[Any], what: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """(offsets, float64 contents per array) of one-level jagged numeric arrays of one
    structure; ValueError (naming ``what``) if their structures differ.

    The contents are float64 before any arithmetic: numba's ``math.cos`` of a float32
    is a float32."""
    parts = [jagged(a, what) for a in arrays]
    check_same_structure([p[0] for p in parts], what)
    return parts[0][0], [p[1].astype(np.float64, copy=False) for p in parts]


__all__ = [
    "check_same_structure",
    "float64_buffers",
    "is_typetracer",
    "jagged",
    "list_layout",
    "on_typetracer",
    "wrap",
]
