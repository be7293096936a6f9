"""The branches a run reads (tau3mu.traced_branches): traced once per kind of dataset,
every file read for them only, and the same output as reading the schema's branches."""

from __future__ import annotations

import doctest
import logging

import awkward as ak
import pytest
import uproot
from same_output import assert_same_output
from test_opentrees import tree_reads
from uproot.behaviors.TTree import TTree

from tau3mu import lazytrees, opentrees, reading, traced_branches
from tau3mu.config import SelectionConfig
from tau3mu.execution import run_runner
from tau3mu.inspection import InputFileError, inspect_inputs
from tau3mu.processors.dsphipi import DsPhiPiProcessor
from tau3mu.reading import uproot_options
from tau3mu.schemas import schema_branch
from tau3mu.synth import simulate, write_run2, write_run3
from tau3mu.traced_branches import TRACED_BRANCHES_ENV, BranchSet, run_branches

RUN2_TREE = "Tree3Mu/ntuple"


@pytest.fixture(autouse=True)
def _trace_small_runs(monkeypatch):
    """Trace runs of two files on (the threshold is for real runs' cost), and start and
    end with no kept tree."""
    monkeypatch.setattr(traced_branches, "TRACE_MIN_FILES", 2)
    monkeypatch.delenv(TRACED_BRANCHES_ENV, raising=False)
    opentrees.release()
    yield
    opentrees.release()


@pytest.fixture(scope="module")
def run2_data(tmp_path_factory) -> list[str]:
    """Three full-width Run 2 files of 400 events, written by ROOT."""
    pytest.importorskip("ROOT")
    out = tmp_path_factory.mktemp("traced_run2")
    return [str(write_run2(out / f"f{k}.root", simulate(8, k, 400), seed=k)) for k in range(3)]


@pytest.fixture(scope="module")
def run3_mc(tmp_path_factory) -> list[str]:
    """Three Run 3 simulation files; the first (the one traced) without truth branches."""
    out = tmp_path_factory.mktemp("traced_run3")
    return [str(write_run3(out / f"f{k}.root", simulate(9, k, 400), truth=k > 0)) for k in range(3)]


def _fileset(paths: list[str], tree: str, kind: str, era: str) -> dict:
    return {"d": {"files": dict.fromkeys(paths, tree), "metadata": {"type": kind, "era": era}}}


def _both_ways(fileset: dict, monkeypatch, **options):
    """The run traced, then with the schema's branches (``TAU3MU_TRACED_BRANCHES=off``)."""
    traced = run_runner(fileset, DsPhiPiProcessor(), inspection_cache=False, **options)
    opentrees.release()
    monkeypatch.setenv(TRACED_BRANCHES_ENV, "off")
    schema = run_runner(fileset, DsPhiPiProcessor(), inspection_cache=False, **options)
    return traced, schema


@pytest.mark.parametrize("module", [traced_branches, lazytrees])
def test_the_examples_hold(module):
    assert doctest.testmod(module).failed == 0


def test_run2_data_reads_fewer_branches_and_gives_the_same_output(run2_data, monkeypatch):
    """A year's data rules out the other trigger matches, simulation's truth and the
    candidate's eta and phi (which the schema once built the candidate's ct from, with
    its flight distance and pt: leaving them out must not lose ct)."""
    fileset = _fileset(run2_data, RUN2_TREE, "data", "2017")
    traced = run_branches(fileset, DsPhiPiProcessor())
    assert traced is not None
    branches = traced.branches
    assert {"Triplet2_Eta", "GenParticle_Pt", "Mu1_dRtriggerMatch_Mu7"} <= branches.ruled_out
    assert {"FlightDistBS_SV", "Triplet2_Pt", "Mu1_dRtriggerMatch_2017"} <= branches.read
    assert {"run", "lumi", "evt"} <= branches.read  # required by the inspection
    traced, schema = _both_ways(fileset, monkeypatch)
    assert_same_output(traced, schema)
    assert traced.hists["h_ct"].sum(flow=True).value > 0  # ct is computed, not NaN


