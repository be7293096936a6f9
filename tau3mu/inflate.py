"""ZLIB inflate for uproot through ISA-L: a quarter off the cost of reading Run 2 files.

CMS ntuples are ZLIB-compressed, and inflating them is about half of what uproot spends
reading the branches the selection needs (measured in ``benchmarks/bench_throughput.py``).
ISA-L (the ``isal`` package) inflates the same bytes about twice as fast as the standard
library's zlib.

uproot documents ``uproot.ZLIB.library = "isal"`` as the switch, but in uproot 5.7
decompression goes through a module-level ``_DecompressZLIB`` instance that this class
attribute does not reach, so setting it alone changes nothing; and on the class it would
also change how uproot *writes* ZLIB. :func:`configure` sets the decompressor only.
Importing this module changes nothing; :func:`tau3mu.reading.prepare_process` calls
:func:`configure` in every process that reads, where the uproot version is one it was
tested with (:func:`tau3mu.reading.supported`).

``TAU3MU_INFLATE=zlib`` keeps the standard library (for side-by-side measurements).
"""

from __future__ import annotations

import os
from functools import cache

__all__ = ["LIBRARIES", "configure", "current", "isal_available"]

LIBRARIES = ("isal", "zlib")


@cache
def isal_available() -> bool:
    """Whether the ``isal`` package (ISA-L's zlib) can be imported here; asked once per
    process (``isal_available.cache_clear()`` asks again)."""
    try:
        import isal.isal_zlib  # noqa: F401
    except ImportError:
        return False
    return True


def configure(library: str | None = None) -> str:
    """Select uproot's ZLIB inflate library; return the one in use.

    ``library`` defaults to ``$TAU3MU_INFLATE`` or ``"isal"``; without the ``isal``
    package the standard library is used.
    """
    choice = (library or os.environ.get("TAU3MU_INFLATE") or "isal").lower()
    if choice not in LIBRARIES:
        raise ValueError(f"unknown inflate library {choice!r}; use one of {LIBRARIES}")
    if choice == "isal" and not isal_available():
        choice = "zlib"
    import uproot.compression

    # only the reading side: the instance uproot decompresses with. The class attribute
    # would also switch uproot's ZLIB *compression* to ISA-L, whose level mapping turns
    # ROOT level 1 into ISA-L level 0 (baskets that often stay uncompressed).
    decompressor = getattr(uproot.compression, "_decompress_ZLIB", None)
    if decompressor is None:  # an uproot without the module-level instance
        uproot.compression._DecompressZLIB.library = choice
    else:
        decompressor.library = choice
    return choice


def current() -> str:
    """The inflate library uproot uses now."""
    import uproot.compression

    decompressor = getattr(uproot.compression, "_decompress_ZLIB", None)
    return str(getattr(decompressor, "library", uproot.compression.ZLIB.library))
