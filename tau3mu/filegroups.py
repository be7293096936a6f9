"""Small files of one dataset analysed together: one unit of work, one processor call.

coffea's Runner makes at least one chunk of every file, and every chunk pays the
processor's fixed cost (NanoEvents typing, ~550 awkward calls, histograms booked and
merged) however few events it holds. The original analysis's ``input.json`` lists 143
files of a few thousand events each, so that fixed cost, not the events, set its wall
time. Here consecutive chunks of one dataset (same tree, same metadata) that together
hold at most the chunk size are one :class:`FileGroup`: each member file is opened and
read as its own chunk would read it (the same uproot options: kept trees, lazy trees,
one-pass vectors), the members' branches are joined into one NanoEvents array
(:func:`group_events`) and the processor runs once.

A group is only a faster way to the same output: its members must type the schema's
branches alike (else :class:`GroupLayoutError`), and a group that fails for any reason
is run again member by member (:func:`tau3mu.chunks.retry_chunk`), so that a bad chunk is
named, retried or skipped on its own, as without groups. A group's checkpoint stands for
the group (:meth:`FileGroup.metadata`); a rerun that forms other groups computes them
again.

Joining the members reaches into coffea's NanoEvents internals (its ``UprootSourceMapping``
and ``NanoEventsFactory._from_mapping``): groups are formed only where
:func:`tau3mu.reading.supported` allows coffea's private parts, and
``TAU3MU_FILE_GROUPS=off`` runs one chunk per file as coffea does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
from coffea.processor.executor import WorkItem

__all__ = [
    "FILE_GROUPS_ENV",
    "MAX_GROUP_FILES",
    "UNITS_PER_WORKER",
    "FileGroup",
    "GroupLayoutError",
    "files_per_group",
    "group_chunks",
    "group_events",
    "grouping_enabled",
    "joined",
    "run_group",
]

#: ``off`` runs one chunk per file, as coffea's Runner does
FILE_GROUPS_ENV = "TAU3MU_FILE_GROUPS"
#: files a group holds at most: each is open (a file handle, or an XRootD server's) while
#: the group runs
MAX_GROUP_FILES = 64
#: units of work per worker that grouping leaves where the files allow (for balance)
UNITS_PER_WORKER = 2


class GroupLayoutError(TypeError):
    """The files of a group do not type the schema's branches alike."""


@dataclass(frozen=True)
class FileGroup:
    """Consecutive chunks (coffea ``WorkItem``) of one dataset's files, analysed as one."""

    members: tuple[WorkItem, ...]

    @property
    def dataset(self) -> str:
        return self.members[0].dataset

    @property
    def treename(self) -> str:
        return self.members[0].treename

    def __len__(self) -> int:
        return sum(len(member) for member in self.members)

    def fileuuid(self) -> bytes:
        """16 bytes that stand for the members: their files' UUIDs and entry ranges."""
        digest = hashlib.sha256()
        for member in self.members:
            uuid = member.fileuuid
            digest.update(uuid if isinstance(uuid, bytes) else str(uuid).encode())
            digest.update(f":{member.entrystart}-{member.entrystop};".encode())
        return digest.digest()[:16]

    def metadata(self) -> dict[str, Any]:
        """The events' metadata, as coffea gives a chunk's: the dataset's metadata, the
        first member's file (``files``: every member's) and the group's entries
        ``0``-``len(self)``; the checkpoint of the group is keyed by it."""
        first = self.members[0]
        return {
            "dataset": self.dataset,
            "filename": first.filename,
            "treename": self.treename,
            "entrystart": 0,
            "entrystop": len(self),
            "fileuuid": self.fileuuid().hex(),
            **(first.usermeta or {}),
            "files": [member.filename for member in self.members],
        }


