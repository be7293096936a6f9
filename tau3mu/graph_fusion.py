"""One task per partition: an optimised dask graph's per-partition work run in one go.

After dask-awkward's optimisation a partition's analysis is still hundreds of tasks: its
read, every selection step and one branch per histogram and cutflow entry. On a
distributed cluster each is scheduled on its own: the scheduler's round trips add up,
a worker starts reading the next partition while it waits for the tasks of the one it
read (two partitions' arrays in memory at once), and a partition's arrays may travel to
another worker. :func:`fuse_partitions` rewrites the graph so that all the tasks that
depend on one partition only run as one task (:class:`PartitionRun`), as a Runner chunk
does; it hands on only what the rest of the graph needs (partial histograms and counts,
the snapshot's rows, packed), and the tree reductions that merge partitions are unchanged.

The fusion runs a graph with dask's internal ``dask.core.get`` and mixes plain tuple
tasks into it: :func:`partition_graph` fuses only where dask and dask-awkward are tested
versions (:func:`tau3mu.reading.supported`), else it hands the graph on as it is.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

import awkward as ak
from dask.core import flatten, get, get_deps, toposort
from dask.typing import Key

from tau3mu.reading import supported

__all__ = ["PartitionRun", "fuse_partitions", "partition_graph"]

#: a task that depends on more than one partition
_MIXED = object()
#: a root task of no partition (a constant)
_NONE = None


class PartitionRun:
    """One partition's tasks as one callable: called with the values of ``inputs`` (keys
    outside the partition that its tasks need), it runs ``tasks`` in dask's order,
    dropping each intermediate result once used, and returns the values of ``exported``
    (a tuple, in their order; awkward arrays packed)."""

    def __init__(self, tasks: dict[Key, Any], exported: list[Key], inputs: list[Key]):
        self.tasks = tasks
        self.exported = exported
        self.inputs = inputs

    def __call__(self, *values: Any) -> tuple[Any, ...]:
        known = dict(zip(self.inputs, values, strict=True))
        return tuple(_packed(value) for value in get(self.tasks, self.exported, cache=known))


def _packed(value: Any) -> Any:
    """An awkward array as a packed copy (same values): a selection of a partition's
    rows would otherwise keep, and ship, the buffers of the whole partition."""
    if isinstance(value, ak.Array):
        return ak.to_packed(value)
    return value


def _partition_of(key: Key, deps: set[Key], part: dict[Key, Any]) -> Any:
    """The partition ``key`` belongs to, named by its root's whole key: a root ``(layer,
    i)`` is its own partition (each input layer has its partitions), another root none
    (a constant); else its dependencies' one partition, or :data:`_MIXED`."""
    if not deps:
        partitioned = isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], int)
        return key if partitioned else _NONE
    found = {part[dep] for dep in deps} - {_NONE}
    if len(found) == 1:
        return found.pop()
    return _MIXED if found else _NONE


def fuse_partitions(graph: Mapping[Key, Any], outputs: list[Any], name: str) -> dict:
    """``graph`` (a materialised task graph) with each partition's tasks fused into one
    task ``(name, layer, i)`` (partition ``i`` of input layer ``layer``); ``outputs``: the
    keys that will be asked for (nested lists as ``__dask_keys__`` gives them), kept.
    Every key another task or ``outputs`` needs stays in the graph, as an item of its
    partition's task when fused; a partition none of whose tasks would stay inside one
    task is left as it is."""
    dependencies, dependents = get_deps(graph)
    wanted = set(flatten(outputs))
    part: dict[Key, Any] = {}
    for key in toposort(graph, dependencies=dependencies):
        part[key] = _partition_of(key, dependencies[key], part)
    groups: dict[tuple[Key, int], list[Key]] = {}
    for key, root in part.items():
        if root is not _NONE and root is not _MIXED:
            groups.setdefault(root, []).append(key)
    fused = dict(graph)
    for (layer, index), keys in groups.items():
        members = set(keys)
        exported = [k for k in keys if k in wanted or dependents[k] - members]
        if len(exported) == len(keys):
            continue  # nothing to keep inside one task: as many tasks either way
        inputs = sorted({d for k in keys for d in dependencies[k]} - members, key=str)
        run = PartitionRun({k: graph[k] for k in keys}, exported, inputs)
        for key in keys:
            del fused[key]
        fused[(name, layer, index)] = (run, *inputs)
        for position, key in enumerate(exported):
            fused[key] = (operator.getitem, (name, layer, index), position)
    return fused


def partition_graph(graph: Mapping[Key, Any], outputs: list[Any], name: str) -> dict:
    """The task graph to compute ``outputs`` of ``graph`` with: :func:`fuse_partitions`'s
    where :func:`tau3mu.reading.supported` says yes for dask and dask-awkward, else
    ``graph`` itself (as a dict), computed task by task by dask's own scheduling."""
    if supported("dask") and supported("dask-awkward"):
        return fuse_partitions(graph, outputs, name)
    return dict(graph)
