"""Small files of a dataset as one unit of work (tau3mu.filegroups, tau3mu.group_work): the same output as one
chunk per file, on every executor; a bad member is named or skipped on its own."""

from __future__ import annotations

import doctest
import logging

import awkward as ak
import numpy as np
import pytest
from same_output import assert_same_output
from test_opentrees import tree_reads

from tau3mu import filegroups, group_work, opentrees
from tau3mu.chunks import ChunkError
from tau3mu.execution import run_runner
from tau3mu.filegroups import FILE_GROUPS_ENV
from tau3mu.processors.dsphipi import DsPhiPiProcessor
from tau3mu.synth import simulate, write_run2, write_run3

RUN2_TREE = "Tree3Mu/ntuple"


@pytest.fixture(scope="module")
def small_run3(tmp_path_factory) -> list[str]:
    """Nine Run 3 simulation files of 300-1100 events; the first one without truth branches."""
    out = tmp_path_factory.mktemp("small_run3")
    return [
        str(write_run3(out / f"small_{k}.root", simulate(5, k, 300 + 100 * k), truth=k > 0))
        for k in range(9)
    ]


@pytest.fixture(scope="module")
def small_run2(tmp_path_factory) -> list[str]:
    """Three Run 2 files of 300 events, written by ROOT."""
    pytest.importorskip("ROOT")
    out = tmp_path_factory.mktemp("small_run2")
    return [str(write_run2(out / f"small_{k}.root", simulate(6, k, 300), seed=k)) for k in range(3)]


def _fileset(paths: list[str], tree: str, kind: str = "mc") -> dict:
    era = "2022" if tree == "Events" else "2017"
    return {"d": {"files": dict.fromkeys(paths, tree), "metadata": {"type": kind, "era": era}}}


def _run(fileset: dict, groups: bool, monkeypatch, **options):
    monkeypatch.setenv(FILE_GROUPS_ENV, "on" if groups else "off")
    return run_runner(fileset, DsPhiPiProcessor(), **options)


@pytest.mark.parametrize("module", [filegroups, group_work])
def test_the_examples_hold(module):
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize(
    "parts",
    [
        [ak.Array(np.arange(3.0, dtype=np.float32)), ak.Array(np.arange(2.0, dtype=np.float32))],
        [ak.Array([True, False]), ak.Array([True])],
        [ak.Array([[1, 2], [], [3]])[1:], ak.Array([[4], [5, 6]]), ak.Array([[7, 8, 9]])[:0]],
        [ak.Array([["HLT_a", "HLT_b"], []]), ak.Array([["HLT_c"]])],  # to ak.concatenate
        [ak.Array([[[1.0]], []]), ak.Array([[[2.0, 3.0]]])],  # lists of lists: the same
    ],
    ids=["numbers", "booleans", "sliced-lists", "strings", "nested"],
)
def test_joined_is_ak_concatenate(parts):
    """The numpy join gives ak.concatenate's array: values, type, parameters."""
    expected = ak.concatenate(parts)
    got = group_work.joined(parts)
    assert got.type == expected.type
    assert got.tolist() == expected.tolist()
    assert got.layout.parameters == expected.layout.parameters


@pytest.mark.parametrize("executor", ["iterative", "futures", "dask"])
def test_small_files_run_as_one_unit_with_the_same_output(
    executor, small_run3, dask_client, monkeypatch
):
    """Eight files make one unit of work in one process, and two units per worker (four,
    of two files each) on two workers; the output is the one of a chunk per file."""
    fileset = _fileset(small_run3[1:], "Events")
    client = dask_client if executor == "dask" else None
    options = {"executor": executor, "client": client, "workers": 2}
    grouped = _run(fileset, True, monkeypatch, **options)
    single = _run(fileset, False, monkeypatch, **options)
    units = 1 if executor == "iterative" else 4
    assert (grouped.metrics["chunks"], single.metrics["chunks"]) == (units, 8)
    assert grouped.truth["d"]["ds"] > 0
    assert_same_output(grouped, single)
    if client is not None:  # the workers' opens (the inspection's) go with the run
        assert set(client.run(_kept_files).values()) == {0}


def _kept_files() -> int:
    return len(opentrees.kept_trees())


def test_a_group_takes_the_trees_the_inspection_kept(small_run3, monkeypatch):
    """In one process a group reads no tree twice: its files' trees are the inspection's,
    and it keeps none of its own (its files are read once)."""
    opentrees.release()
    read = tree_reads(monkeypatch)
    fileset = _fileset(small_run3[1:], "Events")
    grouped = _run(fileset, True, monkeypatch, inspection_cache=False)
    assert (grouped.metrics["chunks"], read) == (1, ["Events"] * 8)
    assert len(opentrees.kept_trees()) == 0
    monkeypatch.setattr(opentrees.kept_trees(), "max_files", 3)  # 3 kept, 5 read again
    read.clear()
    again = _run(fileset, True, monkeypatch, inspection_cache=False)
    assert len(read) == 8 + 5
    assert_same_output(grouped, again)
    assert again.metrics["bytesread"] > grouped.metrics["bytesread"]  # 5 trees read again


def test_a_group_on_an_untested_coffea_runs_its_files_one_by_one(small_run3, monkeypatch, caplog):
    """A process whose coffea internals are not a tested version's (here: the private
    APIs switched off after the groups were formed, as on a worker that differs from the
    client) does not join a group: its files run one by one, with the same output."""
    from tau3mu.chunks import BackoffRunner
    from tau3mu.reading import PRIVATE_APIS_ENV

    grouping = BackoffRunner.preprocess

    def preprocess(self, fileset, **options):
        units = list(grouping(self, fileset, **options))
        monkeypatch.setenv(PRIVATE_APIS_ENV, "off")
        yield from units

    fileset = _fileset(small_run3[1:4], "Events")
    single = _run(fileset, False, monkeypatch)
    monkeypatch.setattr(BackoffRunner, "preprocess", preprocess)
    with caplog.at_level(logging.INFO, logger="tau3mu.chunks"):
        grouped = _run(fileset, True, monkeypatch)
    assert grouped.metrics["chunks"] == 1
    assert "3 files run one by one after: UntestedCoffeaError" in caplog.text
    assert_same_output(grouped, single)


