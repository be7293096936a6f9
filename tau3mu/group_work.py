"""Reading and running a :class:`~tau3mu.filegroups.FileGroup`: its files' branches joined
into one NanoEvents array (:func:`group_events`), the processor run once on it
(:func:`run_group`, the Runner's work function for a group).

Each member file is opened as its own chunk would be (lazy trees, one-pass vectors); with
lazy trees, the tree of a file the inspection just opened in this process is taken, not
deserialised again (:func:`tau3mu.reading.group_member_options`). Each branch is read
from every member, past the files' array caches, and joined (:func:`joined`) the first
time NanoEvents asks for it.
This reaches into coffea's NanoEvents internals (its ``UprootSourceMapping`` and
``NanoEventsFactory._from_mapping``): :func:`run_group` refuses to run where
:func:`tau3mu.reading.supported` does not allow coffea's private parts, and its caller
then runs the members one by one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import awkward as ak
import numpy as np

from tau3mu.filegroups import FileGroup, GroupLayoutError, UntestedCoffeaError

__all__ = ["group_events", "joined", "run_group"]


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
                parts.append(
                    branch.array(entry_start=start + low, entry_stop=start + high, array_cache=None)
                )
            offset += stop - start
        if not parts:  # an empty range: the first member's, typed as the others
            first = self.ranges[0][0]
            return self.branches[0].array(entry_start=first, entry_stop=first, array_cache=None)
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
def _open_trees(
    group: FileGroup, timeout: int, branches: Callable[[str], bool]
) -> Iterator[tuple[list[Any], list[Any]]]:
    """The members' trees, read for ``branches``, and the sources of their opens, closed
    at the end (:func:`tau3mu.reading.group_member_options`): with lazy trees, a local
    file's tree that this process keeps (the inspection's) is taken, not deserialised
    again; the others are read once."""
    import uproot

    from tau3mu.reading import group_member_options

    with contextlib.ExitStack() as stack:
        trees, sources = [], []
        for member in group.members:  # a kept tree is served right after its file's open
            options = group_member_options(member.filename, timeout=timeout, branches=branches)
            opened = stack.enter_context(uproot.open({member.filename: None}, **options))
            trees.append(opened[member.treename])
            sources.append(opened.file.source)
        yield trees, sources


def _bytes_read(source: Any) -> int:
    """Bytes read through an open (and, for one that took a kept tree, by this thread
    through the kept open since)."""
    own = getattr(source, "bytes_read_by_this_open", None)
    return int(own()) if own is not None else int(source.num_requested_bytes)


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
    ``uproot_options``' timeout, for the branches ``iteritems_options`` types): the
    processor's output, its metrics with ``savemetrics``, and the members as
    ``processed``; loaded from and saved to the ``checkpointer`` as one chunk. Raises
    :class:`UntestedCoffeaError` where this process's coffea is untested; errors
    propagate unwrapped (the caller runs the members one by one)."""
    from coffea.nanoevents.util import key_to_tuple

    from tau3mu.reading import supported
    from tau3mu.schemas import schema_branch

    if not supported("coffea"):  # this process's coffea, which may not be the client's
        raise UntestedCoffeaError("coffea's NanoEvents internals are not a tested version's")
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
    branches = iteritems_options.get("filter_name", schema_branch)  # what NanoEvents types
    with _open_trees(group, timeout, branches) as (trees, sources):
        events = group_events(
            trees, group, schema, iteritems_options, cache_function(), materialized
        )
        tic = time.time()
        process = getattr(processor_instance, "process", processor_instance)
        output = process(events)
        toc = time.time()
        read = sum(_bytes_read(source) for source in sources)
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
