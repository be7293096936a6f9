"""The dask-awkward graph reads as the Runner reads: the same branches, tau3mu's one-pass
``std::vector`` readers, one opened tree per file and process, and the same results as
with uproot's own readers (tau3mu/graph_source.py)."""

from __future__ import annotations

import operator
import re
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from tau3mu import opentrees, vectors
from tau3mu.chunks import ChunkError
from tau3mu.execution import AnalysisOutput, run_dask_awkward, run_runner
from tau3mu.graph_source import KeptTreeRead, dataset_events
from tau3mu.reading import uproot_options
from tau3mu.schemas import Tau3MuSchema, schema_branch

TREE = "Tree3Mu/ntuple"
LAYOUTS = ["run3", pytest.param("run2", marks=pytest.mark.root)]


def _processor():
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    return DsPhiPiProcessor()


def _assert_identical(a: AnalysisOutput, b: AnalysisOutput) -> None:
    assert a.cutflow == b.cutflow
    assert a.truth == b.truth
    assert set(a.hists) == set(b.hists)
    for name, hist in a.hists.items():
        np.testing.assert_array_equal(hist.values(), b.hists[name].values(), err_msg=name)
        np.testing.assert_array_equal(hist.variances(), b.hists[name].variances(), err_msg=name)
    assert set(a.snapshot) == set(b.snapshot)
    for dataset, snap in a.snapshot.items():
        other = b.snapshot[dataset]
        assert snap.type == other.type
        for field in ak.fields(snap):  # NaN where the Runner has NaN
            np.testing.assert_array_equal(ak.to_numpy(snap[field]), ak.to_numpy(other[field]))


def _branches(out: AnalysisOutput) -> set[str]:
    return {column.rsplit("-", 1)[0] for column in out.metrics["columns"]}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_graph_gives_the_runners_results_reading_its_branches(layout, request, fileset_of):
    """Cutflow, every histogram (bins and variances) and the snapshot bit for bit, and
    the optimised graph reads exactly the branches the Runner reads."""
    fileset = fileset_of(request.getfixturevalue(f"{layout}_dataset"))
    runner = run_runner(fileset, _processor(), chunksize=2500, inspection_cache=False)
    graph = run_dask_awkward(fileset, _processor(), chunksize=2500, inspection_cache=False)
    _assert_identical(graph, runner)
    assert _branches(graph) == _branches(runner)
    assert len(graph.metrics["columns"]) == len(_branches(runner))  # branch names, once each


@pytest.mark.root
def test_the_graph_gives_the_same_results_with_uproots_readers(
    run2_dataset, fileset_of, monkeypatch
):
    """tau3mu's readers change nothing in the output: the graph read with uproot's own
    ``std::vector`` readers (``TAU3MU_VECTORS=uproot``) gives the same, bit for bit."""
    fileset = fileset_of(run2_dataset)
    fast = run_dask_awkward(fileset, _processor(), chunksize=2500, inspection_cache=False)
    monkeypatch.setenv("TAU3MU_VECTORS", "uproot")
    plain = run_dask_awkward(fileset, _processor(), chunksize=2500, inspection_cache=False)
    _assert_identical(fast, plain)


def test_without_private_apis_the_graph_reads_through_uproot(run3_dataset, fileset_of, monkeypatch):
    """``TAU3MU_PRIVATE_APIS=off``: coffea's own events (uproot's reader opens the files),
    the same results and the same branches."""
    from tau3mu.reading import PRIVATE_APIS_ENV

    fileset = fileset_of(run3_dataset)
    fast = run_dask_awkward(fileset, _processor(), chunksize=2500, inspection_cache=False)
    monkeypatch.setenv(PRIVATE_APIS_ENV, "off")
    events = _events(*_first_file(fileset), [[0, 100]], tree="Events")
    assert not isinstance(events.dask.layers[events.name].io_func, KeptTreeRead)
    plain = run_dask_awkward(fileset, _processor(), chunksize=2500, inspection_cache=False)
    _assert_identical(plain, fast)
    assert plain.metrics["columns"] == fast.metrics["columns"]


def _first_file(fileset: dict) -> tuple[str, int]:
    (spec,) = fileset.values()
    path = next(iter(spec["files"]))
    return path, uproot.open(path)["Events"].num_entries


def _events(path: str, entries: int, steps: list[list[int]], tree: str = TREE):
    spec = {
        "files": {path: {"object_path": tree, "steps": steps, "num_entries": entries}},
        "metadata": {"type": "data", "era": "2017"},
    }
    read = uproot_options([path], keep_trees=True)
    return dataset_events("d", spec, Tau3MuSchema, uproot_options([path], graph=True), read)