def test_a_group_stops_at_the_chunk_size(small_run3, monkeypatch):
    """A group holds at most ``chunksize`` events: 400 + 500 then 600, then 700."""
    out = _run(_fileset(small_run3[1:5], "Events"), True, monkeypatch, chunksize=1000)
    assert out.metrics["chunks"] == 3
    assert out.metrics["accounting"]["balanced"]


def test_members_that_differ_are_run_one_by_one(small_run3, monkeypatch, caplog):
    """A group whose first file lacks the truth branches the others have is not joined
    (the others' truth would be lost): its files are run one by one, with the output of
    a chunk per file."""
    fileset = _fileset(small_run3[:3], "Events")
    with caplog.at_level(logging.INFO, logger="tau3mu.chunks"):
        grouped = _run(fileset, True, monkeypatch, chunksize=10_000)
    assert grouped.metrics["chunks"] == 1
    assert "3 files run one by one after: GroupLayoutError" in caplog.text
    assert_same_output(grouped, _run(fileset, False, monkeypatch, chunksize=10_000))


def test_a_bad_file_in_a_group_is_named(small_run2, corrupt_run2, monkeypatch):
    """A member whose vectors do not match stops the run naming that file and its own
    entries, as without groups."""
    fileset = _fileset([small_run2[0], str(corrupt_run2), small_run2[1]], RUN2_TREE, "data")
    with pytest.raises(ChunkError) as info:
        _run(fileset, True, monkeypatch, retries=0)
    assert str(info.value).startswith(f"{corrupt_run2} entries 0-400: ")
    assert "Tr_Pt" in str(info.value)


def test_a_bad_file_in_a_group_is_skipped_alone(small_run2, corrupt_run2, monkeypatch):
    """With ``skip_bad_files`` exactly the bad member is skipped, its events counted; the
    other members' output is the one of a chunk per file."""
    fileset = _fileset([small_run2[0], str(corrupt_run2), *small_run2[1:]], RUN2_TREE, "data")
    grouped = _run(fileset, True, monkeypatch, skip_bad_files=True)
    single = _run(fileset, False, monkeypatch, skip_bad_files=True)
    accounting = grouped.metrics["accounting"]
    assert accounting["balanced"]
    (chunk,) = accounting["skipped_chunks"]
    assert (chunk["file"], chunk["entries"]) == (str(corrupt_run2), [0, 400])
    assert accounting["skipped_chunks"] == single.metrics["accounting"]["skipped_chunks"]
    assert grouped.cutflow["d"]["events"]["events"] == 900
    assert_same_output(grouped, single)


def test_a_group_is_checkpointed_and_resumed(small_run2, tmp_path, monkeypatch):
    """A group's output is one checkpoint; a rerun loads it instead of computing it."""
    fileset = _fileset(small_run2, RUN2_TREE, "data")
    checkpoint = str(tmp_path / "ckpt")
    first = _run(fileset, True, monkeypatch, checkpoint=checkpoint)
    assert len(list((tmp_path / "ckpt").rglob("*.pkl"))) == 1
    again = _run(fileset, True, monkeypatch, checkpoint=checkpoint)
    assert again.metrics["accounting"]["resumed_chunks"] == 1
    assert_same_output(again, first)
    assert_same_output(again, _run(fileset, False, monkeypatch))


def test_a_group_may_hold_a_files_last_chunk(small_run3, tmp_path, monkeypatch, caplog):
    """A 2500-event file makes two chunks of 1250 at ``chunksize`` 1600; the second joins
    the next 300-event file's chunk (entries 1250-2500, then 0-300) in one group."""
    big = str(write_run3(tmp_path / "big.root", simulate(5, 9, 2500), truth=False))
    fileset = _fileset([big, small_run3[0]], "Events")
    with caplog.at_level(logging.INFO, logger="tau3mu.chunks"):
        grouped = _run(fileset, True, monkeypatch, chunksize=1600)
    single = _run(fileset, False, monkeypatch, chunksize=1600)
    assert (grouped.metrics["chunks"], single.metrics["chunks"]) == (2, 3)
    assert "run one by one" not in caplog.text  # the group ran as one
    assert_same_output(grouped, single)


def test_file_urls_are_grouped_too(small_run3, monkeypatch, caplog):
    """``file://`` inputs are read as their paths by a group's reads."""
    fileset = _fileset([f"file://{path}" for path in small_run3[1:5]], "Events")
    with caplog.at_level(logging.INFO, logger="tau3mu.chunks"):
        grouped = _run(fileset, True, monkeypatch)
    assert grouped.metrics["chunks"] == 1
    assert "run one by one" not in caplog.text
    assert_same_output(grouped, _run(_fileset(small_run3[1:5], "Events"), False, monkeypatch))


def test_a_group_holds_at_most_max_files():
    from coffea.processor.executor import WorkItem

    items = [WorkItem("d", f"{k}.root", "t", 0, 10, b"") for k in range(7)]
    units = filegroups.group_chunks(items, 10**6, max_files=3)
    assert [len(getattr(u, "members", [u])) for u in units] == [3, 3, 1]
    assert len(filegroups.group_chunks(items * 20, 10**6)) == 3  # 140: 64 + 64 + 12
