"""Run 2 trigger decisions: paths and seeds are named by ``vector<string>`` per event.

Path names carry a version suffix (``HLT_DoubleMu3_Trk_Tau3mu_v12``), so the selection
asks for substrings. The kernel searches the UTF-8 bytes of all names at once, without
a Python loop over strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import awkward as ak
import numba
import numpy as np
from numpy.typing import NDArray

from tau3mu.kernels.buffers import is_typetracer, jagged, list_layout, on_typetracer

#: flat ``uint8`` bytes
Bytes = NDArray[np.uint8]


@numba.njit(cache=True, nogil=True)
def _contains(chars: Bytes, start: int, stop: int, pattern: Bytes) -> bool:
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
def _trigger_kernel(
    e_off: NDArray[np.int64],
    s_off: NDArray[np.int64],
    chars: Bytes,
    decisions: NDArray[Any],
    patterns: Bytes,
    p_off: NDArray[np.int64],
    out: NDArray[np.bool_],
) -> None:
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


def _encode(patterns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [p.encode("utf-8") for p in patterns]
    p_off = np.zeros(len(encoded) + 1, dtype=np.int64)
    p_off[1:] = np.cumsum([len(p) for p in encoded])
    flat = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return flat, p_off


def trigger_fired(names: Any, decisions: Any, patterns: str | Sequence[str]) -> ak.Array:
    """Per event, True if an entry whose name contains any of ``patterns`` has decision != 0.

    ``names``: ``var * string`` (paths or seeds kept per event); ``decisions``: ``var *
    int`` (or bool) of the same structure. ``patterns``: one substring or a sequence of
    them (a plain ``str`` is one pattern, not its characters); case-sensitive, matched
    on the UTF-8 bytes; ``""`` matches every name, no patterns match nothing. Returns a
    flat ``bool`` array, one entry per event. Names and decisions of different lengths
    in an event raise ``ValueError`` naming the event.

    On typetracers: touches both inputs and returns a ``bool`` typetracer.
    """
    if isinstance(patterns, (str, bytes)):
        patterns = (patterns,)
    patterns = tuple(p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in patterns)
    if is_typetracer(names, decisions):
        return on_typetracer(trigger_fired, (names, decisions), patterns=patterns)
    layout = list_layout(names, "trigger_fired names")
    d_off, d = jagged(decisions, "trigger_fired decisions", np.int32)
    if isinstance(layout, ak.contents.EmptyArray):
        e_off = np.zeros(1, dtype=np.int64)
        s_off = np.zeros(1, dtype=np.int64)
        chars = np.zeros(0, dtype=np.uint8)
    else:
        e_off = np.asarray(layout.offsets.data, dtype=np.int64)
        e_off = e_off - e_off[0]
        strings = layout.content
        if isinstance(strings, ak.contents.EmptyArray):  # no names in any event
            s_off = np.zeros(1, dtype=np.int64)
            chars = np.zeros(0, dtype=np.uint8)
        else:
            if strings.parameter("__array__") not in ("string", "bytestring"):
                raise TypeError(f"trigger_fired: names must be var * string, not {ak.type(names)}")
            if not isinstance(strings, ak.contents.ListOffsetArray):
                strings = strings.to_ListOffsetArray64(True)
            s_off = np.asarray(strings.offsets.data, dtype=np.int64)
            chars = np.asarray(strings.content.data, dtype=np.uint8)
    if len(d_off) != len(e_off):
        raise ValueError(
            f"trigger_fired: {len(e_off) - 1} events of names but {len(d_off) - 1} of decisions"
        )
    bad = np.flatnonzero(d_off != e_off)
    if bad.size:
        event = int(bad[0]) - 1
        raise ValueError(
            f"trigger_fired: names and decisions have different lengths in event {event} "
            f"of the chunk ({e_off[event + 1] - e_off[event]} names, "
            f"{d_off[event + 1] - d_off[event]} decisions)"
        )
    flat, p_off = _encode(patterns)
    out = np.empty(len(e_off) - 1, dtype=np.bool_)
    _trigger_kernel(e_off, s_off, chars, d, flat, p_off, out)
    return ak.Array(out)
