"""The dask-awkward graph's input: NanoEvents read as the Runner reads its chunks.

coffea builds the graph's events with ``uproot.dask``, whose reader opens the file again
for every partition with uproot's own options and no object cache: every partition pays
for the tree's metadata (every branch of the ntuple) and reads
``std::vector`` branches with uproot's readers. :class:`KeptTreeRead` is a dask-awkward
input function (``dask_awkward.from_map``) around that very reader: the form, the
NanoEvents mapping and the column projection stay uproot's and coffea's (the column
optimisation still picks the branches), while the tree it reads from is opened with
:func:`tau3mu.reading.uproot_options` (kept trees, one-pass vector readers, the chunk's
array cache, XRootD options), as the Runner's chunks are.

:func:`dataset_events` builds one dataset's events with it; :func:`graph_columns` names
the branches an optimised graph reads.
"""

from __future__ import annotations

from typing import Any

import uproot

from tau3mu.reading import prepare_process, supported

__all__ = ["KeptTreeRead", "dataset_events", "graph_columns"]


class KeptTreeRead:
    """dask-awkward input function: one partition ``(path, tree, start, stop)`` read by
    uproot's NanoEvents reader ``reader`` (from ``uproot.dask``) out of a tree opened
    with ``options`` (:func:`tau3mu.reading.uproot_options`).

    It implements dask-awkward's mocking and column-projection protocols by handing them
    to ``reader``, so the optimised graph reads the branches ``reader`` would.
    """

    def __init__(self, reader: Any, options: dict[str, Any]) -> None:
        self.reader = reader
        self.options = options

    @property
    def columns(self) -> frozenset[str]:
        """The branches a partition reads (after projection: only the needed ones)."""
        return frozenset(self.reader.common_keys)

    def __call__(self, partition: tuple[str, str, int, int]) -> Any:
        """The partition's events. Raises ValueError, naming the file, when its entries
        ``start``-``stop`` are not within the tree (a file that shrank since it was
        inspected)."""
        path, tree_path, start, stop = partition
        prepare_process()
        with uproot.open({path: None}, **self.options) as directory:
            tree = directory[tree_path]
            if not 0 <= start <= stop <= tree.num_entries:
                raise ValueError(
                    f"{path}: entries {start}-{stop} of {tree_path} asked for, "
                    f"but it has {tree.num_entries} entries"
                )
            array, _ = self.reader.read_tree(tree, start, stop)
        return array

    def mock(self) -> Any:
        return self.reader.mock()

    def mock_empty(self, backend: Any) -> Any:
        return self.reader.mock_empty(backend)

    def prepare_for_projection(self) -> tuple[Any, Any, Any]:
        return self.reader.prepare_for_projection()

    def project(self, report: Any, state: Any) -> KeptTreeRead:
        return KeptTreeRead(self.reader.project(report=report, state=state), self.options)

    def project_manually(self, columns: frozenset[str]) -> KeptTreeRead:
        return KeptTreeRead(self.reader.project_manually(columns), self.options)

    def necessary_columns(self, report: Any, state: Any) -> frozenset[str]:
        return self.reader.necessary_columns(report=report, state=state)


def _kept_tree_reading() -> bool:
    """Whether the graph reads with :class:`KeptTreeRead`: uproot's reader's ``read_tree``
    and dask-awkward's input layers are used only where both are tested versions."""
    return supported("uproot") and supported("dask-awkward")


def _partitions(files: dict[str, Any]) -> tuple[list[tuple[str, str, int, int]], tuple[int, ...]]:
    """The partitions of a dataset's steps, and their divisions (as ``uproot.dask``)."""
    partitions = []
    divisions = [0]
    for path, info in files.items():
        for start, stop in info["steps"]:
            partitions.append((path, info["object_path"], start, stop))
            divisions.append(divisions[-1] + stop - start)
    return partitions, tuple(divisions)


def dataset_events(
    name: str,
    spec: dict[str, Any],
    schema: Any,
    graph_options: dict[str, Any],
    read_options: dict[str, Any],
) -> Any:
    """One dataset's NanoEvents as a dask-awkward array read by :class:`KeptTreeRead`.

    ``spec``: the dataset's files with their steps (``coffea.dataset_tools.preprocess``'s
    form) and metadata; ``schema``: the NanoEvents schema; ``graph_options``: uproot's
    options for ``uproot.dask`` (which opens the first file here to learn the form);
    ``read_options``: the options partitions open their files with. Its metadata are the
    dataset's, with ``dataset`` set to ``name``, as ``coffea.dataset_tools.apply_to_fileset``
    gives them. Where :func:`tau3mu.reading.supported` says no for uproot (its reader's
    ``read_tree`` is not a documented API) or for dask-awkward (its input layer's
    ``io_func`` and the array's ``_meta``), the events are coffea's own.
    """
    import dask_awkward as dak
    from coffea.nanoevents import NanoEventsFactory

    metadata = {**(spec.get("metadata") or {})}
    metadata.setdefault("dataset", name)
    files = {
        path: {"object_path": info["object_path"], "steps": info["steps"]}
        for path, info in spec["files"].items()
    }
    uproot_events = NanoEventsFactory.from_root(
        files,
        metadata=metadata,
        schemaclass=schema,
        uproot_options=graph_options,
        mode="dask",
    ).events()
    if not _kept_tree_reading():
        return uproot_events  # uproot's own reading (an untested version, or switched off)
    reader = uproot_events.dask.layers[uproot_events.name].io_func
    partitions, divisions = _partitions(spec["files"])
    token = uproot_events.name.rsplit("-", 1)[-1]
    events: Any = dak.from_map(
        KeptTreeRead(reader, read_options),
        partitions,
        divisions=divisions,
        label="from-tau3mu",
        token=token,
    )
    events._meta.attrs["@original_array"] = events  # as coffea's own dask events
    return events


def graph_columns(graph: Any, collections: list[Any]) -> list[str]:
    """The branches read to compute ``collections``, sorted; ``graph``: their optimised
    graph (a ``HighLevelGraph``). With :class:`KeptTreeRead` (see :func:`dataset_events`),
    its input layers' projected columns; on uproot's own reading, what the public
    ``dask_awkward.report_necessary_columns`` gives for ``collections``."""
    import dask_awkward as dak

    if _kept_tree_reading():
        reads = [getattr(layer, "io_func", None) for layer in graph.layers.values()]
        kept = [read for read in reads if isinstance(read, KeptTreeRead)]
        return sorted(set().union(*(read.columns for read in kept)))
    report = dak.report_necessary_columns(*collections)
    return sorted({column for columns in report.values() for column in columns or ()})
