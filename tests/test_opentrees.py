"""Trees kept open per process: a file's later chunks reuse the tree of its first open,
and never the tree of another file, of a copy, or of an earlier version of the file."""

from __future__ import annotations

import os
import pickle
import shutil

import awkward as ak
import numpy as np
import pytest
import uproot
from uproot.behaviors.TTree import TTree

from tau3mu import opentrees
from tau3mu.filegroups import FILE_GROUPS_ENV
from tau3mu.reading import uproot_options
from tau3mu.schemas import schema_branch

TREE = "Events"
BRANCH = "Cand2MuTrk_mass"


@pytest.fixture
def kept():
    """A clean process-wide cache before and after each test."""
    opentrees.release()
    yield opentrees.kept_trees()
    opentrees.release()


def _open(path) -> uproot.ReadOnlyDirectory:
    return uproot.open(
        {os.fspath(path): None}, **uproot_options([os.fspath(path)], keep_trees=True)
    )


def tree_reads(monkeypatch) -> list[str]:
    """Names of the trees uproot reads from a file (rather than takes from the cache)."""
    seen: list[str] = []
    original = uproot.reading.ReadOnlyKey.get

    def counting(self):
        cached = self._file.object_cache.get(self.cache_key)
        if cached is None and self.fClassName == "TTree":
            seen.append(self.fName)
        return original(self)

    monkeypatch.setattr(uproot.reading.ReadOnlyKey, "get", counting)
    return seen


def test_a_files_second_open_takes_the_kept_tree(kept, run3_files, monkeypatch):
    read = tree_reads(monkeypatch)
    with _open(run3_files[0]) as first:
        tree = first[TREE]
        expected = tree[BRANCH].array(entry_stop=500)
    with _open(run3_files[0]) as second:
        again = second[TREE]
        assert again is tree
        # the first chunk's `with` left the kept file open: the tree still reads
        assert ak.array_equal(again[BRANCH].array(entry_stop=500), expected)
    assert read == ["Events"]
    assert len(kept) == 1


def test_other_files_get_their_own_tree(kept, run3_files):
    with _open(run3_files[0]) as a:
        tree_a = a[TREE]
    with _open(run3_files[1]) as b:
        tree_b = b[TREE]
    assert tree_a is not tree_b
    assert tree_b.file.file_path == run3_files[1]
    with _open(run3_files[0]) as a:
        assert a[TREE] is tree_a
    assert len(kept) == 2


def test_a_copy_with_the_same_uuid_is_read_from_itself(kept, run3_files, tmp_path):
    copy = tmp_path / "copy.root"
    shutil.copyfile(run3_files[0], copy)
    with _open(run3_files[0]) as original:
        tree = original[TREE]
    with _open(copy) as copied:
        assert copied.file.uuid == original.file.uuid
        assert copied[TREE] is not tree
        assert copied[TREE].file.file_path == os.fspath(copy)


def test_a_rewritten_file_is_read_again(kept, run3_files, tmp_path):
    path = tmp_path / "changing.root"
    shutil.copyfile(run3_files[0], path)
    with _open(path) as before:
        old = before[TREE]
        n_old = old.num_entries
    # the same path now holds another file (new inode, size and mtime)
    path.unlink()
    shutil.copyfile(run3_files[1], path)
    with _open(path) as after:
        new = after[TREE]
        assert new is not old
        with uproot.open(run3_files[1]) as reference:
            assert new.num_entries == reference[TREE].num_entries
            np.testing.assert_array_equal(
                ak.to_numpy(ak.flatten(new[BRANCH].array(entry_stop=200))),
                ak.to_numpy(ak.flatten(reference[TREE][BRANCH].array(entry_stop=200))),
            )
    assert n_old == old.num_entries


def test_the_least_recently_used_file_is_closed_beyond_the_limit(kept, run3_files, monkeypatch):
    monkeypatch.setattr(kept, "max_files", 1)
    with _open(run3_files[0]) as a:
        first = a[TREE]
    assert not first.file.closed
    with _open(run3_files[1]) as b:
        b[TREE]
    assert first.file.closed
    assert len(kept) == 1


def test_a_file_opened_twice_at_once_leaves_no_file_open(kept, run3_files, monkeypatch):
    """Two threads opening one file at once both miss the cache (forced here): the
    second tree is not kept over the first, which would leave the first file open."""

    def missing(self, key, wanted):
        raise KeyError(key)

    monkeypatch.setattr(opentrees.KeptTrees, "lend", missing)
    with _open(run3_files[0]) as a:
        first = a[TREE]
    with _open(run3_files[0]) as b:
        second = b[TREE]
    assert second is not first
    assert second.file.closed  # not kept: closed with its open
    assert len(kept) == 1
    opentrees.release()
    assert first.file.closed


