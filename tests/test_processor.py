"""The processor against an independent per-event implementation, on every execution path."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from reference_selection import reference_select
from same_output import assert_same_output

from tau3mu.chunks import ChunkError
from tau3mu.config import RUN2_STEPS, RUN3_STEPS, SelectionConfig
from tau3mu.corrections import MuonScaleFactors
from tau3mu.execution import AnalysisOutput, run_dask_awkward, run_runner
from tau3mu.inspection import InputFileError
from tau3mu.processors.dsphipi import DsPhiPiProcessor


def _files(dataset):
    (spec,) = dataset["datasets"].values()
    return [spec["rootpath"] + f for f in spec["files"].split()]


def _only(out: AnalysisOutput) -> str:
    (name,) = out.cutflow
    return name


@pytest.fixture(scope="module")
def run3_output(run3_dataset, fileset_of) -> AnalysisOutput:
    return run_runner(fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=2500)


@pytest.fixture(scope="module")
def run2_output(run2_dataset, fileset_of) -> AnalysisOutput:
    return run_runner(fileset_of(run2_dataset), DsPhiPiProcessor(), chunksize=2500)


@pytest.mark.parametrize("layout", ["run3", pytest.param("run2", marks=pytest.mark.root)])
def test_matches_independent_per_event_implementation(layout, request):
    dataset = request.getfixturevalue(f"{layout}_dataset")
    out = request.getfixturevalue(f"{layout}_output")
    ref = reference_select(_files(dataset), layout)
    name = _only(out)
    assert out.cutflow[name] == ref.cutflow
    snap = out.snapshot[name]
    got = sorted(
        zip(
            ak.to_numpy(snap["run"]).tolist(),
            ak.to_numpy(snap["lumi"]).tolist(),
            ak.to_numpy(snap["event"]).tolist(),
            ak.to_numpy(snap["BestTriplet_mass"]).tolist(),
            strict=True,
        )
    )
    expected = sorted((run, lumi, event, m) for run, lumi, event, _, m in ref.best)
    assert got == expected
    assert out.truth[name] == ref.truth


def test_every_cut_removes_a_visible_share(run3_output):
    (steps,) = run3_output.cutflow.values()
    previous = steps["events"]["candidates"]
    for label in RUN3_STEPS:
        current = steps[label]["candidates"]
        assert current < previous, label
        previous = current
    # most events fail: a realistic skim
    assert steps["best_candidate"]["events"] < 0.2 * steps["events"]["events"]


def test_cutflow_first_row_is_the_input(run3_output, run3_dataset):
    (steps,) = run3_output.cutflow.values()
    assert steps["events"]["events"] == run3_dataset["events"]
    assert steps["best_candidate"]["events"] == len(next(iter(run3_output.snapshot.values())))


@pytest.mark.root
def test_same_events_in_both_layouts_give_each_periods_selection(same_events_both_layouts):
    """One simulation written in both layouts: the same events and candidates come in,
    and each file gets its own period's selection (the reference's, not the other's)."""
    outs = {}
    for layout, path in same_events_both_layouts.items():
        tree = "Tree3Mu/ntuple" if layout == "run2" else "Events"
        fileset = {"same": {"files": {str(path): tree}, "metadata": {"type": "data"}}}
        outs[layout] = run_runner(fileset, DsPhiPiProcessor(), chunksize=4000)
        reference = reference_select(path, layout)
        assert outs[layout].cutflow["same"] == reference.cutflow
        assert outs[layout].truth["same"] == reference.truth
    assert outs["run2"].cutflow["same"]["events"] == outs["run3"].cutflow["same"]["events"]
    assert list(outs["run3"].cutflow["same"]) == ["events", *RUN3_STEPS, "best_candidate"]
    assert list(outs["run2"].cutflow["same"]) == ["events", *RUN2_STEPS, "best_candidate"]