def test_files_with_other_branches_than_the_traced_one_read_the_schemas(
    tmp_path, monkeypatch, caplog
):
    """The first file, traced, has no generated particles, so the processor reads no
    candidate eta and phi from it; the others have them, and the truth origin needs
    eta and phi there. The inspection finds the other branches and the run reads the
    schema's."""
    paths = [
        str(write_run3(tmp_path / f"f{k}.root", simulate(9, k, 400), mc=k > 0, seed=k))
        for k in range(3)
    ]
    fileset = _fileset(paths, "Events", "mc", "2022")
    traced = run_branches(fileset, DsPhiPiProcessor())
    assert traced is not None
    assert "Cand2MuTrk_eta" in traced.branches.ruled_out
    with caplog.at_level(logging.INFO, logger="tau3mu.traced_branches"):
        runs = _both_ways(fileset, monkeypatch)
    assert any("reading the schema's" in r.getMessage() for r in caplog.records)
    assert_same_output(*runs)
    origins = runs[0].snapshot["d"]["BestTriplet_origin"]
    assert len(set(origins.tolist())) > 1  # some truth-matched, some not


def test_an_optional_branch_the_traced_file_lacks_is_still_read(run3_mc, monkeypatch):
    """Truth branches missing from the traced file are not ruled out (the run then reads
    the schema's branches: the files differ)."""
    traced = run_branches(_fileset(run3_mc, "Events", "mc", "2022"), DsPhiPiProcessor())
    assert traced is not None
    assert traced.branches("Cand2MuTrk_truth")
    runs = _both_ways(_fileset(run3_mc, "Events", "mc", "2022"), monkeypatch)
    assert_same_output(*runs)
    assert sum(runs[0].truth["d"].values()) > 0


def test_the_files_are_opened_for_the_traced_branches(run2_data, monkeypatch):
    """The trace's open is the only one for the schema's branches; every other tree is
    read once, for the set, by the inspection, and the chunks take the kept trees."""
    kept_for: list[object] = []
    keep = opentrees.KeptTrees.__setitem__

    def noting(self, key, tree):
        if isinstance(tree, TTree):  # not the directories on the way
            kept_for.append(tree.wanted)
        keep(self, key, tree)

    monkeypatch.setattr(opentrees.KeptTrees, "__setitem__", noting)
    reads = tree_reads(monkeypatch)
    run_runner(_fileset(run2_data, RUN2_TREE, "data", "2017"), DsPhiPiProcessor())
    assert len(reads) == len(run2_data)
    assert kept_for[0] is schema_branch
    assert all(isinstance(wanted, BranchSet) for wanted in kept_for[1:])
    assert len(kept_for) == len(run2_data)


def test_a_processor_whose_reads_hang_on_an_unread_field_is_not_traced(run3_mc):
    """Reading ``mass`` only while the candidates have an ``eta`` field that nothing
    reads: without ``eta`` the processor would read ``vtx_chi2`` instead. The run reads
    the schema's branches."""

    def process(events):
        cand = events.Candidate
        return {"x": (cand.mass if "eta" in cand.fields else cand.vtx_chi2).layout}

    fileset = _fileset(run3_mc, "Events", "mc", "2022")
    assert run_branches(fileset, process) is None


def test_tracing_is_only_for_runs_it_pays_off_in(run3_mc, monkeypatch):
    fileset = _fileset(run3_mc, "Events", "mc", "2022")
    config = SelectionConfig()
    assert traced_branches.worth_tracing(fileset, config)
    assert not traced_branches.worth_tracing(_fileset(run3_mc[:1], "Events", "mc", "2022"), config)
    no_era = {"d": {"files": fileset["d"]["files"], "metadata": {"type": "mc"}}}
    assert not traced_branches.worth_tracing(no_era, config)
    monkeypatch.setenv(TRACED_BRANCHES_ENV, "off")
    assert run_branches(fileset, DsPhiPiProcessor()) is None


def test_kinds_of_dataset_are_traced_once_and_joined(run3_mc, caplog):
    """Two datasets of one kind (their names apart) are traced once; a set reads what
    either kind reads and rules out what both do."""
    files = dict.fromkeys(run3_mc, "Events")
    meta = {"type": "mc", "era": "2022"}
    fileset = {name: {"files": files, "metadata": meta} for name in ("a", "b")}
    with caplog.at_level(logging.INFO, logger="tau3mu.traced_branches"):
        assert run_branches(fileset, DsPhiPiProcessor()) is not None
    traced = [r for r in caplog.records if r.getMessage().startswith("reading")]
    assert len(traced) == 1
    mc = BranchSet(read=frozenset({"a"}), ruled_out=frozenset({"b", "c"}))
    data = BranchSet(read=frozenset({"b"}), ruled_out=frozenset({"a", "c"}))
    assert (mc | data) == BranchSet(read=frozenset({"a", "b"}), ruled_out=frozenset({"c"}))


