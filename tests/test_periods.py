"""Run periods and eras: each period's cut values, the processor against the reference
under default and shifted cuts, the era's trigger-match branches, and the producers'
variants of both layouts."""

from __future__ import annotations

import json
from typing import Any

import awkward as ak
import hist
import numpy as np
import pytest
import uproot
from reference_selection import reference_select

from tau3mu.config import (
    RUN2_STEPS,
    RUN3_STEPS,
    MassAxis,
    Run2Selection,
    Run3Selection,
    SelectionConfig,
)
from tau3mu.execution import AnalysisOutput, run_runner
from tau3mu.inspection import EraMismatchError, InputFileError, inspect_inputs
from tau3mu.layouts import RUN2, RUN3
from tau3mu.processors.dsphipi import DsPhiPiProcessor

root = pytest.mark.root


def _files(dataset: dict) -> list[str]:
    (spec,) = dataset["datasets"].values()
    return [spec["rootpath"] + f for f in spec["files"].split()]


# -- (a) the physics specification's values, typed out -----------------------------------------


def test_run2_defaults_are_the_specifications():
    c = SelectionConfig().run2
    assert c.hlt_pattern == "HLT_DoubleMu3_Trk_Tau3mu_v"
    assert c.l1_patterns == ("L1_DoubleMu", "L1_TripleMu")
    assert c.mass_window == (1.62, 2.02)
    assert c.min_pv_tracks == 1
    assert c.min_flight_significance == 2
    assert (c.barrel_max_abseta, c.barrel_min_pt) == (1.2, 3.5)
    assert (c.endcap_max_abseta, c.endcap_min_pt) == (2.4, 2.0)
    assert c.track_min_pt == 1.2
    assert c.delta_r_window == (0.0001, 0.8)
    assert (c.max_track_abs_dz, c.max_track_abs_dxy) == (20, 0.3)
    assert c.phi_mass_window == (1.00, 1.04)
    assert c.muon_mass == 0.10566
    assert c.max_trigger_dr == 0.03
    assert c.trigger_match_year is None
    assert (
        c.steps
        == RUN2_STEPS
        == (
            "trigger",
            "mass_window",
            "pv_tracks",
            "flight_significance",
            "acceptance",
            "delta_r",
            "muon_id",
            "track_ip",
            "phi_mass",
            "trigger_match",
        )
    )


def test_run3_defaults_are_the_specifications():
    c = SelectionConfig().run3
    assert c.hlt_paths == ("HLT_DoubleMu4_3_LowMass_v",)
    assert c.l1_seeds == (
        "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4",
        "L1_DoubleMu0er1p4_SQ_OS_dR_Max1p4",
        "L1_DoubleMu4_SQ_OS_dR_Max1p2",
        "L1_DoubleMu4p5_SQ_OS_dR_Max1p2",
        "L1_DoubleMu0er2p0_SQ_OS_dEta_Max1p6",
        "L1_DoubleMu0er2p0_SQ_OS_dEta_Max1p5",
    )
    assert (c.barrel_max_abseta, c.barrel_min_pt) == (1.2, 3.5)
    assert (c.endcap_max_abseta, c.endcap_min_pt) == (2.4, 2.0)
    assert c.min_flight_significance == 3.5
    assert (c.max_track_abs_dz, c.max_track_abs_dxy) == (20, 0.3)
    assert c.phi_mass_window == (0.98, 1.06)
    assert c.mass_window == (1.62, 2.1)
    assert c.matched_paths == (
        "HLT_DoubleMu3_Trk_Tau3mu",
        "HLT_DoubleMu3_TkMu_DsTau3Mu_v",
        "HLT_DoubleMu3_Trk_Tau3mu_NoL1Mass_v",
        "HLT_DoubleMu4_3_LowMass_v",
        "HLT_DoubleMu4_LowMass_Displaced_v",
    )
    assert (c.max_trigger_dr, c.max_trigger_dpt) == (0.03, 0.1)
    assert (
        c.steps
        == RUN3_STEPS
        == (
            "trigger",
            "acceptance",
            "flight_significance",
            "muon_id",
            "track_ip",
            "phi_mass",
            "mass_window",
            "trigger_match",
        )
    )


def test_mass_axis_and_era_defaults():
    config = SelectionConfig()
    assert (config.mass_axis.bins, config.mass_axis.start, config.mass_axis.stop) == (
        62,
        1.65,
        2.01,
    )
    assert config.era is None
    assert config.for_era("2016") is config.run2
    assert config.for_era("2018D") is config.run2
    assert config.for_era("2022F") is config.run3
    assert config.for_era("2024C-v1") is config.run3
    assert config.for_period("run3") is config.run3


