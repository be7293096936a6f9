"""ROOT's streamed ``std::vector<number>`` entries to a jagged array's offsets and content.

A Run 2 ntuple stores each event's ``std::vector<T>`` as a 10-byte header (a 4-byte
byte count with ROOT's ``kByteCountMask`` bit, a 2-byte class version, the 4-byte
number of elements, all big-endian) followed by the elements. uproot removes the
headers with a boolean mask over the basket's bytes: three full-size temporaries and a
fancy-indexed write, about a third of what reading such a branch costs. The kernel
copies each entry's elements in one pass, and checks every header on the way (the byte
count and the number of elements must agree with the entry's size), which uproot does
not.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

#: bytes ROOT writes before each ``std::vector``'s elements
VECTOR_HEADER_BYTES = 10

_BYTE_COUNT_MASK = 0x40000000

#: flat ``uint8`` bytes (the scalar helpers below return numba's integers and booleans:
#: typed ``Any``, as numpy's annotations do not follow a scalar through ``<<`` and ``|``)
Bytes = NDArray[np.uint8]


@numba.njit(cache=True, nogil=True)
def _be32(data: Bytes, at: int) -> Any:
    """The big-endian 4-byte unsigned integer at ``data[at:at + 4]``."""
    return (
        (np.int64(data[at]) << 24)
        | (np.int64(data[at + 1]) << 16)
        | (np.int64(data[at + 2]) << 8)
        | np.int64(data[at + 3])
    )


@numba.njit(cache=True, nogil=True)
def _header_ok(data: Bytes, start: int, stop: int) -> Any:
    """ROOT's byte count of the object at ``start``: the bytes after it, with the flag."""
    return _be32(data, start) == (_BYTE_COUNT_MASK | (stop - start - 4))


@numba.njit(cache=True, nogil=True)
def _string_size(data: Bytes, pos: int) -> tuple[Any, Any]:
    """A streamed string's size and where its characters start: one byte, or 255 and
    then four bytes for a long string."""
    size = np.int64(data[pos])
    if size == 255:
        return _be32(data, pos + 1), pos + 5
    return size, pos + 1


@numba.njit(cache=True, nogil=True)
def _strip_kernel(
    data: Bytes,
    byte_offsets: NDArray[np.int64],
    itemsize: int,
    content: Bytes,
    offsets: NDArray[np.int32],
) -> int:
    header = VECTOR_HEADER_BYTES
    pos = 0
    offsets[0] = 0
    for entry in range(len(byte_offsets) - 1):
        start = byte_offsets[entry]
        stop = byte_offsets[entry + 1]
        if stop < start + header or stop > len(data):
            return entry
        size = stop - start - header
        if size % itemsize != 0 or pos + size > len(content):
            return entry
        if not _header_ok(data, start, stop) or _be32(data, start + 6) * itemsize != size:
            return entry
        # unsigned indices: no negative-index wraparound, so LLVM vectorises the copy
        target = np.uint64(pos)
        source = np.uint64(start + header)
        for k in range(np.uint64(size)):
            content[target + k] = data[source + k]
        pos += size
        offsets[entry + 1] = pos // itemsize
    return -1