@pytest.mark.root
def test_partitions_share_one_tree_read_with_tau3mus_vector_readers(run2_files):
    """The partitions of a file read one kept tree (opened once per process), whose
    ``std::vector`` branches are read by :class:`tau3mu.vectors.AsStdVector`."""
    path = run2_files[0]
    entries = uproot.open(path)[TREE].num_entries
    half = entries // 2
    events = _events(path, entries, [[0, half], [half, entries]])
    read = events.dask.layers[events.name].io_func
    assert isinstance(read, KeptTreeRead)
    read = read.project_manually(frozenset({"Triplet2_Mass", "evt"}))
    assert read.columns == {"Triplet2_Mass", "evt"}
    opentrees.release()
    try:
        first = read((path, TREE, 0, half))
        (key,) = list(opentrees.kept_trees())
        kept = opentrees.kept_trees_for(schema_branch)  # as the partitions' opens ask
        tree = kept[key]
        second = read((path, TREE, half, entries))
        assert list(opentrees.kept_trees()) == [key]
        assert kept[key] is tree  # the second partition took the first's tree
        assert isinstance(tree["Triplet2_Mass"].interpretation, vectors.AsStdVector)
        message = f"{path}: entries {half}-{entries + 1} of {TREE} asked for, but it has {entries} entries"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):  # a file that shrank
            read((path, TREE, half, entries + 1))
    finally:
        opentrees.release()
    masses = uproot.open(path)[TREE]["Triplet2_Mass"].array()
    assert len(first) == half
    assert len(second) == entries - half
    assert ak.to_list(ak.concatenate([first.Candidate.mass, second.Candidate.mass])) == ak.to_list(
        masses
    )


@pytest.mark.root
def test_a_corrupt_vector_is_named_on_the_graph_path(corrupt_run2_file):
    """The graph's partition reads the malformed vector with tau3mu's reader (its error
    names file, branch, basket and entry), and the run stops naming the chunk."""
    path, event = corrupt_run2_file
    entries = uproot.open(path)[TREE].num_entries
    events = _events(path, entries, [[0, entries]])
    read = events.dask.layers[events.name].io_func.project_manually(frozenset({"Triplet2_Mass"}))
    try:
        with pytest.raises(uproot.deserialization.DeserializationError) as info:
            read((path, TREE, 0, entries))
    finally:
        opentrees.release()
    message = str(info.value)
    assert Path(path).name in message
    assert "branch 'Triplet2_Mass', basket " in message
    assert f"entry {event} is not a std::vector of 8-byte numbers" in message

    fileset = {"d": {"files": {path: TREE}, "metadata": {"type": "data"}}}
    with pytest.raises(ChunkError) as stopped:
        run_dask_awkward(fileset, _processor(), chunksize=10**6, inspection_cache=False)
    assert str(stopped.value).startswith(f"{path} entries 0-{entries}: ")
    assert f"entry {event} is not a std::vector of 8-byte numbers" in str(stopped.value)


def _outputs(events) -> dict:
    """Sums, counts and selected rows of ``events`` (a dask-awkward array of x and y)."""
    import dask_awkward as dak

    selected = events[events.x > 4]  # shared by every output: stays inside the run
    doubled = selected.x * 2
    return {
        "sum": dak.sum(doubled),
        "count": dak.num(selected.y, axis=0),
        "elements": dak.sum(dak.num(selected.y, axis=1)),
        "rows": doubled[doubled > 20] + 1,
    }


def _two_inputs() -> dict:
    """The same analysis of two input collections of 3 partitions each (two datasets)."""
    import dask_awkward as dak

    first = ak.Array([{"x": float(i), "y": [i, i + 1]} for i in range(30)])
    second = ak.Array([{"x": float(i), "y": [i]} for i in range(40, 70)])
    return {
        "a": _outputs(dak.from_awkward(first, npartitions=3)),
        "b": _outputs(dak.from_awkward(second, npartitions=3)),
    }


def _computed(graph_of, outputs):
    """``outputs`` computed from the optimised graph ``graph_of(graph, keys)`` returns."""
    import dask
    from dask.base import unpack_collections

    collections, repack = unpack_collections(outputs)
    optimised = dask.optimize(*collections)
    keys = [c.__dask_keys__() for c in optimised]
    graph = dict(optimised[0].__dask_graph__())
    computed = graph_of(graph, keys)
    results = dask.get(computed, keys)
    finals = [
        f(r, *a)
        for r, (f, a) in zip(results, (c.__dask_postcompute__() for c in optimised), strict=True)
    ]
    (got,) = repack(finals)
    return graph, computed, got


def _runs(graph: dict) -> dict:
    from tau3mu.graph_fusion import PartitionRun

    return {
        k: v for k, v in graph.items() if isinstance(v, tuple) and isinstance(v[0], PartitionRun)
    }


