"""The dask-awkward graph reads as the Runner reads: the same branches, tau3mu's one-pass
``std::vector`` readers, one opened tree per file and process, and the same results as
with uproot's own readers (tau3mu/graph_source.py)."""

from __future__ import annotations

import operator
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
from tau3mu.schemas import Tau3MuSchema

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
        second = read((path, TREE, half, entries))
        assert len(opentrees.kept_trees()) == 1  # the second partition took the first's tree
        (key,) = list(opentrees.kept_trees())
        tree = opentrees.kept_trees()[key]
        assert isinstance(tree["Triplet2_Mass"].interpretation, vectors.AsStdVector)
    finally:
        opentrees.release()
    masses = uproot.open(path)[TREE]["Triplet2_Mass"].array()
    assert len(first) == half
    assert len(second) == entries - half
    assert ak.to_list(ak.concatenate([first.Candidate.mass, second.Candidate.mass])) == ak.to_list(
        masses
    )


@pytest.fixture(scope="module")
def corrupt_vector_run2(run2_files, tmp_path_factory) -> tuple[str, int]:
    """A Run 2 file rewritten uncompressed by ROOT, one event's candidate masses made to
    claim one element more than they hold (the file opens and inspects fine)."""
    ROOT = pytest.importorskip("ROOT")
    path = str(tmp_path_factory.mktemp("corrupt_graph") / "corrupt_graph.root")
    source = ROOT.TFile.Open(run2_files[0])
    out = ROOT.TFile(path, "RECREATE", "", 0)
    out.mkdir("Tree3Mu").cd()
    source.Get(TREE).CloneTree(-1).Write()  # not "fast": baskets re-streamed, uncompressed
    out.Close()
    source.Close()
    masses = uproot.open(path)[TREE]["Triplet2_Mass"].array(library="np")
    raw = bytearray(Path(path).read_bytes())
    for event in range(len(masses) // 2, len(masses)):
        body = len(masses[event]).to_bytes(4, "big") + masses[event].astype(">f8").tobytes()
        if len(masses[event]) and raw.count(body) == 1:
            at = raw.find(body)
            raw[at : at + 4] = (len(masses[event]) + 1).to_bytes(4, "big")
            Path(path).write_bytes(bytes(raw))
            return path, event
    pytest.fail("no event with unique candidate-mass bytes")


@pytest.mark.root
def test_a_corrupt_vector_is_named_on_the_graph_path(corrupt_vector_run2):
    """The graph's partition reads the malformed vector with tau3mu's reader (its error
    names file, branch, basket and entry), and the run stops naming the chunk."""
    path, event = corrupt_vector_run2
    entries = uproot.open(path)[TREE].num_entries
    events = _events(path, entries, [[0, entries]])
    read = events.dask.layers[events.name].io_func.project_manually(frozenset({"Triplet2_Mass"}))
    try:
        with pytest.raises(uproot.deserialization.DeserializationError) as info:
            read((path, TREE, 0, entries))
    finally:
        opentrees.release()
    message = str(info.value)
    assert "corrupt_graph.root" in message
    assert "branch 'Triplet2_Mass', basket " in message
    assert f"entry {event} is not a std::vector of 8-byte numbers" in message

    fileset = {"d": {"files": {path: TREE}, "metadata": {"type": "data"}}}
    with pytest.raises(ChunkError) as stopped:
        run_dask_awkward(fileset, _processor(), chunksize=10**6, inspection_cache=False)
    assert str(stopped.value).startswith(f"{path} entries 0-{entries}: ")
    assert f"entry {event} is not a std::vector of 8-byte numbers" in str(stopped.value)


def test_each_partition_runs_as_one_task_with_the_same_results():
    """fuse_partitions: one task per partition, only what the rest of the graph needs
    handed on, and the same values as the graph it was made from."""
    import dask
    import dask_awkward as dak
    from dask.base import unpack_collections

    from tau3mu.graph_fusion import PartitionRun, fuse_partitions

    array = ak.Array([{"x": float(i), "y": [i, i + 1]} for i in range(30)])
    events = dak.from_awkward(array, npartitions=3)
    selected = events[events.x > 4]  # shared by every output: stays inside the run
    doubled = selected.x * 2
    outputs = {
        "sum": dak.sum(doubled),
        "count": dak.num(selected.y, axis=0),
        "elements": dak.sum(dak.num(selected.y, axis=1)),
        "rows": doubled[doubled > 20] + 1,
    }
    collections, repack = unpack_collections(outputs)
    optimised = dask.optimize(*collections)
    keys = [c.__dask_keys__() for c in optimised]
    graph = dict(optimised[0].__dask_graph__())
    fused = fuse_partitions(graph, keys, "partition")

    runs = {
        k: v for k, v in fused.items() if isinstance(v, tuple) and isinstance(v[0], PartitionRun)
    }
    assert sorted(runs) == [("partition", 0), ("partition", 1), ("partition", 2)]
    inside = {key for task in runs.values() for key in task[0].tasks}
    assert len(inside) > len(runs)  # a partition's read and what follows it
    for key in inside:  # outside its run, a task of a partition is at most an item of it
        assert key not in fused or fused[key][0] is operator.getitem
    assert len(fused) < len(graph)

    results = dask.get(fused, keys)
    finals = [
        f(r, *a)
        for r, (f, a) in zip(results, (c.__dask_postcompute__() for c in optimised), strict=True)
    ]
    (got,) = repack(finals)
    (expected,) = dask.compute(outputs)
    assert got["sum"] == expected["sum"] == 2 * sum(range(5, 30))
    assert got["count"] == expected["count"] == 25
    assert got["elements"] == expected["elements"] == 50
    assert ak.to_list(got["rows"]) == ak.to_list(expected["rows"])
