"""A local file read by positional reads, safe for any number of threads at once.

uproot's local-file sources either read in a pool of reader threads (one file handle
each, reads handed over through queues) or, with ``use_threads=False``, through one
Python file object by ``seek`` then ``read``, which two threads reading one open can
interleave: one gets the other's bytes. A memory map is thread-safe but turns a file cut
short under it into a bus error. :class:`PReadFileSource` reads with ``os.pread``: no
file position is shared, no thread is started, and a short file gives short chunks,
which uproot reports as an error. It is what uproot lacks for files kept open in a
process whose threads read them (:mod:`tau3mu.opentrees`) and for files read once by a
group of small files (:mod:`tau3mu.group_work`). POSIX only (``os.pread``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from typing import Any

import uproot.source.chunk
import uproot.source.futures

from tau3mu.xrootd import local_path

__all__ = ["PReadFileSource"]


class PReadFileSource(uproot.source.chunk.Source):
    """uproot ``handler`` for a local file (a path or a ``file://`` URL), read
    synchronously in the calling thread by ``os.pread``.

    Besides uproot's counts of requests and bytes over all threads, it counts the bytes
    each thread asked for (:meth:`bytes_read_in_this_thread`), so that a unit of work
    can tell its own reads from those of other threads reading the same open.

    Raises ``OSError`` (``FileNotFoundError``, ``PermissionError``) where the file cannot
    be opened.
    """

    def __init__(self, file_path: str, **options: Any) -> None:
        self._file_path = local_path(file_path)
        self._num_requests = 0
        self._num_requested_chunks = 0
        self._num_requested_bytes = 0
        self._open()

    def _open(self) -> None:
        self._fd: int | None = os.open(self._file_path, os.O_RDONLY)
        self._num_bytes = os.fstat(self._fd).st_size
        self._counts_lock = threading.Lock()
        self._per_thread = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in ("_fd", "_counts_lock", "_per_thread"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__ = state
        self._open()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._file_path!r} at 0x{id(self):012x}>"

    def _read(self, start: int, stop: int) -> uproot.source.chunk.Chunk:
        fd = self._fd
        if fd is None:
            raise OSError(f"file is closed: {self._file_path}")
        data = os.pread(fd, stop - start, start)
        future = uproot.source.futures.TrivialFuture(data)
        return uproot.source.chunk.Chunk(self, start, stop, future)

    def _count(self, chunks: int, nbytes: int) -> None:
        with self._counts_lock:
            self._num_requests += 1
            self._num_requested_chunks += chunks
            self._num_requested_bytes += nbytes
        self._per_thread.bytes = getattr(self._per_thread, "bytes", 0) + nbytes

    def chunk(self, start: int, stop: int) -> uproot.source.chunk.Chunk:
        self._count(1, stop - start)
        return self._read(start, stop)

    def chunks(
        self, ranges: list[tuple[int, int]], notifications: queue.Queue[Any]
    ) -> list[uproot.source.chunk.Chunk]:
        self._count(len(ranges), sum(stop - start for start, stop in ranges))
        chunks = []
        for start, stop in ranges:
            chunk = self._read(start, stop)
            notifications.put(chunk)
            chunks.append(chunk)
        return chunks

    def bytes_read_in_this_thread(self) -> int:
        """Bytes the calling thread asked this open for, so far."""
        return int(getattr(self._per_thread, "bytes", 0))

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> PReadFileSource:
        return self

    def __exit__(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._close_file()  # also uproot's ``close()`` and ``ReadOnlyFile.close()``

    def __del__(self) -> None:  # an open uproot never closed (it failed half-way)
        with contextlib.suppress(Exception):  # at interpreter exit, os may be gone
            self._close_file()

    def _close_file(self) -> None:
        """Close the file descriptor (once: later calls do nothing)."""
        with self._counts_lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def num_bytes(self) -> int:
        return self._num_bytes