def test_each_partition_runs_as_one_task_with_the_same_results():
    """fuse_partitions: one task per partition of each input collection, only what the
    rest of the graph needs handed on, and the same values as the graph it was made
    from."""
    import dask

    from tau3mu.graph_fusion import fuse_partitions

    outputs = _two_inputs()
    graph, fused, got = _computed(lambda g, k: fuse_partitions(g, k, "partition"), outputs)
    runs = _runs(fused)
    layers = sorted({key[0] for key in graph if not isinstance(key, str) and key[1] == 0})
    roots = sorted({key[1] for key in runs})
    assert len(roots) == 2  # one input collection each
    assert set(roots) <= set(layers)
    assert sorted(runs) == [("partition", root, i) for root in roots for i in range(3)]
    for (_, root, i), (run, *_) in runs.items():  # each reads its one partition only
        assert [k for k in run.tasks if _is_root(graph, k)] == [(root, i)]
    inside = {key for task in runs.values() for key in task[0].tasks}
    assert len(inside) > len(runs)  # a partition's read and what follows it
    for key in inside:  # outside its run, a task of a partition is at most an item of it
        assert key not in fused or fused[key][0] is operator.getitem
    assert len(fused) < len(graph)

    (expected,) = dask.compute(outputs)
    assert got["a"]["sum"] == expected["a"]["sum"] == 2 * sum(range(5, 30))
    assert got["b"]["sum"] == expected["b"]["sum"] == 2 * sum(range(40, 70))
    assert got["a"]["count"] == expected["a"]["count"] == 25
    assert got["a"]["elements"] == expected["a"]["elements"] == 50
    assert got["b"]["elements"] == expected["b"]["elements"] == 30
    for name in "ab":
        assert ak.to_list(got[name]["rows"]) == ak.to_list(expected[name]["rows"])


def _is_root(graph: dict, key) -> bool:
    """Whether ``key`` is a task of ``graph`` that depends on no other task."""
    from dask.core import get_dependencies

    return not get_dependencies(graph, key)


def test_without_private_apis_partitions_are_not_fused(monkeypatch):
    """``TAU3MU_PRIVATE_APIS=off`` (what an untested dask or dask-awkward gets): the graph
    is computed as it is, task by task, with the same results as fused."""
    from tau3mu.graph_fusion import partition_graph
    from tau3mu.reading import PRIVATE_APIS_ENV

    _, fused, fast = _computed(lambda g, k: partition_graph(g, k, "partition"), _two_inputs())
    assert len(_runs(fused)) == 6
    monkeypatch.setenv(PRIVATE_APIS_ENV, "off")
    graph, plain, got = _computed(lambda g, k: partition_graph(g, k, "partition"), _two_inputs())
    assert plain == graph
    assert not _runs(plain)
    for name in "ab":
        for output in ("sum", "count", "elements"):
            assert got[name][output] == fast[name][output]
        assert ak.to_list(got[name]["rows"]) == ak.to_list(fast[name]["rows"])


@pytest.mark.parametrize("mode", ["runner", "dask-awkward"])
def test_files_kept_by_a_failed_inspection_are_released(mode, run3_files, tmp_path):
    """A bad file (no ``--skip-bad-files``) stops the run at the inspection, and the
    files the inspection kept open in this process are closed, on both paths."""
    from tau3mu.errors import Tau3MuError
    from tau3mu.execution import run_runner

    run = run_runner if mode == "runner" else run_dask_awkward

    bad = tmp_path / "not_root.root"
    bad.write_bytes(b"not a ROOT file" * 100)
    files = dict.fromkeys(run3_files, "Events") | {str(bad): "Events"}
    fileset = {"d": {"files": files, "metadata": {"type": "data"}}}
    opentrees.release()
    with pytest.raises(Tau3MuError, match=r"not_root\.root"):
        run(fileset, _processor(), chunksize=2500, inspection_cache=False)
    assert not list(opentrees.kept_trees())


def _tasks_on(dask_scheduler) -> int:
    """The number of tasks a distributed scheduler holds (run on the scheduler)."""
    return len(dask_scheduler.tasks)


@pytest.mark.root
def test_a_failed_graph_is_cancelled_on_the_cluster(corrupt_run2_file, dask_client):
    """On a cluster, the failed graph's tasks are cancelled before its chunks are probed:
    while the error (whose traceback holds the graph's futures) is alive, the scheduler
    holds none of them."""
    path, event = corrupt_run2_file
    fileset = {"d": {"files": {path: TREE}, "metadata": {"type": "data"}}}
    before = dask_client.run_on_scheduler(_tasks_on)  # other tests' on a shared client
    with pytest.raises(ChunkError) as stopped:
        run_dask_awkward(
            fileset, _processor(), client=dask_client, chunksize=10**6, inspection_cache=False
        )
    assert f"entry {event} is not a std::vector of 8-byte numbers" in str(stopped.value)
    # the cancel is asynchronous: the scheduler lets go of the tasks soon, not at once
    deadline = time.monotonic() + 30
    while dask_client.run_on_scheduler(_tasks_on) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dask_client.run_on_scheduler(_tasks_on) == before