def test_a_file_without_a_required_branch_is_named_in_a_traced_run(run2_data, tmp_path):
    """The inspection reads the set, which holds every branch the era requires: a file
    missing one is still named."""
    import ROOT

    source = ROOT.TFile.Open(run2_data[1])
    tree = source.Get(RUN2_TREE)
    tree.SetBranchStatus("TripletVtx2_Chi2", 0)
    bad = tmp_path / "no_chi2.root"
    target = ROOT.TFile(str(bad), "RECREATE")
    target.mkdir("Tree3Mu").cd()
    tree.CloneTree(-1).Write()
    target.Close()
    source.Close()
    fileset = _fileset([run2_data[0], str(bad)], RUN2_TREE, "data", "2017")
    traced = run_branches(fileset, DsPhiPiProcessor())
    assert traced is not None
    with pytest.raises(InputFileError, match=r"no_chi2\.root.*TripletVtx2_Chi2"):
        inspect_inputs(fileset, cache=False, keep_trees=True, branches=traced.branches)


def test_a_tree_kept_for_some_branches_serves_only_opens_of_fewer(run2_data, monkeypatch):
    """Kept for a set, a tree serves that set's opens but not the schema's (which read the
    tree again; the first tree stays kept). Run 2's branches: Run 3's flat ones are
    always read (:mod:`tau3mu.lazytrees` skips ``TBranchElement`` branches only)."""
    path = run2_data[1]
    branches = BranchSet(read=frozenset({"Triplet2_Mass"}), ruled_out=frozenset({"MuonPt"}))
    reads = tree_reads(monkeypatch)
    for wanted in (branches, schema_branch, branches):
        options = uproot_options([path], keep_trees=True, branches=wanted)
        with uproot.open({path: None}, **options) as f:
            assert ("MuonPt" in f[RUN2_TREE]) is (wanted is schema_branch)
    assert len(reads) == 2


def test_a_cluster_traces_on_a_worker_set_up_for_reading(run3_mc):
    """With a Dask client the trace runs on a worker, which it sets up for reading first
    (the XRootD client's settings, ISA-L inflate), as the inspection would; the set is the
    one this process traces."""
    from distributed import Client, LocalCluster

    fileset = _fileset(run3_mc, "Events", "mc", "2022")
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        on_worker = run_branches(fileset, DsPhiPiProcessor(), client=client)
        prepared = client.run(lambda: sorted(reading._PREPARED))
    assert on_worker is not None
    assert on_worker == run_branches(fileset, DsPhiPiProcessor())
    assert list(prepared.values()) == [["inflate"]]


def test_each_kind_reads_alike_with_the_joined_set(tmp_path):
    """Data and simulation of one era are two kinds, traced each, and each kind's traced
    file is read again with the joined set: a processor whose reads hang on fields that
    neither kind reads (the candidates' eta, the generated particles) gets no set."""
    data = [str(write_run3(tmp_path / f"d{k}.root", simulate(9, k, 400))) for k in range(2)]
    sim = [str(write_run3(tmp_path / f"s{k}.root", simulate(9, k, 400), mc=True)) for k in range(2)]
    fileset = {
        "data": _fileset(data, "Events", "data", "2022")["d"],
        "sim": _fileset(sim, "Events", "mc", "2022")["d"],
    }

    def process(events):
        cand = events.Candidate
        hanging = ("eta" in cand.fields) != ("Gen" in events.fields)
        bit = events.Trigger[events.Trigger.fields[0]]  # the schema needs one bit
        return {"x": ak.sum(cand.mass if hanging else cand.vtx_chi2), "bit": ak.sum(bit)}

    assert run_branches(fileset, DsPhiPiProcessor()) is not None
    assert run_branches(fileset, process) is None


def test_a_traced_rerun_finds_its_files_in_the_inspection_cache(run2_data, monkeypatch, tmp_path):
    """The cache keeps each file's branches with its verdict, so a rerun with the same set
    opens no file to inspect it and still checks each file's branches; the verdicts of
    a traced inspection (whose trees lacked the branches left out) serve only traced
    runs with the same set."""
    monkeypatch.setenv("TAU3MU_CACHE_DIR", str(tmp_path))
    fileset = _fileset(run2_data, RUN2_TREE, "data", "2017")
    first = run_runner(fileset, DsPhiPiProcessor())
    opentrees.release()
    again = run_runner(fileset, DsPhiPiProcessor())
    opentrees.release()
    assert (first.metrics["files_known_good"], again.metrics["files_known_good"]) == (0, 3)
    assert_same_output(first, again)
    monkeypatch.setenv(TRACED_BRANCHES_ENV, "off")
    assert run_runner(fileset, DsPhiPiProcessor()).metrics["files_known_good"] == 0