def test_release_closes_every_kept_file(kept, run3_files):
    with _open(run3_files[0]) as f:
        tree = f[TREE]
    assert not tree.file.closed
    opentrees.release()
    assert tree.file.closed
    assert len(kept) == 0
    with _open(run3_files[0]) as f:  # read again, not taken from a closed file
        assert f[TREE] is not tree
        assert not f[TREE].file.closed


def test_a_chunks_arrays_leave_with_it(kept, run3_files):
    """uproot's array cache spares NanoEvents a second read within a chunk; a kept
    file must not hold the arrays between chunks."""
    with _open(run3_files[0]) as f:
        tree = f[TREE]
        tree[BRANCH].array()
        assert len(tree.file.array_cache) > 0
    assert len(tree.file.array_cache) == 0


def test_the_cache_pickles_as_the_receiving_processs_own(kept):
    assert pickle.loads(pickle.dumps(kept)) is opentrees.kept_trees()
    options = pickle.loads(pickle.dumps(uproot_options(["/a.root"], keep_trees=True)))
    assert options["handler"] is opentrees.KeptFileSource
    assert isinstance(options["object_cache"], opentrees.KeptTreesFor)
    assert options["object_cache"].wanted is schema_branch  # lends trees holding its branches
    assert "TTree" in options["custom_classes"]  # the lazy models, made again on arrival


def test_only_trees_read_through_kept_sources_are_kept(kept, run3_files):
    with uproot.open(run3_files[0], object_cache=kept) as plain:
        assert isinstance(plain[TREE], TTree)
    assert len(kept) == 0


def test_runner_reads_each_file_once_per_process(kept, run3_dataset, fileset_of, monkeypatch):
    """The inspection's open serves every chunk of the file in this process, with the
    same result as a run that keeps nothing."""
    from tau3mu import execution
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    fileset = fileset_of(run3_dataset)
    read = tree_reads(monkeypatch)
    out = execution.run_runner(fileset, DsPhiPiProcessor(), chunksize=3_000, inspection_cache=False)
    files = sum(len(spec["files"]) for spec in fileset.values())
    assert read == ["Events"] * files
    assert len(kept) == 0  # released at the end of the run

    monkeypatch.setattr(execution, "uproot_options", lambda paths, **_: {})
    plain = execution.run_runner(
        fileset, DsPhiPiProcessor(), chunksize=3_000, inspection_cache=False
    )
    assert out.cutflow == plain.cutflow
    for name, hist in out.hists.items():
        np.testing.assert_array_equal(hist.values(), plain.hists[name].values())
    assert len(read) > files  # without kept trees every chunk reads its tree again


def test_with_more_files_than_kept_the_first_ones_are_kept(
    kept, run3_dataset, fileset_of, monkeypatch
):
    """The inspection keeps the trees of the files the Runner reaches first: with the last
    ones kept, the Runner's first opens would evict them unused and read every file twice."""
    from tau3mu import execution
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    monkeypatch.setattr(kept, "max_files", 1)
    monkeypatch.setenv(FILE_GROUPS_ENV, "off")  # a group's files are not kept
    fileset = fileset_of(run3_dataset)
    files = sum(len(spec["files"]) for spec in fileset.values())
    read = tree_reads(monkeypatch)
    execution.run_runner(fileset, DsPhiPiProcessor(), chunksize=10**6, inspection_cache=False)
    # each file once for the inspection; the Runner reads all but the first one again
    assert len(read) == 2 * files - 1


@pytest.mark.parametrize("cache", ["chunk-sized", "too small"])
def test_a_chunk_inflates_each_basket_once(kept, run2_dataset, fileset_of, monkeypatch, cache):
    """NanoEvents asks for a jagged branch's offsets and content separately, often far
    apart; uproot's array cache must hold the chunk, or the branch's baskets are read
    and inflated again (shown with a cache too small for a chunk)."""
    import uproot.compression

    from tau3mu import execution
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    monkeypatch.setenv(FILE_GROUPS_ENV, "off")  # a group keeps its joined arrays itself
    if cache == "too small":
        monkeypatch.setattr(opentrees, "CHUNK_ARRAY_CACHE", "100 kB")
    inflated = []
    decompressor = type(uproot.compression._decompress_ZLIB)
    original = decompressor.decompress

    def counting(self, *args, **kwargs):
        inflated.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(decompressor, "decompress", counting)
    fileset = fileset_of(run2_dataset)
    out = execution.run_runner(
        fileset, DsPhiPiProcessor(), chunksize=10**6, inspection_cache=False
    )  # one chunk per file
    read = {column.rsplit("-", 1)[0] for column in out.metrics["columns"]}
    files = [path for spec in fileset.values() for path in spec["files"]]
    baskets = 0
    for path in files:
        tree = uproot.open(path)["Tree3Mu/ntuple"]
        baskets += sum(tree[name].num_baskets for name in read)
    metadata = 10 * len(files)  # the inspection: the tree's own records, one basket
    if cache == "chunk-sized":
        assert baskets <= len(inflated) <= baskets + metadata
    else:
        assert len(inflated) > baskets + metadata