def test_configuration_round_trips_through_json_per_period():
    config = SelectionConfig(
        run2=Run2Selection(mass_window=(1.7, 2.0), trigger_match_year="2018"),
        run3=Run3Selection(l1_seeds=("L1_DoubleMu4_SQ_OS_dR_Max1p2",), max_trigger_dpt=0.2),
        mass_axis=MassAxis(40, 1.7, 2.0),
        era="2022C",
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert set(data) == {"run2", "run3", "mass_axis", "era"}
    assert SelectionConfig.from_dict(data) == config
    partial = SelectionConfig.from_dict({"run3": {"min_flight_significance": 5}})
    assert partial.run3.min_flight_significance == 5
    assert partial.run2 == Run2Selection()
    with pytest.raises(ValueError, match=r"unknown run3 setting\(s\) \['min_pv_tracks'\]"):
        SelectionConfig.from_dict({"run3": {"min_pv_tracks": 2}})
    with pytest.raises(ValueError, match=r"unknown selection setting\(s\) \['hlt_pattern'\]"):
        SelectionConfig.from_dict({"hlt_pattern": "HLT_x"})


def test_trigger_match_year_follows_the_era_unless_overridden():
    config = SelectionConfig()
    assert config.trigger_match_year("2018D") == "2018"
    assert config.trigger_match_year("2016") == "2016"
    assert config.trigger_match_year(None) == "2017"
    fixed = SelectionConfig(run2=Run2Selection(trigger_match_year="2018"))
    assert fixed.trigger_match_year("2017B") == "2018"
    assert fixed.trigger_match_year(None) == "2018"


# -- (b) the processor against the reference, default and shifted cuts ------------------------

#: every Run 3 cut moved from its default
SHIFTED_RUN3 = Run3Selection(
    hlt_paths=("HLT_DoubleMu4_3_LowMass_v", "HLT_DoubleMu3_Trk_Tau3mu"),
    l1_seeds=(
        "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4",
        "L1_DoubleMu4_SQ_OS_dR_Max1p2",
        "L1_TripleMu_5SQ_3SQ_0_DoubleMu_5_3_SQ_OS_Mass_Max9",
    ),
    barrel_max_abseta=1.0,
    barrel_min_pt=3.0,
    endcap_max_abseta=2.2,
    endcap_min_pt=2.5,
    min_flight_significance=2.5,
    max_track_abs_dz=0.5,
    max_track_abs_dxy=0.05,
    phi_mass_window=(1.00, 1.04),
    mass_window=(1.7, 2.05),
    matched_paths=("HLT_DoubleMu4_3_LowMass_v", "HLT_DoubleMu3_Trk_Tau3mu"),
    max_trigger_dr=0.02,
    max_trigger_dpt=0.05,
)
#: every Run 2 cut moved from its default
SHIFTED_RUN2 = Run2Selection(
    hlt_pattern="HLT_DoubleMu3_Trk_Tau3mu",
    l1_patterns=("L1_DoubleMu",),
    mass_window=(1.7, 2.05),
    min_pv_tracks=3,
    min_flight_significance=3.0,
    barrel_max_abseta=1.0,
    barrel_min_pt=3.0,
    endcap_max_abseta=2.2,
    endcap_min_pt=2.5,
    track_min_pt=1.5,
    delta_r_window=(0.01, 0.6),
    max_track_abs_dz=0.5,
    max_track_abs_dxy=0.05,
    phi_mass_window=(1.005, 1.035),
    muon_mass=0.1057,
    max_trigger_dr=0.02,
)
SHIFTED = SelectionConfig(run2=SHIFTED_RUN2, run3=SHIFTED_RUN3, mass_axis=MassAxis(40, 1.7, 2.05))


def test_the_shifted_configurations_move_every_cut():
    for shifted, default in ((SHIFTED_RUN2, Run2Selection()), (SHIFTED_RUN3, Run3Selection())):
        moved = {
            name
            for name in shifted.__dataclass_fields__
            if getattr(shifted, name) != getattr(default, name)
        }
        unchanged = set(shifted.__dataclass_fields__) - moved
        assert unchanged <= {"period", "trigger_match_year"}, unchanged


def assert_same_as_reference(out: AnalysisOutput, ref, name: str | None = None) -> None:
    """Cutflow, best candidates (ids and masses), ``h_mass`` and truth counts agree."""
    if name is None:
        (name,) = out.cutflow
    assert out.cutflow[name] == ref.cutflow
    snap = out.snapshot[name]
    got = sorted(
        zip(
            *(ak.to_numpy(snap[k]).tolist() for k in ("run", "lumi", "event")),
            ak.to_numpy(snap["BestTriplet_mass"]).tolist(),
            strict=True,
        )
    )
    assert got == sorted((run, lumi, event, m) for run, lumi, event, _, m in ref.best)
    h = out.hists["h_mass"][{"dataset": name, "systematic": "nominal"}].values()
    np.testing.assert_array_equal(h, ref.h_mass())
    if ref.has_truth:
        assert out.truth[name] == ref.truth
    else:
        assert name not in (out.truth or {})


@pytest.fixture(scope="module")
def run3_default(run3_dataset, fileset_of) -> AnalysisOutput:
    return run_runner(fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=3000)


def test_run3_processor_equals_reference(run3_default, run3_dataset):
    ref = reference_select(_files(run3_dataset), "run3")
    assert_same_as_reference(run3_default, ref)
    assert list(ref.cutflow) == ["events", *RUN3_STEPS, "best_candidate"]
    assert ref.cutflow["best_candidate"]["events"] > 300
    assert sum(ref.truth.values()) > 300


def test_run3_processor_equals_reference_under_shifted_cuts(run3_default, run3_dataset, fileset_of):
    out = run_runner(fileset_of(run3_dataset), DsPhiPiProcessor(SHIFTED), chunksize=3000)
    ref = reference_select(_files(run3_dataset), "run3", SHIFTED)
    assert_same_as_reference(out, ref)
    (name,) = out.cutflow
    assert out.hists["h_mass"].axes["mass"].size == 40
    # the shifted cuts act: every step keeps another number of candidates than by default
    for label in RUN3_STEPS:
        assert out.cutflow[name][label] != run3_default.cutflow[name][label], label
    assert ref.cutflow["best_candidate"]["events"] > 20


#: control histogram -> the reference's quantities it is filled with, per best candidate
CONTROLS = {
    "h_mu_pt": ("mu1_pt", "mu2_pt"),
    "h_mu_eta": ("mu1_eta", "mu2_eta"),
    "h_trk_pt": ("trk_pt",),
    "h_trk_eta": ("trk_eta",),
    "h_phi_mass": ("phi_mass",),
    "h_flight_sig": ("flight_sig",),
    "h_vtx_chi2": ("vtx_chi2",),
}


def assert_controls_as_reference(out: AnalysisOutput, ref: Any) -> None:
    """Every control histogram equals one filled, with hist, from the reference's best
    candidates, bin by bin in (mass, variable), flows included; ``h_ct`` also by truth
    origin."""
    (name,) = out.cutflow
    assert len(ref.controls) == out.cutflow[name]["best_candidate"]["events"]
    masses = np.array([c["mass"] for c in ref.controls], dtype=np.float64)
    for hname, keys in {**CONTROLS, "h_ct": ("ct",)}.items():
        ours = out.hists[hname][{"dataset": name, "systematic": "nominal"}]
        mass, variable = ours.axes[-2], ours.axes[-1]
        assert mass.name == "mass"
        origin = [hist.axis.IntCategory([0, 1, 2])] if hname == "h_ct" else []
        expected = hist.Hist(
            *origin,
            hist.axis.Regular(mass.size, mass.edges[0], mass.edges[-1]),
            hist.axis.Regular(variable.size, variable.edges[0], variable.edges[-1]),
        )
        origins = [np.array([c["origin"] for c in ref.controls])] if origin else []
        for key in keys:
            values = np.array([c[key] for c in ref.controls], dtype=np.float64)
            expected.fill(*origins, masses, values)
        np.testing.assert_array_equal(
            ours.values(flow=True), expected.values(flow=True), err_msg=hname
        )
        if hname != "h_ct":  # ct: NaN (in the flow) for files without flight distance
            assert expected.sum(flow=False) > 0.5 * len(ref.controls), hname  # not in flows


def test_run3_control_histograms_as_the_reference_fills_them(run3_default, run3_dataset):
    assert_controls_as_reference(run3_default, reference_select(_files(run3_dataset), "run3"))


@root
def test_run2_control_histograms_as_the_reference_fills_them(run2_dataset, fileset_of):
    out = run_runner(fileset_of(run2_dataset), DsPhiPiProcessor(), chunksize=3000)
    assert_controls_as_reference(out, reference_select(_files(run2_dataset), "run2"))


@root
def test_run2_processor_equals_reference_under_shifted_cuts(run2_dataset, fileset_of):
    out = run_runner(fileset_of(run2_dataset), DsPhiPiProcessor(SHIFTED), chunksize=3000)
    ref = reference_select(_files(run2_dataset), "run2", SHIFTED)
    default = reference_select(_files(run2_dataset), "run2")
    assert_same_as_reference(out, ref)
    for label in RUN2_STEPS:
        assert ref.cutflow[label] != default.cutflow[label], label
    assert ref.cutflow["best_candidate"]["events"] > 20


@pytest.mark.parametrize("layout", ["run3", pytest.param("run2", marks=root)])
def test_processor_equals_reference_on_every_hand_made_boundary(layout, tmp_path):
    """The hand-made events at each cut's edge (tests/test_reference_selection.py), in a
    file, through the processor (but Run 3 links beyond their collection: for the
    processor a corrupt file, tests/test_processor.py)."""
    from test_reference_selection import _write_run2, _write_run3, boundary_events

    events = [ev for ev in boundary_events(layout) if _links_in_range(ev)]
    path = tmp_path / f"boundaries_{layout}.root"
    (_write_run2 if layout == "run2" else _write_run3)(path, events)
    tree = RUN2.tree if layout == "run2" else RUN3.tree
    out = run_runner({"b": {"files": {str(path): tree}}}, DsPhiPiProcessor(), chunksize=50)
    ref = reference_select(str(path), layout)
    assert_same_as_reference(out, ref, "b")
    assert ref.cutflow["best_candidate"]["events"] > 20


def _links_in_range(event: dict) -> bool:
    """No Run 3 candidate of ``event`` links beyond its muons or tracks."""
    sizes = {"mu1_idx": "muons", "mu2_idx": "muons", "tr_idx": "tracks"}
    return all(
        int(cand[link]) < len(event[owner])
        for cand in event["candidates"]
        for link, owner in sizes.items()
        if link in cand
    )


# -- (c) eras ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run2_2018(tmp_path_factory) -> dict:
    """One small Run 2 dataset of era 2018 (trigger-match branches ``*_2018``)."""
    pytest.importorskip("ROOT")
    from tau3mu.synth import generate_dataset

    out = tmp_path_factory.mktemp("run2_2018")
    return generate_dataset(out, layout="run2", era="2018D", events_per_file=3000, seed=18)


@root
def test_a_2018_dataset_reads_the_2018_trigger_match(run2_2018, fileset_of):
    (path,) = _files(run2_2018)
    branches = set(uproot.open(path)[RUN2.tree].keys())
    assert {"Mu1_dRtriggerMatch_2018", "Mu2_dRtriggerMatch_2018"} <= branches
    assert not {"Mu1_dRtriggerMatch_2017", "Mu2_dRtriggerMatch_2017"} & branches
    out = run_runner(fileset_of(run2_2018), DsPhiPiProcessor(), chunksize=3000)
    assert_same_as_reference(out, reference_select(path, "run2", era="2018D"))
    read = {column.rsplit("-", 1)[0] for column in out.metrics["columns"]}
    assert {"Mu1_dRtriggerMatch_2018", "Mu2_dRtriggerMatch_2018"} <= read


@root
@pytest.mark.parametrize("era", ["2017", "2016G"])
def test_a_run2_file_without_its_eras_trigger_match_is_an_error(run2_2018, era):
    (path,) = _files(run2_2018)
    year = era[:4]
    fileset = {"d": {"files": {path: RUN2.tree}, "metadata": {"era": era}}}
    with pytest.raises(InputFileError) as info:
        run_runner(fileset, DsPhiPiProcessor())
    message = str(info.value)
    assert path in message
    assert f"Mu1_dRtriggerMatch_{year}" in message


@root
def test_a_run2_file_of_another_era_is_a_one_line_error_of_the_run_command(
    run2_2018, tmp_path, capsys
):
    from tau3mu.cli import main

    (path,) = _files(run2_2018)
    folder, name = path.rsplit("/", 1)
    spec = {"d": {"rootpath": folder + "/", "files": name, "treename": RUN2.tree, "era": "2017"}}
    datasets = tmp_path / "datasets.json"
    datasets.write_text(json.dumps(spec))
    args = ["run", str(datasets), "--out", str(tmp_path / "out"), "--no-fit", "--no-progress"]
    assert main([*args, "--executor", "iterative"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert path in err
    assert "Mu1_dRtriggerMatch_2017" in err


@root
def test_the_trigger_match_year_override(run2_2018, run2_dataset, fileset_of):
    (path,) = _files(run2_2018)
    config = SelectionConfig(run2=Run2Selection(trigger_match_year="2018"))
    # a 2018 file in a dataset that says 2017: the override reads the 2018 branches
    fileset = {"d": {"files": {path: RUN2.tree}, "metadata": {"era": "2017"}}}
    out = run_runner(fileset, DsPhiPiProcessor(config), chunksize=3000)
    assert_same_as_reference(out, reference_select(path, "run2", config, era="2017"))
    assert (
        out.cutflow["d"]
        == run_runner(fileset_of(run2_2018), DsPhiPiProcessor()).cutflow[
            next(iter(run2_2018["datasets"]))
        ]
    )
    # and on 2017 files, which have no 2018 branches, it is an error naming the branch
    with pytest.raises(InputFileError, match="Mu1_dRtriggerMatch_2018"):
        run_runner(fileset_of(run2_dataset), DsPhiPiProcessor(config))


def test_a_run3_file_under_a_run2_era_is_an_era_mismatch(run3_files):
    path = run3_files[0]
    for skip in (False, True):  # a mistake of the datasets file: never skipped
        fileset = {"data17": {"files": {path: RUN3.tree}, "metadata": {"era": "2017B"}}}
        with pytest.raises(EraMismatchError) as info:
            inspect_inputs(fileset, skip_bad_files=skip)
        message = str(info.value)
        assert path in message
        assert "'data17'" in message
        assert "Run 3 layout (Events)" in message
        assert "'2017B' is a Run 2 era" in message
    # the run's default era counts for datasets that name none
    processor = DsPhiPiProcessor(SelectionConfig(era="2018"))
    with pytest.raises(EraMismatchError, match="'2018' is a Run 2 era"):
        run_runner({"d": {"files": {path: RUN3.tree}}}, processor)


@root
def test_a_run2_file_under_a_run3_era_is_an_era_mismatch(run2_files):
    fileset = {"d": {"files": {run2_files[0]: RUN2.tree}, "metadata": {"era": "2022F"}}}
    with pytest.raises(EraMismatchError) as info:
        inspect_inputs(fileset)
    assert "Run 2 layout (Tree3Mu/ntuple)" in str(info.value)
    assert "'2022F' is a Run 3 era" in str(info.value)


# -- (d) the Run 3 producer's other tables; no synthetic truth ---------------------------------


def _write_events(path, branches: dict) -> str:
    with uproot.recreate(path) as f:
        types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
        f.mktree(
            RUN3.tree,
            types,
            counter_name=lambda collection: f"n{collection}",
            field_name=lambda collection, field: f"{collection}_{field}",
        )
        f[RUN3.tree].extend(branches)
    return str(path)


def test_a_run3_file_with_the_producers_other_tables_and_no_truth(tmp_path):
    from tau3mu.synth import simulate
    from tau3mu.synth.run3 import run3_branches

    branches = run3_branches(simulate(41, 0, 3000, mc=True), truth=False, mc=True, seed=41)
    n_cand = ak.num(branches["Cand2MuTrk"], axis=1)
    # the signal channel's table, beside the Ds -> phi pi candidates
    tau = ak.zip(
        {
            "mass": ak.values_astype(branches["Cand2MuTrk"]["mass"] + 0.1, np.float32),
            "mu1_idx": branches["Cand2MuTrk"]["mu1_idx"],
            "mu2_idx": branches["Cand2MuTrk"]["mu2_idx"],
            "mu3_idx": ak.values_astype(ak.zeros_like(branches["Cand2MuTrk"]["mu1_idx"]), np.int32),
            "fit_chi2": branches["Cand2MuTrk"]["chi2"],
        }
    )
    branches["Tau3Mu"] = tau
    path = _write_events(tmp_path / "producer.root", branches)
    keys = set(uproot.open(path)[RUN3.tree].keys())
    assert {"nTau3Mu", "Tau3Mu_mass", "nPVtx", "PVtx_z", "nGenPart", "GenPart_pdgId"} <= keys
    assert RUN3.decay_type in keys
    assert RUN3.pileup in keys
    assert RUN3.truth not in keys
    assert int(ak.sum(n_cand)) > 0

    out = run_runner(
        {"d": {"files": {path: RUN3.tree}, "metadata": {"era": "2023D"}}}, DsPhiPiProcessor()
    )
    ref = reference_select(path, "run3")
    assert not ref.has_truth
    assert_same_as_reference(out, ref, "d")
    assert "BestTriplet_truth" not in ak.fields(out.snapshot["d"])
    read = {column.rsplit("-", 1)[0] for column in out.metrics["columns"]}
    assert not {b for b in read if b.startswith(("Tau3Mu_", "PVtx_", "GenPart_", "nTau3Mu"))}


# -- (e) the Run 2 producer version with initial and final L1 decisions, float matches ----------


@root
def test_run2_with_initial_and_final_l1_decisions_and_float_trigger_match(
    run2_files, tmp_path, fileset_of, run2_dataset
):
    import ROOT

    source = run2_files[0]
    path = str(tmp_path / "l1_final.root")
    frame = ROOT.RDataFrame(RUN2.tree, source)
    # the initial decision fires everywhere: only the final one may be read
    frame = frame.Define(
        "Trigger_l1Initialdecision", "std::vector<int>(Trigger_l1decision.size(), 1)"
    ).Define(
        "Trigger_l1Finaldecision",
        "std::vector<int>(Trigger_l1decision.begin(), Trigger_l1decision.end())",
    )
    for branch in ("Mu1_dRtriggerMatch_2017", "Mu2_dRtriggerMatch_2017"):
        frame = frame.Redefine(branch, f"std::vector<float>({branch}.begin(), {branch}.end())")
    columns = [str(c) for c in frame.GetColumnNames() if str(c) != "Trigger_l1decision"]
    options = ROOT.RDF.RSnapshotOptions()
    options.fVector2RVec = False  # std::vector branches, as the producer writes them
    frame.Snapshot(RUN2.tree, path, columns, options)

    tree = uproot.open(path)[RUN2.tree]
    assert "Trigger_l1decision" not in tree.keys()  # noqa: SIM118
    assert tree["Trigger_l1Finaldecision"].typename == "std::vector<int32_t>"
    assert tree["Mu1_dRtriggerMatch_2017"].typename == "std::vector<float>"
    final = tree["Trigger_l1Finaldecision"].array()
    assert ak.any(final == 0)  # reading the initial decision (all 1) would change the result

    out = run_runner({"d": {"files": {path: RUN2.tree}}}, DsPhiPiProcessor(), chunksize=3000)
    ref = reference_select(path, "run2")
    assert_same_as_reference(out, ref, "d")
    # the same events as the original producer's file: the final decision is the one read
    original = reference_select(source, "run2")
    assert ref.cutflow == original.cutflow
    assert ref.cutflow["trigger"] != ref.cutflow["events"]


# -- the dask-awkward path: the dataset's era and the shifted cuts reach it too -----------------


@root
def test_dask_awkward_path_reads_the_eras_branches_and_shifted_cuts(run2_2018, fileset_of):
    from tau3mu.execution import run_dask_awkward

    (path,) = _files(run2_2018)
    out = run_dask_awkward(fileset_of(run2_2018), DsPhiPiProcessor(SHIFTED), chunksize=3000)
    assert_same_as_reference(out, reference_select(path, "run2", SHIFTED, era="2018"))
    read = {column.rsplit("-", 1)[0] for column in out.metrics["columns"]}
    assert "Mu1_dRtriggerMatch_2018" in read


def test_dask_awkward_path_under_shifted_run3_cuts(run3_dataset, fileset_of):
    from tau3mu.execution import run_dask_awkward

    out = run_dask_awkward(fileset_of(run3_dataset), DsPhiPiProcessor(SHIFTED), chunksize=3000)
    assert_same_as_reference(out, reference_select(_files(run3_dataset), "run3", SHIFTED))


def test_an_era_mismatch_is_a_one_line_error_of_the_run_command(run3_files, tmp_path, capsys):
    from tau3mu.cli import main

    folder, name = run3_files[0].rsplit("/", 1)
    spec = {"d": {"rootpath": folder + "/", "files": name, "treename": RUN3.tree, "era": "2018"}}
    datasets = tmp_path / "datasets.json"
    datasets.write_text(json.dumps(spec))
    args = ["run", str(datasets), "--out", str(tmp_path / "out"), "--no-fit", "--no-progress"]
    assert main([*args, "--executor", "iterative", "--skip-bad-files"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert run3_files[0] in err
    assert "Run 3 layout (Events)" in err
    assert "'2018' is a Run 2 era" in err