def files_per_group(chunks: int, workers: int) -> int:
    """The most files a group may hold so that ``chunks`` chunks still make at least
    :data:`UNITS_PER_WORKER` units of work per worker where they can (one worker: no
    limit but :data:`MAX_GROUP_FILES`).

    >>> files_per_group(143, 1), files_per_group(143, 2), files_per_group(128, 16)
    (64, 36, 4)
    """
    if workers <= 1:
        return MAX_GROUP_FILES
    return max(1, min(MAX_GROUP_FILES, -(-chunks // (UNITS_PER_WORKER * workers))))


def grouping_enabled() -> bool:
    """Whether small files are grouped: coffea's private parts are allowed
    (:func:`tau3mu.reading.supported`) and ``$TAU3MU_FILE_GROUPS`` is not ``off``."""
    from tau3mu.reading import supported

    off = os.environ.get(FILE_GROUPS_ENV, "").strip().lower() in ("off", "0", "no", "false")
    return supported("coffea") and not off


def _same_unit(a: WorkItem, b: WorkItem) -> bool:
    return (a.dataset, a.treename, a.usermeta, a.preload) == (
        b.dataset,
        b.treename,
        b.usermeta,
        b.preload,
    )


def group_chunks(
    chunks: Iterable[WorkItem], chunksize: int, max_files: int = MAX_GROUP_FILES
) -> list[WorkItem | FileGroup]:
    """``chunks`` with each run of consecutive chunks of one dataset (same tree, metadata
    and preloads) that together hold at most ``chunksize`` events, and are at most
    ``max_files``, made one :class:`FileGroup`; a chunk left alone stays as it is. The
    order is kept.

    >>> from coffea.processor.executor import WorkItem
    >>> items = [WorkItem("d", f"{k}.root", "t", 0, 400, b"") for k in range(5)]
    >>> [len(unit) for unit in group_chunks(items, 1000)]
    [800, 800, 400]
    """
    units: list[WorkItem | FileGroup] = []
    run: list[WorkItem] = []
    events = 0
    for chunk in chunks:
        fits = events + len(chunk) <= chunksize and len(run) < max_files
        if run and (not fits or not _same_unit(run[0], chunk)):
            units.append(run[0] if len(run) == 1 else FileGroup(tuple(run)))
            run, events = [], 0
        run.append(chunk)
        events += len(chunk)
    if run:
        units.append(run[0] if len(run) == 1 else FileGroup(tuple(run)))
    return units


def _flat_data(layout: Any, parameters: Any) -> Any:
    """The numpy data of a ``NumpyArray`` layout with ``parameters``, else None."""
    if isinstance(layout, ak.contents.NumpyArray) and layout.parameters == parameters:
        return np.asarray(layout.data)
    return None


def joined(parts: list[Any]) -> Any:
    """The arrays ``parts`` (one branch of several files: the same type) one after the
    other, as ``ak.concatenate`` gives them. Numbers and lists of numbers are joined
    with numpy: ak.concatenate costs ~0.09 ms per part for a list array, about 10 times
    more, and a group joins each branch of tens of files. Anything else goes to
    ak.concatenate.

    >>> joined([ak.Array([[1, 2], []]), ak.Array([[3]])]).tolist()
    [[1, 2], [], [3]]
    """
    layouts = [part.layout for part in parts]
    first = layouts[0]
    flat = [_flat_data(layout, first.parameters) for layout in layouts]
    if all(data is not None for data in flat):
        return ak.Array(ak.contents.NumpyArray(np.concatenate(flat), parameters=first.parameters))
    if not all(
        isinstance(layout, ak.contents.ListOffsetArray) and layout.parameters == first.parameters
        for layout in layouts
    ):
        return ak.concatenate(parts)
    inner = first.content.parameters
    contents = [_flat_data(layout.content, inner) for layout in layouts]
    if any(data is None for data in contents):
        return ak.concatenate(parts)
    offsets, values, base = [], [], 0
    for layout, content in zip(layouts, contents, strict=True):
        own = np.asarray(layout.offsets, dtype=np.int64)
        offsets.append(own[:-1] - own[0] + base)
        values.append(content[own[0] : own[-1]])
        base += int(own[-1] - own[0])
    offsets.append(np.array([base], dtype=np.int64))
    content = ak.contents.NumpyArray(np.concatenate(values), parameters=inner)
    index = ak.index.Index64(np.concatenate(offsets))
    return ak.Array(ak.contents.ListOffsetArray(index, content, parameters=first.parameters))


class _GroupBranch:
    """One branch of every member, read as one array over the group's entries; an array
    once read is kept in ``joined`` (NanoEvents asks for a list branch twice: offsets,
    then content)."""

    def __init__(
        self,
        name: str,
        branches: list[Any],
        ranges: list[tuple[int, int]],
        joined: dict[tuple[str, int, int], Any],
    ) -> None:
        self.name = name
        self.branches = branches
        self.ranges = ranges
        self.joined = joined
        self.interpretation = branches[0].interpretation
        self.typename = branches[0].typename

    def array(
        self, _interpretation: Any = None, *, entry_start: int, entry_stop: int, **_: Any
    ) -> Any:
        """Entries ``entry_start``-``entry_stop`` of the group (0 is the first member's
        first entry), each member's part read with its own tree's interpretation."""
        key = (self.name, entry_start, entry_stop)
        if key not in self.joined:
            self.joined[key] = self._read(entry_start, entry_stop)
        return self.joined[key]

    def _read(self, entry_start: int, entry_stop: int) -> Any:
        parts, offset = [], 0
        for branch, (start, stop) in zip(self.branches, self.ranges, strict=True):
            low, high = max(entry_start - offset, 0), min(entry_stop - offset, stop - start)
            if low < high:
                parts.append(branch.array(entry_start=start + low, entry_stop=start + high))
            offset += stop - start
        if not parts:  # an empty range: the first member's, typed as the others
            first = self.ranges[0][0]
            return self.branches[0].array(entry_start=first, entry_stop=first)
        return parts[0] if len(parts) == 1 else joined(parts)


class _GroupTree:
    """The column source NanoEvents reads a group from: ``group[name]`` is a
    :class:`_GroupBranch` of the members' trees."""

    def __init__(self, trees: list[Any], ranges: list[tuple[int, int]]) -> None:
        self.trees = trees
        self.ranges = ranges
        self.joined: dict[tuple[str, int, int], Any] = {}

    def __contains__(self, name: str) -> bool:
        return all(name in tree for tree in self.trees)

    def __getitem__(self, name: str) -> _GroupBranch:
        return _GroupBranch(name, [tree[name] for tree in self.trees], self.ranges, self.joined)


def _branch_types(tree: Any, iteritems_options: dict[str, Any]) -> dict[str, str]:
    return {name: branch.typename for name, branch in tree.iteritems(**iteritems_options)}


def group_events(
    trees: list[Any],
    group: FileGroup,
    schema: Any,
    iteritems_options: dict[str, Any],
    buffer_cache: Any = None,
    access_log: list[Any] | None = None,
) -> Any:
    """The members' entries as one virtual NanoEvents array of ``schema``, typed from the
    first member's tree; ``trees``: the members' open trees, in order.

    Raises :class:`GroupLayoutError` when a member types the branches NanoEvents reads
    (``iteritems_options``) otherwise than the first.
    """
    from coffea.nanoevents import NanoEventsFactory
    from coffea.nanoevents.mapping.uproot import TrivialUprootOpener, UprootSourceMapping

    types = _branch_types(trees[0], iteritems_options)
    for tree, member in zip(trees[1:], group.members[1:], strict=True):
        if _branch_types(tree, iteritems_options) != types:
            raise GroupLayoutError(
                f"{member.filename}: other branches than {group.members[0].filename}"
            )
    ranges = [(member.entrystart, member.entrystop) for member in group.members]
    key = (group.fileuuid().hex(), trees[0].object_path, f"0-{len(group)}")
    mapping = UprootSourceMapping(
        TrivialUprootOpener({}, {}),  # never asked: the column source is given below
        0,
        len(group),
        cache={},
        access_log=access_log,
        virtual=True,
        buffer_cache=buffer_cache,
    )
    mapping.preload_column_source(key[0], key[1], _GroupTree(trees, ranges))
    form = mapping._extract_base_form(trees[0], iteritems_options=iteritems_options)
    form["typenames"] = trees[0].typenames()
    factory = NanoEventsFactory._from_mapping(
        mapping, key, form, schema, group.metadata(), mode="virtual"
    )
    return factory.events()


def _processor(processor_instance: Any) -> Any:
    """The processor as coffea ships it: itself, or lz4-compressed cloudpickle bytes."""
    if isinstance(processor_instance, bytes):
        import cloudpickle
        import lz4.frame

        return cloudpickle.loads(lz4.frame.decompress(processor_instance))
    return processor_instance


@contextlib.contextmanager
def _open_trees(group: FileGroup, timeout: int) -> Iterator[list[Any]]:
    """The members' trees, closed at the end. They are read as a chunk reads its file
    (:func:`tau3mu.reading.uproot_options`), but not kept open for later chunks: a group
    may hold more files than a process keeps (:data:`tau3mu.opentrees.MAX_FILES`)."""
    import uproot

    from tau3mu.reading import uproot_options

    def options(path: str) -> dict[str, Any]:  # the group keeps the joined arrays
        return {**uproot_options([path], timeout=timeout), "array_cache": None}

    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(uproot.open({m.filename: None}, **options(m.filename)))[m.treename]
            for m in group.members
        ]


def run_group(
    format: str,
    xrootdtimeout: int,
    schema: Any,
    use_dataframes: bool,
    savemetrics: bool,
    item: Any,
    processor_instance: Any,
    uproot_options: dict[str, Any],
    iteritems_options: dict[str, Any],
    checkpointer: Any,
    cache_function: Any,
) -> dict[str, Any]:
    """coffea's ``Runner._work_function`` for a :class:`FileGroup` (same arguments; the
    ROOT format, no dataframes; the files are opened as :func:`_open_trees` says, with
    ``uproot_options``' timeout): the processor's output, its metrics with
    ``savemetrics``, and the members as ``processed``; loaded from and saved to the
    ``checkpointer`` as one chunk. Errors propagate unwrapped (the caller runs the
    members one by one)."""
    from coffea.nanoevents.util import key_to_tuple

    from tau3mu.reading import supported

    if not supported("coffea"):  # this process's coffea, which may not be the client's
        raise GroupLayoutError("coffea's NanoEvents internals are not the tested version's")
    if processor_instance == "heavy":
        item, processor_instance = item
    processor_instance = _processor(processor_instance)
    group: FileGroup = item
    metadata = group.metadata()
    if checkpointer is not None:
        saved = checkpointer.load(metadata, processor_instance)
        if saved is not None:
            return dict(saved)
    timeout = uproot_options.get("timeout", xrootdtimeout)
    materialized: list[Any] = []
    with _open_trees(group, timeout) as trees:
        events = group_events(
            trees, group, schema, iteritems_options, cache_function(), materialized
        )
        tic = time.time()
        process = getattr(processor_instance, "process", processor_instance)
        output = process(events)
        toc = time.time()
        read = sum(tree.file.source.num_requested_bytes for tree in trees)
    out: dict[str, Any] = {"out": output, "processed": set(group.members)}
    if savemetrics:
        out["metrics"] = {
            "bytesread": read,
            "columns": {f"{a.branch}-{key_to_tuple(a.buffer_key)[3]}" for a in materialized},
            "entries": len(events),
            "processtime": toc - tic,
        }
    if checkpointer is not None:
        checkpointer.save(out, metadata, processor_instance)
    return out