def strip_vector_headers(
    data: np.ndarray,
    byte_offsets: np.ndarray,
    itemsize: int,
    *,
    first_entry: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Elements' bytes (``uint8``, still big-endian) and element offsets (``int32``).

    ``data``: a basket's bytes; ``byte_offsets``: where each entry starts in them, plus
    the end (``n + 1`` values). Each header's byte count and number of elements are
    checked; a malformed entry raises :class:`ValueError` naming it, counted from
    ``first_entry`` (the basket's first entry in its file).
    """
    data = np.asarray(data, dtype=np.uint8)
    byte_offsets = np.asarray(byte_offsets, dtype=np.int64)
    entries = len(byte_offsets) - 1
    size = int(byte_offsets[-1] - byte_offsets[0]) - VECTOR_HEADER_BYTES * entries if entries else 0
    content = np.empty(max(size, 0), dtype=np.uint8)
    offsets = np.empty(entries + 1, dtype=np.int32)
    bad = _strip_kernel(data, byte_offsets, itemsize, content, offsets)
    if bad >= 0:
        start, stop = int(byte_offsets[bad]), int(byte_offsets[bad + 1])
        raise ValueError(
            f"entry {first_entry + bad} is not a std::vector of {itemsize}-byte numbers: bytes "
            f"{start}-{stop} of the basket's {len(data)}, header "
            f"{bytes(data[start : min(start + VECTOR_HEADER_BYTES, len(data))]).hex()}"
        )
    return content, offsets


@numba.njit(cache=True, nogil=True)
def _string_sizes_kernel(
    data: Bytes, byte_offsets: NDArray[np.int64], sizes: NDArray[np.int64]
) -> int:
    """Per entry, check the ``std::vector<std::string>`` and count strings and chars;
    ``sizes`` gets (strings, chars). Returns the first malformed entry, or -1."""
    strings = 0
    chars = 0
    for entry in range(len(byte_offsets) - 1):
        start = byte_offsets[entry]
        stop = byte_offsets[entry + 1]
        if stop < start + VECTOR_HEADER_BYTES or stop > len(data):
            return entry
        if not _header_ok(data, start, stop):
            return entry
        length = _be32(data, start + 6)
        pos = start + VECTOR_HEADER_BYTES
        for _ in range(length):
            # the size byte, and for a long string its four more bytes, inside the entry
            if pos >= stop or (data[pos] == 255 and pos + 5 > stop):
                return entry
            size, pos = _string_size(data, pos)
            pos += size
            chars += size
        if pos != stop:
            return entry
        strings += length
    sizes[0] = strings
    sizes[1] = chars
    return -1


@numba.njit(cache=True, nogil=True)
def _string_fill_kernel(
    data: Bytes,
    byte_offsets: NDArray[np.int64],
    entry_offsets: NDArray[np.int64],
    string_offsets: NDArray[np.int64],
    chars: Bytes,
) -> None:
    strings = 0
    filled = np.uint64(0)
    entry_offsets[0] = 0
    string_offsets[0] = 0
    for entry in range(len(byte_offsets) - 1):
        start = byte_offsets[entry]
        pos = start + VECTOR_HEADER_BYTES
        for _ in range(_be32(data, start + 6)):
            size, pos = _string_size(data, pos)
            source = np.uint64(pos)
            for k in range(np.uint64(size)):
                chars[filled + k] = data[source + k]
            filled += np.uint64(size)
            pos += size
            strings += 1
            string_offsets[strings] = filled
        entry_offsets[entry + 1] = strings


def split_string_vectors(
    data: np.ndarray, byte_offsets: np.ndarray, *, first_entry: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROOT's streamed ``std::vector<std::string>`` entries as flat buffers.

    Returns the entries' offsets into the strings, the strings' offsets into the
    characters (both ``int64``) and the characters (``uint8``). Each entry is checked
    (header byte count, string sizes, nothing left over); a malformed one raises
    :class:`ValueError` naming it, counted from ``first_entry``.
    """
    data = np.asarray(data, dtype=np.uint8)
    byte_offsets = np.asarray(byte_offsets, dtype=np.int64)
    sizes = np.zeros(2, dtype=np.int64)
    bad = _string_sizes_kernel(data, byte_offsets, sizes)
    if bad >= 0:
        start, stop = int(byte_offsets[bad]), int(byte_offsets[bad + 1])
        raise ValueError(
            f"entry {first_entry + bad} is not a std::vector<std::string>: bytes "
            f"{start}-{stop} of the basket's "
            f"{len(data)}, header "
            f"{bytes(data[start : min(start + VECTOR_HEADER_BYTES, len(data))]).hex()}"
        )
    entry_offsets = np.empty(len(byte_offsets), dtype=np.int64)
    string_offsets = np.empty(sizes[0] + 1, dtype=np.int64)
    chars = np.empty(sizes[1], dtype=np.uint8)
    _string_fill_kernel(data, byte_offsets, entry_offsets, string_offsets, chars)
    return entry_offsets, string_offsets, chars
