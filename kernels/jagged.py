"""Numba kernels on jagged arrays, and the awkward-level wrappers the processor calls.

Every kernel has two layers:

- a ``@numba.njit`` core on flat numpy buffers (offsets and contents), and
- a wrapper taking and returning :class:`awkward.Array`. Given typetracer arrays (what
  dask-awkward passes while it builds a graph) the wrapper touches the inputs' data, so
  the columns are known to be needed, and returns a typetracer of the output's type
  without running the kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import awkward as ak
import numba
import numpy as np

# -- helpers ---------------------------------------------------------------------------


def _is_typetracer(*arrays: Any) -> bool:
    return any(ak.backend(a) == "typetracer" for a in arrays)


def _touch(*arrays: Any) -> None:
    for array in arrays:
        ak.typetracer.touch_data(array)


def _jagged(array: Any, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, contents) of a one-level jagged numeric array, starting at offset 0.

    Arrays of unknown type (no events, or only empty lists) give empty ``dtype`` contents.
    """
    layout = ak.to_layout(ak.to_packed(array))
    if isinstance(layout, ak.contents.EmptyArray):
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=dtype)
    if layout.is_option or not layout.is_list:
        raise TypeError(f"jagged kernels take lists of numbers, not {ak.type(array)}")
    if not isinstance(layout, ak.contents.ListOffsetArray):
        layout = layout.to_ListOffsetArray64(True)
    offsets = np.asarray(layout.offsets.data, dtype=np.int64)
    if isinstance(layout.content, ak.contents.EmptyArray):
        return offsets - offsets[0], np.zeros(0, dtype=dtype)
    content = ak.to_numpy(ak.Array(layout.content))
    return offsets - offsets[0], content[offsets[0] :]


def _rewrap(offsets: np.ndarray, content: np.ndarray) -> ak.Array:
    return ak.Array(
        ak.contents.ListOffsetArray(ak.index.Index64(offsets), ak.contents.NumpyArray(content))
    )


def _typetracer_like(example: ak.Array) -> ak.Array:
    return ak.Array(ak.to_layout(example).to_typetracer(forget_length=True))


def _check_same_structure(offsets: Sequence[np.ndarray], what: str) -> None:
    first = offsets[0]
    for other in offsets[1:]:
        if other.shape != first.shape or not np.array_equal(other, first):
            raise ValueError(f"{what}: inputs have different numbers of entries per event")


# -- value matching (Run 2 links) ------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _match_kernel(c_off, c_pt, c_eta, c_phi, m_off, m_pt, m_eta, m_phi, out):
    for event in range(len(c_off) - 1):
        m_start, m_stop = m_off[event], m_off[event + 1]
        for i in range(c_off[event], c_off[event + 1]):
            found = -1
            for j in range(m_start, m_stop):
                if c_pt[i] == m_pt[j] and c_eta[i] == m_eta[j] and c_phi[i] == m_phi[j]:
                    found = j - m_start
                    break
            out[i] = found


def match_to_collection(
    pt: Any, eta: Any, phi: Any, coll_pt: Any, coll_eta: Any, coll_phi: Any
) -> ak.Array:
    """Per candidate, the index of the first collection entry with equal (pt, eta, phi), or -1.

    Exact equality, as the producer copies values: cast the candidate's copies to the
    collection's precision first (Run 2 muons: doubles to float32). NaN never matches.
    """
    if _is_typetracer(pt, eta, phi, coll_pt, coll_eta, coll_phi):
        _touch(pt, eta, phi, coll_pt, coll_eta, coll_phi)
        return _typetracer_like(ak.Array([[np.int64(0)]]))
    c = [_jagged(a) for a in (pt, eta, phi)]
    m = [_jagged(a) for a in (coll_pt, coll_eta, coll_phi)]
    _check_same_structure([x[0] for x in c], "candidate kinematics")
    _check_same_structure([x[0] for x in m], "collection kinematics")
    if len(c[0][0]) != len(m[0][0]):
        raise ValueError("candidates and collection have different numbers of events")
    out = np.empty(len(c[0][1]), dtype=np.int64)
    _match_kernel(c[0][0], c[0][1], c[1][1], c[2][1], m[0][0], m[0][1], m[1][1], m[2][1], out)
    return _rewrap(c[0][0], out)


# -- gather by index -------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _gather_kernel(v_off, values, i_off, index, fill, out):
    bad = -1
    for event in range(len(i_off) - 1):
        size = v_off[event + 1] - v_off[event]
        for i in range(i_off[event], i_off[event + 1]):
            k = index[i]
            if k < 0:
                out[i] = fill
            elif k >= size:
                out[i] = fill
                if bad < 0:
                    bad = event
            else:
                out[i] = values[v_off[event] + k]
    return bad