def test_histograms_and_snapshot_are_consistent(run3_output):
    name = _only(run3_output)
    h = run3_output.hists["h_mass"][{"dataset": name, "systematic": "nominal"}]
    mass = ak.to_numpy(run3_output.snapshot[name]["BestTriplet_mass"])
    axis = SelectionConfig().mass_axis
    counts, _ = np.histogram(mass, bins=axis.bins, range=(axis.start, axis.stop))
    np.testing.assert_array_equal(h.values(), counts)
    ncand = run3_output.hists["h_ncand"][{"dataset": name, "systematic": "nominal"}]
    assert ncand.sum().value == len(mass)


@pytest.mark.parametrize("layout", ["run3", pytest.param("run2", marks=pytest.mark.root)])
def test_yields_scale_like_spec(layout, request):
    """Truth-matched best candidates per fb^-1 near the physics' synthetic-data numbers (~1040 Ds+, ~13400 background)
    under the Run 2 selection the generator is tuned to; the Run 3 selection keeps the
    Ds+ yield and, with its tighter flight significance (>= 3.5, not > 2), less
    background."""
    from tau3mu.synth.dataset import EVENTS_PER_INVERSE_FB

    dataset = request.getfixturevalue(f"{layout}_dataset")
    output = request.getfixturevalue(f"{layout}_output")
    lumi = dataset["events"] / EVENTS_PER_INVERSE_FB
    truth = next(iter(output.truth.values()))
    expected_ds = 5000 / 4.8 * lumi
    assert abs(truth["ds"] - expected_ds) < 5 * np.sqrt(expected_ds) + 0.15 * expected_ds
    expected_bkg = 64500 / 4.8 * lumi
    if layout == "run2":
        assert abs(truth["background"] - expected_bkg) < 0.2 * expected_bkg
    else:
        assert 0.3 * expected_bkg < truth["background"] < 0.8 * expected_bkg


