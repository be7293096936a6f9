"""Trees that deserialise only the schema's branches read those exactly as complete trees
do, fall back to a full read where a skip could lose something, and never serve an open
that wants a complete tree."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import uproot

from tau3mu import opentrees
from tau3mu.filecheck import FileRules, file_verdict
from tau3mu.lazytrees import is_partial, lazy_classes
from tau3mu.reading import uproot_options
from tau3mu.schemas import schema_branch

TREE = "Tree3Mu/ntuple"


def _kept_only(name: str) -> bool:
    return name == "kept"


def _p4_only(name: str) -> bool:
    return name == "p4"


def test_a_partial_run2_tree_reads_the_schemas_branches_as_a_full_one(run2_files):
    with (
        uproot.open(run2_files[0], custom_classes=lazy_classes(schema_branch)) as lazy,
        uproot.open(run2_files[0]) as full,
    ):
        partial, complete = lazy[TREE], full[TREE]
        assert is_partial(partial)
        assert not is_partial(complete)
        wanted = {name for name in complete.keys() if schema_branch(name)}  # noqa: SIM118
        assert wanted <= set(partial.keys()) < set(complete.keys())
        assert len(partial.keys()) < len(complete.keys()) / 2
        assert partial.num_entries == complete.num_entries
        for name in partial.keys():  # noqa: SIM118 (branch names)
            assert partial[name].typename == complete[name].typename, name
            got, expected = partial[name].array(), complete[name].array()
            assert got.tolist() == expected.tolist(), name
            assert str(got.type) == str(expected.type), name


def _vectors_file(path, flush_first: bool) -> None:
    """Three ``std::vector`` branches, written by ROOT with their last baskets inside
    the tree's metadata (``WriteTObject`` does not flush them); ``flush_first``: the
    first branch's basket flushed, so the first embedded basket is a skipped branch's."""
    import ROOT

    f = ROOT.TFile(str(path), "RECREATE")
    tree = ROOT.TTree("t", "t")
    first, skipped, kept = (ROOT.std.vector(t)() for t in ("int", "double", "float"))
    tree.Branch("first", first)
    tree.Branch("skipped", skipped)
    tree.Branch("kept", kept)
    for i in range(10):
        for vector, value in ((first, i), (skipped, 0.5 * i), (kept, 2.0 * i)):
            vector.clear()
            vector.push_back(value)
        tree.Fill()
    if flush_first:
        tree.GetBranch("first").FlushBaskets()
    f.WriteTObject(tree, "t")
    f.Close()


@pytest.mark.parametrize("flush_first", [False, True])
def test_baskets_inside_the_metadata_of_skipped_branches(tmp_path, flush_first):
    pytest.importorskip("ROOT")
    path = tmp_path / "vectors.root"
    _vectors_file(path, flush_first)
    with uproot.open(path, custom_classes=lazy_classes(_kept_only)) as f:
        tree = f["t"]
        assert is_partial(tree)
        assert tree.keys() == ["first", "kept"]  # the first branch element: always read
        assert tree["kept"].embedded_baskets
        assert tree["kept"].array().tolist() == [[2.0 * i] for i in range(10)]


def test_a_class_tag_in_a_skipped_body_makes_the_whole_tree_read(tmp_path):
    """With uproot's full TTree metadata the skipped branch's embedded basket holds the
    ``TBasket`` class tag that a later basket refers to: uproot raises on the partial
    pass, and the tree is read in full, as uproot reads it."""
    pytest.importorskip("ROOT")
    path = tmp_path / "vectors.root"
    _vectors_file(path, flush_first=True)
    options = {"minimal_ttree_metadata": False}
    with (
        uproot.open(path, custom_classes=lazy_classes(_kept_only), **options) as lazy,
        uproot.open(path, **options) as full,
    ):
        tree = lazy["t"]
        assert not is_partial(tree)
        assert tree.keys() == full["t"].keys()
        assert tree["kept"].array().tolist() == [[2.0 * i] for i in range(10)]


def test_a_kept_object_branch_is_read_with_the_whole_tree(tmp_path):
    """A kept branch of an object (``fType`` not 0: a class, a split or counted one)
    could refer to skipped branches: the tree is read in full, as uproot reads it."""
    ROOT = pytest.importorskip("ROOT")
    path = tmp_path / "split.root"
    f = ROOT.TFile(str(path), "RECREATE")
    tree = ROOT.TTree("t", "t")
    other, more = ROOT.std.vector("int")(), ROOT.std.vector("double")()
    p4 = ROOT.TLorentzVector()
    tree.Branch("other", other)
    tree.Branch("more", more)
    tree.Branch("p4", p4, 32000, 99)
    for i in range(5):
        p4.SetPxPyPzE(i, 0, 0, 10)
        tree.Fill()
    tree.Write()
    f.Close()
    with (
        uproot.open(path, custom_classes=lazy_classes(_p4_only)) as lazy,
        uproot.open(path) as full,
    ):
        assert not is_partial(lazy["t"])
        assert lazy["t"].keys() == full["t"].keys()
        got, expected = lazy["t"]["p4"].array(), full["t"]["p4"].array()
        assert got.tolist() == expected.tolist()
        assert [p["fP"]["fX"] for p in got.tolist()] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_the_inspection_and_the_runner_share_a_kept_partial_tree(run2_files):
    """The inspection reads the tree as the Runner's chunks do and keeps it for them; a
    complete tree is never served a partial one (``TAU3MU_LAZY_TREES=off`` opens: no
    filter, the process's cache itself)."""
    opentrees.release()
    path = run2_files[0]
    try:
        verdict = file_verdict(path, TREE, FileRules(None, "2017"), keep_trees=True)
        assert verdict.reason is None
        with uproot.open({path: None}, **uproot_options([path], keep_trees=True)) as f:
            runner_tree = f[TREE]
        assert is_partial(runner_tree)
        assert verdict.entries == runner_tree.num_entries
        assert len(opentrees.kept_trees()) == 1  # the inspection's open, taken by the chunk
        complete = {**uproot_options([path], keep_trees=True)}
        complete["object_cache"] = opentrees.kept_trees()
        del complete["custom_classes"]
        with uproot.open({path: None}, **complete) as f:
            tree = f[TREE]
            assert tree is not runner_tree
            assert not is_partial(tree)
            assert len(tree.keys()) > 2 * len(runner_tree.keys())
    finally:
        opentrees.release()


def test_a_file_shorter_than_its_header_says_is_truncated(run2_files, tmp_path):
    """Lazy trees list only the schema's branches, so the furthest-basket read no longer
    covers every basket: the inspection compares the file's size with its header's end,
    as ROOT does."""
    cut = tmp_path / "cut.root"
    data = Path(run2_files[0]).read_bytes()
    cut.write_bytes(data[:-1])
    verdict = file_verdict(str(cut), TREE, FileRules(None, "2017"))
    assert verdict.reason is not None
    assert verdict.reason.startswith("truncated")
    assert f"{len(data) - 1} bytes" in verdict.reason
    whole = tmp_path / "whole.root"
    whole.write_bytes(data)
    assert file_verdict(str(whole), TREE, FileRules(None, "2017")).reason is None


def test_the_lazy_classes_pickle_as_a_call():
    classes = pickle.loads(pickle.dumps(lazy_classes(schema_branch)))
    assert classes.wanted is schema_branch
    assert classes["TTree"] is lazy_classes(schema_branch)["TTree"]


def test_a_branchs_second_ask_is_answered_from_the_array_cache(run2_files):
    """NanoEvents asks for a jagged branch twice (offsets, then content): the second
    ask returns the cached array instead of reading the baskets again."""
    options = uproot_options(run2_files[:1])
    with uproot.open(run2_files[0], **options) as f:
        branch = f[TREE]["Track_pt"]
        interpretation = branch.interpretation
        first = branch.array(interpretation, entry_start=0, entry_stop=100)
        assert branch.array(interpretation, entry_start=0, entry_stop=100) is first
        assert (
            branch.array(interpretation, entry_start=-branch.num_entries, entry_stop=100) is first
        )
        uncached = branch.array(interpretation, entry_start=0, entry_stop=100, array_cache=None)
        assert uncached is not first
        assert uncached.tolist() == first.tolist()
        other = branch.array(interpretation, entry_start=0, entry_stop=99)
        assert other.tolist() == first.tolist()[:99]


def test_lazy_trees_off_reads_complete_trees(run2_files, monkeypatch):
    """``TAU3MU_LAZY_TREES=off`` (side-by-side measurements): uproot's own models."""
    from tau3mu.reading import LAZY_TREES_ENV

    assert "custom_classes" in uproot_options(run2_files[:1], keep_trees=True)
    monkeypatch.setenv(LAZY_TREES_ENV, "off")
    for keep in (False, True):
        options = uproot_options(run2_files[:1], keep_trees=keep)
        assert "custom_classes" not in options
        with uproot.open({run2_files[0]: None}, **options) as f:
            assert not is_partial(f[TREE])
    opentrees.release()
