"""Trees kept open in each process, so that the chunks of a file share one opened TTree.

coffea's Runner opens the file again for every chunk, and every open makes uproot
deserialise the tree's metadata and NanoEvents type every branch: ~0.3 s for the 277
branches of a Run 2 ntuple, whatever the chunk's size. :func:`uproot_options` lets the
second and later chunks of a file (and, in the client, the chunks of a file the
inspection just opened) take the tree the first open made, through the options
:func:`tau3mu.reading.uproot_options` gives for local files:

- ``handler``: :class:`KeptFileSource`, a local-file source that stays open while a kept
  tree reads through it (a chunk's ``with`` leaves it open);
- ``object_cache``: :class:`KeptTrees`, this process's cache of those trees.

Kept trees read ``std::vector`` branches with :class:`tau3mu.vectors.AsStdVector`, as
every tree the analysis opens does. The Runner's and the inspection's opens
(:class:`PartialKeptFileSource`) read trees that hold only the schema's branches
(:mod:`tau3mu.lazytrees`); such a tree is handed out only to opens of that kind, never
to a :class:`KeptFileSource`'s (complete trees: ``TAU3MU_LAZY_TREES=off``).

uproot's per-file array cache stays, sized for a chunk (:data:`CHUNK_ARRAY_CACHE`):
NanoEvents asks for a jagged branch once for its offsets and once for its content, and
the cache makes the second ask free. A chunk's
arrays are dropped from it when the chunk closes its file, as they are without kept
trees, so a kept file holds no arrays between chunks.

A kept tree serves only the file it was read from, while that file is unchanged: same
path, device, inode, size, mtime and ctime. A process keeps at most :data:`MAX_FILES`
files and closes the least recently used first; :func:`release` closes them all. Remote
files are not kept: their reads go through the XRootD options of :mod:`tau3mu.xrootd`.
Nor are the files of a group of small files (:mod:`tau3mu.filegroups`), which may be
more than a process keeps: they are read once (:class:`tau3mu.reading.ReadOnceFileSource`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from typing import Any

import uproot.source.file
from uproot.behaviors.TTree import TTree

from tau3mu.cache import file_identity
from tau3mu.lazytrees import is_partial
from tau3mu.schemas import schema_branch
from tau3mu.vectors import use_fast_vectors
from tau3mu.xrootd import local_path

__all__ = [
    "CHUNK_ARRAY_CACHE",
    "MAX_FILES",
    "KeptFileSource",
    "KeptTrees",
    "PartialKeptFileSource",
    "kept_trees",
    "release",
]

#: files a process keeps open at most (each holds one file handle and one reader thread)
MAX_FILES = 8

#: uproot's per-file array cache for a chunk's reads. NanoEvents asks for a jagged
#: branch twice (offsets, then content, often much later); with uproot's default 100 MB
#: a 113k-event Run 2 chunk (~190 MB of arrays) evicted branches before their second ask,
#: and 38 % more baskets were read and inflated than the chunk holds. The cache holds the
#: very arrays NanoEvents keeps for the chunk, and is emptied when the chunk ends.
CHUNK_ARRAY_CACHE = "1 GB"

_opening = threading.local()


def _identity(path: str) -> tuple[int | str, ...]:
    return tuple(file_identity(path).values())


class KeptFileSource(uproot.source.file.MultithreadedFileSource):
    """uproot's local-file source, left open while :class:`KeptTrees` keeps its tree.

    It notes, per thread, which file (path and stat) is being opened, so that the
    tree cache hands out only trees read from that very file.
    """

    #: whether trees that hold only some branches (:mod:`tau3mu.lazytrees`) may serve it
    takes_partial_trees = False

    def __init__(self, file_path: str, **options: Any) -> None:
        file_path = local_path(file_path)  # a file:// URL too
        self.identity = _identity(file_path)
        self._kept = False
        #: trees this open read through: their cached arrays go when it closes
        self.trees_used: list[TTree] = []
        super().__init__(file_path, **options)
        _opening.identity = self.identity
        _opening.source = self

    def keep(self) -> None:
        self._kept = True

    def release(self) -> None:
        """Close the file for real, even while kept."""
        self._kept = False
        super().__exit__(None, None, None)

    def __exit__(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        for tree in self.trees_used:
            if tree.file.array_cache is not None:
                tree.file.array_cache.clear()
        self.trees_used.clear()
        if not self._kept:
            super().__exit__(exception_type, exception_value, traceback)


class PartialKeptFileSource(KeptFileSource):
    """:class:`KeptFileSource` for opens that read only the schema's branches: a kept
    tree that lacks the others may serve them."""

    takes_partial_trees = True


class KeptTrees(MutableMapping):
    """uproot ``object_cache`` that keeps the TTrees read through :class:`KeptFileSource`.

    uproot asks it for ``"<file uuid>:<key seek>"``; it answers only with a tree read
    from the file that the asking thread opened last (same path and stat), never with a
    tree of a copy or of an earlier version of the file. That holds because a tree is
    asked for right after its file is opened, in the same thread: as coffea's Runner
    and :func:`tau3mu.inspection.inspect_inputs` do. A tree that holds only some branches
    serves only a :class:`PartialKeptFileSource`'s open. One instance per process
    (:func:`kept_trees`): pickling it (to ship the Runner's options to workers) gives
    the receiving process its own.
    """

    def __init__(self, max_files: int = MAX_FILES) -> None:
        self.max_files = max_files
        self._trees: OrderedDict[tuple[Any, str], TTree] = OrderedDict()
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return kept_trees, ()

    def _key(self, key: str) -> tuple[Any, str]:
        return (getattr(_opening, "identity", None), key)

    def __getitem__(self, key: str) -> TTree:
        opener = getattr(_opening, "source", None)
        with self._lock:
            full = self._key(key)
            tree = self._trees[full]
            if is_partial(tree) and not getattr(opener, "takes_partial_trees", False):
                raise KeyError(key)  # read again, with every branch
            self._trees.move_to_end(full)
        if opener is not None:
            opener.trees_used.append(tree)
        return tree

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(value, TTree):
            return  # directories: uproot reads them again
        use_fast_vectors(value, schema_branch)
        source = getattr(value.file, "source", None)
        if not isinstance(source, KeptFileSource):
            return  # trees of other sources: uproot reads them again
        evicted = []
        with self._lock:
            full = (source.identity, key)
            if full[0] != getattr(_opening, "identity", None):
                return
            if full in self._trees:
                # two threads opened the file at once: the first tree stays kept, this
                # open is closed as usual (keeping both would leave one open for good)
                return
            source.keep()
            source.trees_used.append(value)
            self._trees[full] = value
            self._trees.move_to_end(full)
            while len(self._trees) > self.max_files:
                evicted.append(self._trees.popitem(last=False)[1])
        for tree in evicted:
            tree.file.source.release()

    def __delitem__(self, key: str) -> None:
        with self._lock:
            tree = self._trees.pop(self._key(key))
        tree.file.source.release()

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter([key for _, key in self._trees])

    def __len__(self) -> int:
        return len(self._trees)

    def release(self) -> None:
        """Close every kept file."""
        with self._lock:
            trees = list(self._trees.values())
            self._trees.clear()
        for tree in trees:
            tree.file.source.release()


_KEPT = KeptTrees()


def kept_trees() -> KeptTrees:
    """This process's :class:`KeptTrees`."""
    return _KEPT


def release() -> None:
    """Close the files this process keeps (their trees are read again on the next open)."""
    _KEPT.release()