def test_a_file_url_is_kept_as_its_path(kept, run3_files):
    """``file://`` names a file of this machine: its tree is kept like a plain path's."""
    url = "file://" + os.path.abspath(run3_files[0])
    with _open(url) as f:
        tree = f[TREE]
        assert isinstance(tree, TTree)
    assert len(kept) == 1
    with _open(url) as again:
        assert again[TREE] is tree


def test_a_file_let_go_while_in_use_closes_when_its_reader_is_done(kept, run3_files, monkeypatch):
    """A kept file that the cache lets go of (here evicted by another file's open) while
    an open reads its tree stays open for that reader, and closes when it is done."""
    monkeypatch.setattr(kept, "max_files", 1)
    with _open(run3_files[0]) as first:
        tree = first[TREE]
    with _open(run3_files[0]) as again:
        assert again[TREE] is tree
        with _open(run3_files[1]) as other:
            other[TREE]
        assert len(kept) == 1
        assert not tree.file.closed  # evicted, still read here
        assert len(tree[BRANCH].array(entry_stop=100)) == 100
    assert tree.file.closed


def test_an_open_that_takes_a_kept_tree_counts_its_own_reads(kept, run3_files):
    """A group's ``bytesread`` comes from its opens: one that took a kept tree counts the
    bytes it read through the kept file in its thread, not the kept open's earlier reads
    nor those of other threads."""
    from concurrent.futures import ThreadPoolExecutor

    from tau3mu.preadsource import PReadFileSource

    with _open(run3_files[0]) as first:
        first[TREE]["nCand2MuTrk"].array()
    with uproot.open({run3_files[0]: None}, handler=PReadFileSource) as plain:
        alone = plain[TREE]
        before = plain.file.source.num_requested_bytes
        alone[BRANCH].array(array_cache=None)
        branch_bytes = plain.file.source.num_requested_bytes - before
    with _open(run3_files[0]) as second, ThreadPoolExecutor(1) as pool:
        tree, source = second[TREE], second.file.source
        own = source.num_requested_bytes  # the file's header and directory
        assert source.bytes_read_by_this_open() == own
        tree[BRANCH].array(array_cache=None)
        pool.submit(lambda: tree["nCand2MuTrk"].array(array_cache=None)).result()
        assert source.bytes_read_by_this_open() == own + branch_bytes


def test_a_file_stays_open_while_any_of_its_trees_is_kept(kept, tmp_path, monkeypatch):
    """One open that reads two trees of a file keeps both; the file closes only when
    neither is kept (the cache counts trees, a file may have several)."""
    path = str(tmp_path / "two_trees.root")
    with uproot.recreate(path) as out:
        for name in ("A", "B"):
            out.mktree(name, {BRANCH: "float64"}).extend({BRANCH: np.arange(5.0)})
    monkeypatch.setattr(kept, "max_files", 1)
    with _open(path) as f:
        first, second = f["A"], f["B"]  # B's keeping lets A go
    assert first.file is second.file
    assert len(kept) == 1
    assert not second.file.closed
    assert second[BRANCH].array().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    opentrees.release()
    assert second.file.closed


def test_a_kept_open_pickles_as_a_fresh_open(kept, run3_files):
    """uproot's objects may travel pickled; a kept open arrives as a new open of the
    file, used by nobody, that closes with its ``with``."""
    with _open(run3_files[0]) as f:
        source = f[TREE].file.source
        copy = pickle.loads(pickle.dumps(source))
    assert not source.closed  # kept
    assert type(copy) is type(source)
    assert copy.identity == source.identity
    with copy:
        assert bytes(copy.chunk(0, 4).raw_data) == b"root"
    assert copy.closed


def test_an_ended_open_borrows_nothing(kept, run3_files):
    """A tree asked of an open whose ``with`` has ended is not counted as in use: it
    would never be given back, and its file never closed."""
    with _open(run3_files[0]) as f:
        tree = f[TREE]
    late = _open(run3_files[0])
    with late:
        pass
    assert late[TREE] is tree
    opentrees.release()
    assert tree.file.closed