def gather(values: Any, index: Any, fill: float = np.nan) -> ak.Array:
    """``values[index]`` per event; ``fill`` where the index is negative (no link).

    An index beyond its event's collection is a corrupt file, not a missing link:
    it raises an ``IndexError`` naming the event.
    """
    if _is_typetracer(values, index):
        _touch(values, index)
        dtype = np.result_type(ak.to_layout(values).form.content.primitive, fill)
        return _typetracer_like(ak.Array([np.zeros(1, dtype=dtype)]))
    v_off, v = _jagged(values)
    i_off, idx = _jagged(index, np.int64)
    if len(v_off) != len(i_off):
        raise ValueError("values and index have different numbers of events")
    dtype = np.result_type(v.dtype, fill)
    out = np.empty(len(idx), dtype=dtype)
    bad = _gather_kernel(
        v_off, v.astype(dtype, copy=False), i_off, idx.astype(np.int64), dtype.type(fill), out
    )
    if bad >= 0:
        raise IndexError(f"link index beyond the collection's size in event {bad} of the chunk")
    return _rewrap(i_off, out)


# -- masked per-event argmin (best candidate) ------------------------------------------


@numba.njit(cache=True, nogil=True)
def _best_kernel(offsets, values, mask, out):
    for event in range(len(offsets) - 1):
        best = -1
        best_value = np.inf
        for i in range(offsets[event], offsets[event + 1]):
            v = values[i]
            if mask[i] and not np.isnan(v) and (best < 0 or v < best_value):
                best = i - offsets[event]
                best_value = v
        out[event] = best


def best_candidate(values: Any, mask: Any) -> ak.Array:
    """Per event, the local index of the smallest ``values`` among ``mask``-ed entries.

    Ties go to the lowest index; NaN never wins; -1 where no entry passes.
    """
    if _is_typetracer(values, mask):
        _touch(values, mask)
        return _typetracer_like(ak.Array(np.zeros(1, dtype=np.int64)))
    off, v = _jagged(values)
    m_off, m = _jagged(mask, np.bool_)
    _check_same_structure([off, m_off], "best_candidate")
    out = np.empty(len(off) - 1, dtype=np.int64)
    _best_kernel(off, v.astype(np.float64, copy=False), m.astype(np.bool_), out)
    return ak.Array(out)


# -- trigger names ----------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _contains(chars, start, stop, pattern):
    n = len(pattern)
    for s in range(start, stop - n + 1):
        ok = True
        for k in range(n):
            if chars[s + k] != pattern[k]:
                ok = False
                break
        if ok:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _trigger_kernel(e_off, s_off, chars, decisions, patterns, p_off, out):
    for event in range(len(e_off) - 1):
        fired = False
        for i in range(e_off[event], e_off[event + 1]):
            if decisions[i] == 0:
                continue
            for p in range(len(p_off) - 1):
                if _contains(chars, s_off[i], s_off[i + 1], patterns[p_off[p] : p_off[p + 1]]):
                    fired = True
                    break
            if fired:
                break
        out[event] = fired


def trigger_fired(names: Any, decisions: Any, patterns: Sequence[str]) -> ak.Array:
    """Per event, True if an entry whose name contains any of ``patterns`` has decision != 0."""
    if _is_typetracer(names, decisions):
        _touch(names, decisions)
        return _typetracer_like(ak.Array(np.zeros(1, dtype=np.bool_)))
    layout = ak.to_layout(ak.to_packed(names))
    if isinstance(layout, ak.contents.EmptyArray):
        return ak.Array(np.zeros(0, dtype=np.bool_))
    if not isinstance(layout, ak.contents.ListOffsetArray):
        layout = layout.to_ListOffsetArray64(True)
    strings = layout.content
    if isinstance(strings, ak.contents.EmptyArray):  # no names in any event
        d_off, _ = _jagged(decisions, np.int32)
        if not np.array_equal(d_off, np.zeros_like(d_off)):
            raise ValueError("trigger names and decisions have different lengths in some event")
        return ak.Array(np.zeros(len(layout), dtype=np.bool_))
    if not isinstance(strings, ak.contents.ListOffsetArray):
        strings = strings.to_ListOffsetArray64(True)
    e_off = np.asarray(layout.offsets.data, dtype=np.int64)
    s_off = np.asarray(strings.offsets.data, dtype=np.int64)
    chars = np.asarray(strings.content.data, dtype=np.uint8)
    d_off, d = _jagged(decisions, np.int32)
    if not np.array_equal(d_off, e_off - e_off[0]):
        raise ValueError("trigger names and decisions have different lengths in some event")
    encoded = [p.encode() for p in patterns]
    p_off = np.zeros(len(encoded) + 1, dtype=np.int64)
    p_off[1:] = np.cumsum([len(p) for p in encoded])
    flat = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
    out = np.empty(len(e_off) - 1, dtype=np.bool_)
    _trigger_kernel(e_off, s_off, chars, d, flat, p_off, out)
    return ak.Array(out)