LAYOUTS = ["run3", pytest.param("run2", marks=pytest.mark.root)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("executor", ["futures", "dask"])
def test_executors_agree(executor, layout, request, fileset_of, dask_client):
    """The iterative Runner's result, from the futures and Dask executors (the Run 2
    value-match kernel and the Run 3 gathers in worker processes)."""
    dataset = request.getfixturevalue(f"{layout}_dataset")
    out = run_runner(
        fileset_of(dataset),
        DsPhiPiProcessor(),
        executor=executor,
        client=dask_client if executor == "dask" else None,
        workers=2,
        chunksize=2500,
    )
    assert_same_output(request.getfixturevalue(f"{layout}_output"), out)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("distributed", [False, True], ids=["sync", "local-cluster"])
def test_dask_awkward_path_agrees(distributed, layout, request, fileset_of, dask_client):
    dataset = request.getfixturevalue(f"{layout}_dataset")
    out = run_dask_awkward(
        fileset_of(dataset),
        DsPhiPiProcessor(),
        client=dask_client if distributed else None,
        chunksize=2500,
    )
    assert_same_output(request.getfixturevalue(f"{layout}_output"), out)


@pytest.mark.root
def test_only_the_selection_branches_are_read(run2_output, run2_dataset, fileset_of):
    import uproot

    from tau3mu.layouts import RUN2

    tree = uproot.open(_files(run2_dataset)[0])[RUN2.tree]
    needed = {
        *RUN2.candidate().values(),
        *RUN2.muon.values(),
        *RUN2.track.values(),
        *RUN2.event.values(),
        RUN2.hlt_name,
        RUN2.hlt_decision,
        RUN2.l1_name,
        RUN2.l1_decision,
        RUN2.truth,
        # ct of the best candidate (data: no truth origin, no generated particles)
        RUN2.candidate_kinematics["pt"],
        RUN2.candidate_kinematics["flight_dist"],
    }
    read = {column.rsplit("-", 1)[0] for column in run2_output.metrics["columns"]}
    assert read == needed
    assert len(read) < 0.2 * len(tree.keys())

    # the dask-awkward graph needs the same columns, and no more
    import dask_awkward as dak
    from coffea.nanoevents import NanoEventsFactory

    from tau3mu.schemas import Tau3MuSchema

    events = NanoEventsFactory.from_root(
        {_files(run2_dataset)[0]: RUN2.tree}, schemaclass=Tau3MuSchema, mode="dask"
    ).events()
    graph = DsPhiPiProcessor().process(events)
    columns = dak.report_necessary_columns(
        graph["hists"]["h_mass"], graph["cutflow"], graph["snapshot"]
    )
    (graph_columns,) = columns.values()
    assert set(graph_columns) == needed


def test_only_the_selection_branches_are_read_on_run3(run3_output, run3_dataset):
    """The producer's branches the Run 3 selection reads, and no others: no refitted pts,
    no isPF, no track charge, no PVtx table, only the configured trigger bits
    and muon match flags."""
    import uproot

    from tau3mu.layouts import RUN3

    tree = uproot.open(_files(run3_dataset)[0])[RUN3.tree]
    selection = SelectionConfig().run3
    collections = (RUN3.candidate_collection, RUN3.muon_collection, RUN3.track_collection)
    candidate = ("mass", "vtx_chi2", "flight_sig", "mu1_idx", "mu2_idx", "trk_idx", "truth")
    muon = ("pt", "eta", "phi", "energy", "charge", "is_global", "is_medium", "trg_dr", "trg_dpt")
    needed = {
        *(RUN3.candidate()[k] for k in candidate),
        *(RUN3.muon[k] for k in muon),
        *(RUN3.muon_match_flag(path) for path in selection.matched_paths),
        *(b for k, b in RUN3.track.items() if k != "charge"),
        *RUN3.event.values(),
        *(RUN3.counter(c) for c in collections),
        *(RUN3.trigger_bit(name) for name in (*selection.hlt_paths, *selection.l1_seeds)),
    }
    read = {column.rsplit("-", 1)[0] for column in run3_output.metrics["columns"]}
    assert read == needed
    unused = {"Cand2MuTrk_refit_mu1_pt", "Muon_isPF", "Track_charge", "nPVtx", "PVtx_z"}
    assert unused | needed <= set(tree.keys())


def test_scale_factors_on_simulation(tmp_path, pog_sf_file, fileset_of):
    from tau3mu.synth import generate_dataset

    mc = generate_dataset(tmp_path, files=1, events_per_file=4000, seed=8, mc=True)
    sf = MuonScaleFactors(pog_sf_file)
    out = run_runner(fileset_of(mc), DsPhiPiProcessor(scale_factors=sf), chunksize=4000)
    name = _only(out)
    h = out.hists["h_mass"][{"dataset": name}]
    nominal = h[{"systematic": "nominal"}].sum().value
    up = h[{"systematic": "sf_up"}].sum().value
    down = h[{"systematic": "sf_down"}].sum().value
    selected = out.cutflow[name]["best_candidate"]["events"]
    assert down < nominal < up
    assert nominal != pytest.approx(selected, rel=1e-6)  # weights applied, not ones
    report = out.scale_factors[name]
    assert report["muons"] == 2 * selected
    assert 0 < report["clamped"] < report["muons"]  # endcap muons below 3 GeV exist
    snap = out.snapshot[name]
    low_pt = ak.to_numpy((snap["BestTriplet_mu1_pt"] < 3) | (snap["BestTriplet_mu2_pt"] < 3))
    assert report["clamped"] >= low_pt.sum()
    assert {"weight", "weight_sf_up", "weight_sf_down"} <= set(ak.fields(snap))


def test_data_gets_unit_weights(run3_output):
    name = _only(run3_output)
    h = run3_output.hists["h_mass"][{"dataset": name}]
    assert list(run3_output.hists["h_mass"].axes["systematic"]) == ["nominal"]
    np.testing.assert_array_equal(
        h[{"systematic": "nominal"}].variances(), h[{"systematic": "nominal"}].values()
    )


# -- bad input reaching the processor -------------------------------------------------------
def test_unknown_layout_is_a_clear_error(tmp_path):
    import uproot

    path = tmp_path / "other.root"
    with uproot.recreate(path) as f:
        f["Events"] = {"x": np.arange(10)}
    with pytest.raises(InputFileError, match="unknown input layout") as info:
        run_runner({"d": {"files": {str(path): "Events"}}}, DsPhiPiProcessor())
    assert type(info.value) is InputFileError  # found by the inspection, before any chunk
    assert "other.root" in str(info.value)


def test_missing_branch_is_named(tmp_path):
    import uproot

    from tau3mu.synth import simulate
    from tau3mu.synth.run3 import run3_branches

    branches = run3_branches(simulate(1, 0, 100))
    branches["Cand2MuTrk"] = ak.without_field(branches["Cand2MuTrk"], "chi2")
    path = tmp_path / "missing.root"
    with uproot.recreate(path) as f:
        types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
        f.mktree("Events", types, counter_name=lambda c: f"n{c}")
        f["Events"].extend(branches)
    with pytest.raises(
        InputFileError, match=r"lacks needed branch\(es\) \['Cand2MuTrk_chi2'\]"
    ) as info:
        run_runner({"d": {"files": {str(path): "Events"}}}, DsPhiPiProcessor())
    assert type(info.value) is InputFileError  # found by the inspection, before any chunk
    assert "missing.root" in str(info.value)


def test_corrupt_link_is_reported_even_for_a_rejected_candidate(tmp_path):
    """The selection gathers linked muons only for candidates that reach the cuts needing
    them; a link beyond the collection is still a corrupt file, for any candidate."""
    import uproot

    from tau3mu.synth import simulate
    from tau3mu.synth.run3 import run3_branches

    branches = run3_branches(simulate(1, 0, 200))
    cand = branches["Cand2MuTrk"]
    counts = ak.to_numpy(ak.num(cand, axis=1))
    event = int(np.flatnonzero(counts > 0)[0])
    flat_mass = ak.to_numpy(ak.flatten(cand["mass"])).copy()
    flat_link = ak.to_numpy(ak.flatten(cand["mu1_idx"])).copy()
    first = int(np.sum(counts[:event]))
    flat_mass[first] = 0.5  # outside every mass window: rejected however it is linked
    flat_link[first] = 999  # and linked to a muon that does not exist
    cand = ak.with_field(cand, ak.unflatten(flat_mass, counts), "mass")
    branches["Cand2MuTrk"] = ak.with_field(cand, ak.unflatten(flat_link, counts), "mu1_idx")
    path = tmp_path / "badlink.root"
    with uproot.recreate(path) as f:
        types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
        f.mktree("Events", types, counter_name=lambda c: f"n{c}")
        f["Events"].extend(branches)
    with pytest.raises(ChunkError, match=rf"mu1_idx beyond .* event {event} of the chunk") as info:
        run_runner({"d": {"files": {str(path): "Events"}}}, DsPhiPiProcessor())
    assert "badlink.root" in str(info.value)


@pytest.mark.root
def test_unequal_candidate_vectors_are_reported_with_file_branch_and_entries(tmp_path, monkeypatch):
    from tau3mu.synth import run2, simulate

    original = run2.run2_columns

    def corrupt(*args, **kwargs):
        columns = original(*args, **kwargs)
        kind, (offsets, data) = columns["Tr_Pt"]
        counts = np.diff(offsets)
        event = int(np.flatnonzero(counts > 1)[0])
        keep = np.ones(len(data), dtype=bool)
        keep[offsets[event]] = False  # one entry fewer in that event
        new_offsets = offsets.copy()
        new_offsets[event + 1 :] -= 1
        columns["Tr_Pt"] = (kind, (new_offsets, np.ascontiguousarray(data[keep])))
        return columns

    monkeypatch.setattr(run2, "run2_columns", corrupt)
    path = run2.write_run2(tmp_path / "corrupt.root", simulate(2, 0, 300), seed=2)
    with pytest.raises(ChunkError, match=r"Tr_Pt") as info:
        run_runner(
            {"d": {"files": {str(path): "Tree3Mu/ntuple"}}}, DsPhiPiProcessor(), chunksize=100
        )
    message = str(info.value)
    assert "corrupt.root" in message
    assert "entries 0-100" in message
    assert "equal lengths" in message


def _write_run3(path, branches):
    import uproot

    with uproot.recreate(path) as f:
        types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
        f.mktree("Events", types, counter_name=lambda c: f"n{c}")
        f["Events"].extend(branches)
    return path


def test_a_branch_of_the_wrong_type_is_named_with_its_type(tmp_path):
    """A float index (Run 3) is not an index: named before the run, and by the schema."""
    from coffea.nanoevents import NanoEventsFactory

    from tau3mu.inspection import InputFileError
    from tau3mu.schemas import LayoutError, Tau3MuSchema
    from tau3mu.synth import simulate
    from tau3mu.synth.run3 import run3_branches

    branches = run3_branches(simulate(1, 0, 300))
    cand = branches["Cand2MuTrk"]
    branches["Cand2MuTrk"] = ak.with_field(
        cand, ak.values_astype(cand.mu1_idx, np.float32), "mu1_idx"
    )
    path = _write_run3(tmp_path / "float_index.root", branches)
    with pytest.raises(InputFileError) as info:
        run_runner({"d": {"files": {str(path): "Events"}}}, DsPhiPiProcessor())
    message = str(info.value)
    assert str(path) in message
    assert "'Cand2MuTrk_mu1_idx' is float[], expected a counted array of integers" in message
    with pytest.raises(LayoutError, match="'Cand2MuTrk_mu1_idx' is float"):
        NanoEventsFactory.from_root(
            {str(path): "Events"}, schemaclass=Tau3MuSchema, mode="virtual"
        ).events()


@pytest.mark.root
def test_a_run2_scalar_where_a_vector_belongs_is_named(run2_files, tmp_path):
    """Triplet2_Mass written as one double per event (not a std::vector<double>)."""
    import ROOT

    from tau3mu.inspection import InputFileError

    path = tmp_path / "scalar_mass.root"
    ROOT.RDataFrame("Tree3Mu/ntuple", run2_files[0]).Redefine(
        "Triplet2_Mass", "Triplet2_Mass.size() > 0 ? Triplet2_Mass[0] : -1.0"
    ).Snapshot("Tree3Mu/ntuple", str(path))
    with pytest.raises(InputFileError) as info:
        run_runner({"d": {"files": {str(path): "Tree3Mu/ntuple"}}}, DsPhiPiProcessor())
    message = str(info.value)
    assert str(path) in message
    assert "'Triplet2_Mass' is double, expected a std::vector of numbers" in message


def test_run3_trigger_without_the_path_is_an_error_not_an_empty_result(tmp_path):
    """Without the configured HLT bit, or without every L1 seed, the trigger could never
    fire: that is a bad file, not a cutflow of zeros."""
    from tau3mu.chunks import ChunkError
    from tau3mu.inspection import InputFileError
    from tau3mu.layouts import RUN3
    from tau3mu.synth import simulate
    from tau3mu.synth.run3 import run3_branches

    branches = run3_branches(simulate(1, 0, 300))
    path_bit = RUN3.trigger_bit("HLT_DoubleMu4_3_LowMass_v")
    without_path = {k: v for k, v in branches.items() if k != path_bit}
    path = _write_run3(tmp_path / "no_path.root", without_path)
    with pytest.raises(ChunkError) as info:
        run_runner({"d": {"files": {str(path): "Events"}}}, DsPhiPiProcessor())
    message = str(info.value)
    assert message.startswith(f"{path} entries 0-300: ")
    assert f"none of the trigger bits ['{path_bit}'] is in the file" in message

    seeds = [RUN3.trigger_bit(seed) for seed in SelectionConfig().run3.l1_seeds]
    without_seeds = {k: v for k, v in branches.items() if k not in seeds}
    path = _write_run3(tmp_path / "no_seeds.root", without_seeds)
    with pytest.raises(ChunkError) as info:
        run_runner({"d": {"files": {str(path): "Events"}}}, DsPhiPiProcessor())
    assert f"none of the trigger bits {seeds} is in the file" in str(info.value)

    no_bits = {k: v for k, v in branches.items() if not k.startswith("Trigger_HLT_")}
    path = _write_run3(tmp_path / "no_bits.root", no_bits)
    with pytest.raises(
        InputFileError, match="no Trigger_HLT_\\* and Trigger_L1_\\* trigger bits"
    ) as info:
        run_runner({"d": {"files": {str(path): "Events"}}}, DsPhiPiProcessor())
    assert str(path) in str(info.value)


# -- ct and truth origin of simulation, against the reference -------------------------------
@pytest.mark.parametrize("layout", ["run3", pytest.param("run2", marks=pytest.mark.root)])
def test_ct_and_origin_of_simulation_match_the_reference(layout, tmp_path, fileset_of):
    """Simulation generated with origins (--fb): the snapshot's BestTriplet_ct and
    BestTriplet_origin equal the per-event reference's, event by event, and every origin
    occurs."""
    from tau3mu.synth import generate_dataset

    era = "2017" if layout == "run2" else "2022"
    mc = generate_dataset(
        tmp_path, layout=layout, era=era, events_per_file=3000, seed=14, mc=True, f_b=0.3
    )
    out = run_runner(fileset_of(mc), DsPhiPiProcessor(), chunksize=1000)
    ref = reference_select(_files(mc), layout)
    snap = out.snapshot[_only(out)]
    order = np.lexsort((ak.to_numpy(snap["event"]),))
    ref_order = np.argsort([event for _, _, event, _, _ in ref.best], kind="stable")
    ct = ak.to_numpy(snap["BestTriplet_ct"])[order]
    origin = ak.to_numpy(snap["BestTriplet_origin"])[order]
    np.testing.assert_array_equal(ct, np.array([c["ct"] for c in ref.controls])[ref_order])
    np.testing.assert_array_equal(origin, np.array([c["origin"] for c in ref.controls])[ref_order])
    assert set(origin.tolist()) == {0, 1, 2}
    assert np.all(np.isfinite(ct))
    h = out.hists["h_ct"][{"dataset": _only(out), "systematic": "nominal"}]
    np.testing.assert_array_equal(h.project("origin").values(), np.bincount(origin, minlength=3))


def test_data_has_origin_0_and_no_origin_column(run3_output):
    name = _only(run3_output)
    h = run3_output.hists["h_ct"][{"dataset": name, "systematic": "nominal"}]
    counts = h.project("origin").values(flow=True)
    assert counts[0] == run3_output.cutflow[name]["best_candidate"]["events"]
    assert counts[1:].sum() == 0
    assert "BestTriplet_origin" not in ak.fields(run3_output.snapshot[name])
    assert "BestTriplet_ct" in ak.fields(run3_output.snapshot[name])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_normalised_simulation_alike_on_the_dask_awkward_path(
    layout, tmp_path, fileset_of, pog_sf_file
):
    """Simulation with origins, a scale, muon scale factors and pileup weights: the
    dask-awkward graph gives the Runner's histograms, snapshot and weights."""
    from tau3mu.corrections import PileupWeights
    from tau3mu.synth import generate_dataset
    from tau3mu.synth.pileup import write_pileup_weights

    era = "2017" if layout == "run2" else "2022"
    mc = generate_dataset(
        tmp_path, layout=layout, era=era, events_per_file=2000, seed=15, mc=True, f_b=0.3
    )
    (name,) = mc["datasets"]
    pileup = PileupWeights(write_pileup_weights(tmp_path / "pu.json", layout))
    processor = DsPhiPiProcessor(
        scale_factors=MuonScaleFactors(pog_sf_file), scales={name: 0.25}, pileup=pileup
    )
    runner = run_runner(fileset_of(mc), processor, chunksize=700)
    graph = run_dask_awkward(fileset_of(mc), processor, chunksize=700)
    assert_same_output(runner, graph)
    weight = ak.to_numpy(runner.snapshot[name]["weight"])
    assert len(np.unique(weight)) > 100  # SFs and w_PU vary per event
    h = runner.hists["h_mass"][{"dataset": name, "systematic": "nominal"}]
    assert h.sum().value == pytest.approx(weight[_in_mass_range(runner, name)].sum())


def _in_mass_range(out: AnalysisOutput, name: str) -> np.ndarray:
    mass = ak.to_numpy(out.snapshot[name]["BestTriplet_mass"])
    return (mass >= 1.65) & (mass < 2.01)
