"""Trees kept open in each process, so that the chunks of a file share one opened TTree.

coffea's Runner opens the file again for every chunk, and every open makes uproot
deserialise the tree's metadata and NanoEvents type every branch: ~0.3 s for the 277
branches of a Run 2 ntuple, whatever the chunk's size. :func:`uproot_options` lets the
second and later chunks of a file (and, in the client, the chunks of a file the
inspection just opened) take the tree the first open made, through the options
:func:`tau3mu.reading.uproot_options` gives for local files:

- ``handler``: :class:`KeptFileSource`, a local-file source that stays open while a kept
  tree reads through it (a chunk's ``with`` leaves it open). It reads by positional
  reads (:class:`tau3mu.preadsource.PReadFileSource`): no reader thread per file, and
  any number of threads may read one kept file at once;
- ``object_cache``: :class:`KeptTrees`, this process's cache of those trees.

Kept trees read ``std::vector`` branches with :class:`tau3mu.vectors.AsStdVector`, as
every tree the analysis opens does. The Runner's and the inspection's opens read trees
that hold only some branches (:mod:`tau3mu.lazytrees`: the schema's, or those a run
reads, :mod:`tau3mu.traced_branches`); each open asks the cache for the branches it
wants (:func:`kept_trees_for`), and a kept tree is handed out only to an open
whose branches it holds (:func:`tau3mu.lazytrees.serves`; complete trees, for
``TAU3MU_LAZY_TREES=off``, ask with no filter).

uproot's per-file array cache stays, sized for a chunk (:data:`CHUNK_ARRAY_CACHE`):
NanoEvents asks for a jagged branch once for its offsets and once for its content, and
the cache makes the second ask free. A chunk's
arrays are dropped from it when the chunk closes its file, as they are without kept
trees, so a kept file holds no arrays between chunks.

A kept tree serves only the file it was read from, while that file is unchanged: same
path, device, inode, size, mtime and ctime. A process keeps at most :data:`MAX_FILES`
trees (a file's, for tau3mu's one tree per file) and lets the least recently used go
first; a file closes once none of its trees is kept and no open uses it;
:func:`release` lets them all go. Remote files are not kept: their reads go through the
XRootD options of :mod:`tau3mu.xrootd`. With lazy trees, a group of small files
(:mod:`tau3mu.filegroups`) takes the trees the inspection kept in this process, but
keeps none it reads itself (:class:`BorrowingFileSource`): its files are read once.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from uproot.behaviors.TTree import TTree

from tau3mu.cache import file_identity
from tau3mu.lazytrees import serves
from tau3mu.preadsource import PReadFileSource
from tau3mu.schemas import schema_branch
from tau3mu.vectors import use_fast_vectors
from tau3mu.xrootd import local_path

__all__ = [
    "CHUNK_ARRAY_CACHE",
    "MAX_FILES",
    "BorrowingFileSource",
    "KeptFileSource",
    "KeptTrees",
    "KeptTreesFor",
    "kept_trees",
    "kept_trees_for",
    "release",
]

#: trees a process keeps at most (each holds its file's descriptor and the tree's
#: metadata): two groups' worth of small files (:data:`tau3mu.filegroups.MAX_GROUP_FILES`)
MAX_FILES = 128

#: uproot's per-file array cache for a chunk's reads. NanoEvents asks for a jagged
#: branch twice (offsets, then content, often much later); with uproot's default 100 MB
#: a 113k-event Run 2 chunk (~190 MB of arrays) evicted branches before their second ask,
#: and 38 % more baskets were read and inflated than the chunk holds. The cache holds the
#: very arrays NanoEvents keeps for the chunk, and is emptied when the chunk ends.
CHUNK_ARRAY_CACHE = "1 GB"

_opening = threading.local()


def _identity(path: str) -> tuple[int | str, ...]:
    return tuple(file_identity(path).values())


class KeptFileSource(PReadFileSource):
    """A local file's open that stays open while :class:`KeptTrees` keeps its tree.

    It notes, per thread, which file (path and stat) is being opened, so that the tree
    cache hands out only trees read from that very file. An open in use is never closed
    under its reader: the open that made it and every open that took its tree from the
    cache (until their ``with`` ends) count as users, and a file that the cache lets go
    of (:meth:`release`) closes when its last user leaves.
    """

    #: whether a tree read through this open is kept for later opens
    keeps_opened_trees = True

    def __init__(self, file_path: str, **options: Any) -> None:
        self.identity = _identity(local_path(file_path))  # before the open: nothing to leak
        super().__init__(file_path, **options)
        self._start_use()
        _opening.identity = self.identity
        _opening.source = self

    def _start_use(self) -> None:
        self._use_lock = threading.Lock()
        self._users = 1  # this open, until its ``with`` ends (or uproot closes it)
        self._kept = 0  # its trees in the cache
        self._left = False
        #: trees this open read through: their cached arrays go when it closes
        self.trees_used: list[TTree] = []
        #: kept opens whose trees this open took, with this thread's bytes at the time
        self.borrowed: list[tuple[KeptFileSource, int]] = []

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        for name in ("_use_lock", "_users", "_kept", "_left", "trees_used", "borrowed"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # a new open of the file, used by nobody yet
        self._start_use()

    @property
    def done(self) -> bool:
        """Whether this open has ended (its ``with``, or uproot's close)."""
        return self._left

    def keep(self) -> None:
        """One more of its trees in the cache."""
        with self._use_lock:
            self._kept += 1

    def borrow(self) -> None:
        """One more user (an open that took this open's tree)."""
        with self._use_lock:
            self._users += 1

    def _leave(self) -> None:
        with self._use_lock:
            self._users -= 1
            self._close_if_unused()

    def release(self) -> None:
        """One of its trees left the cache: closed once none is kept and no user is left."""
        with self._use_lock:
            self._kept -= 1
            self._close_if_unused()

    def _close_if_unused(self) -> None:
        if self._users == 0 and self._kept == 0:  # no open uses it, the cache cannot lend it
            self._close_file()

    def bytes_read_by_this_open(self) -> int:
        """Bytes read through this open, and in this thread through the opens whose
        trees it took since it took them."""
        taken = sum(kept.bytes_read_in_this_thread() - at for kept, at in self.borrowed)
        return self.num_requested_bytes + taken

    def __exit__(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        """The open is done (its ``with`` ends, or uproot closes its file, as
        ``ReadOnlyFile.close`` and its ``__del__`` do, perhaps twice): once only, its
        trees' cached arrays go, and it leaves the kept opens it took from and itself."""
        with self._use_lock:
            left, self._left = self._left, True
        if left:
            return
        for tree in self.trees_used:
            if tree.file.array_cache is not None:
                tree.file.array_cache.clear()
        self.trees_used.clear()
        borrowed, self.borrowed = self.borrowed, []
        for kept, _ in borrowed:
            kept._leave()
        self._leave()


class BorrowingFileSource(KeptFileSource):
    """:class:`KeptFileSource` that takes a kept tree but keeps none it reads:
    the open of a member of a group of small files (:mod:`tau3mu.group_work`), which
    reads each file once."""

    keeps_opened_trees = False


class KeptTrees(MutableMapping):
    """uproot ``object_cache`` that keeps the TTrees read through :class:`KeptFileSource`.

    uproot asks it for ``"<file uuid>:<key seek>"``; it answers only with a tree read
    from the file that the asking thread opened last (same path and stat), never with a
    tree of a copy or of an earlier version of the file. That holds because a tree is
    asked for right after its file is opened, in the same thread: as coffea's Runner
    and :func:`tau3mu.inspection.inspect_inputs` do. Asked directly, it lends complete
    trees only; an open that reads some branches asks through a view for its filter
    (:func:`kept_trees_for`). One instance per process (:func:`kept_trees`): pickling it
    (to ship the Runner's options to workers) gives the receiving process its own.
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
        return self.lend(key, None)

    def lend(self, key: str, wanted: Callable[[str], bool] | None) -> TTree:
        """The kept tree ``key`` of the file this thread opened last, for an open that
        reads the branches ``wanted`` accepts (None: all); KeyError where none is kept
        or the kept one lacks some of them (the open reads the tree again)."""
        opener = getattr(_opening, "source", None)
        with self._lock:
            full = self._key(key)
            tree = self._trees[full]
            if not serves(tree, wanted):
                raise KeyError(key)  # read again, with the branches it wants
            self._trees.move_to_end(full)
            kept = tree.file.source
            if (
                opener is not None
                and not opener.done  # an ended open's tree is not lent: none would leave
                and all(kept is not k for k, _ in opener.borrowed)
            ):
                kept.borrow()  # in use until the opener is done
                opener.borrowed.append((kept, kept.bytes_read_in_this_thread()))
        if opener is not None and not opener.done:
            opener.trees_used.append(tree)
        return tree

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(value, TTree):
            return  # directories: uproot reads them again
        use_fast_vectors(value, schema_branch)
        source = getattr(value.file, "source", None)
        if not isinstance(source, KeptFileSource) or not source.keeps_opened_trees:
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
        """Let every kept file go (each closes once no open uses it)."""
        with self._lock:
            trees = list(self._trees.values())
            self._trees.clear()
        for tree in trees:
            tree.file.source.release()


class KeptTreesFor(MutableMapping):
    """uproot ``object_cache`` of an open that reads the branches ``wanted`` accepts:
    this process's :class:`KeptTrees`, lending only trees that hold them
    (:func:`tau3mu.lazytrees.serves`). Pickles as the receiving process's view."""

    def __init__(self, wanted: Callable[[str], bool]) -> None:
        self.wanted = wanted

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return kept_trees_for, (self.wanted,)

    def __getitem__(self, key: str) -> TTree:
        return _KEPT.lend(key, self.wanted)

    def __setitem__(self, key: str, value: Any) -> None:
        _KEPT[key] = value

    def __delitem__(self, key: str) -> None:
        del _KEPT[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_KEPT)

    def __len__(self) -> int:
        return len(_KEPT)


_KEPT = KeptTrees()


def kept_trees() -> KeptTrees:
    """This process's :class:`KeptTrees`."""
    return _KEPT


def kept_trees_for(wanted: Callable[[str], bool]) -> KeptTreesFor:
    """This process's :class:`KeptTrees`, seen by opens that read only the branches
    ``wanted`` accepts."""
    return KeptTreesFor(wanted)


def release(client: Any = None) -> None:
    """Let go of the files this process keeps, and with a Dask ``client`` those its
    workers keep: their trees are read again on the next open, and each file closes once
    no open uses it."""
    _KEPT.release()
    if client is not None:
        # a cluster that died took its files with it; the run's own error tells why
        with contextlib.suppress(Exception):
            client.run(release)
