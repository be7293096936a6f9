"""The synthetic ntuples: layouts by the real rules, physics by SPEC section 5, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from tau3mu.config import DPLUS_MASS, DS_MASS, PHI_MASS, TRUTH_DPLUS, TRUTH_DS
from tau3mu.layouts import RUN2, RUN3
from tau3mu.synth import generate_dataset, simulate
from tau3mu.synth.dataset import EVENTS_PER_INVERSE_FB

#: uproot's spelling of the branch list's C++ types
UPROOT_TYPENAMES = {
    "uint": "uint32_t",
    "int": "int32_t",
    "std::vector<double>": "std::vector<double>",
    "std::vector<float>": "std::vector<float>",
    "std::vector<int>": "std::vector<int32_t>",
    "std::vector<string>": "std::vector<std::string>",
}


def _files(dataset):
    (spec,) = dataset["datasets"].values()
    return [spec["rootpath"] + f for f in spec["files"].split()]


@pytest.mark.root
def test_run2_has_every_real_branch_with_its_type(run2_dataset, branch_list_file):
    expected = [line.split(None, 1) for line in branch_list_file.read_text().splitlines() if line]
    assert len(expected) == 270
    tree = uproot.open(_files(run2_dataset)[0])[RUN2.tree]
    types = {name: tree[name].typename for name in tree.keys()}
    for name, cpp in expected:
        assert types.get(name) == UPROOT_TYPENAMES[cpp], name
    extra = set(types) - {name for name, _ in expected}
    refit = {RUN2.candidate()[f"mu{i}_refit_{k}"] for i in (1, 2) for k in ("pt", "eta", "phi")}
    assert extra == refit | {RUN2.truth}
    # std::vector branches, not C arrays with counters
    assert not any(name.startswith("n") and name[1:] in types for name in types)


def test_run3_follows_nanoaod_conventions(run3_dataset):
    tree = uproot.open(_files(run3_dataset)[0])[RUN3.tree]
    types = {name: tree[name].typename for name in tree.keys()}
    for collection, fields in (
        (RUN3.candidate_collection, RUN3.candidate_fields),
        (RUN3.muon_collection, RUN3.muon_fields),
        (RUN3.track_collection, RUN3.track_fields),
    ):
        assert types[RUN3.counter(collection)] == "int32_t"
        for field in fields.values():
            branch = RUN3.branch(collection, field)
            assert types[branch].endswith("[]"), branch
    assert types["Cand2MuTrk_mass"] == "float[]"
    assert types["Cand2MuTrk_mu1Idx"] == "int32_t[]"
    assert types["Muon_pt"] == "float[]"
    assert types[RUN3.hlt_path] == "bool"
    assert all(types[seed] == "bool" for seed in RUN3.l1_seeds)
    assert types["run"] == "uint32_t"
    assert types["luminosityBlock"] == "uint32_t"
    assert types["event"] == "uint64_t"


def test_same_seed_same_file_other_seed_other_file():
    a, b, c = simulate(5, 3, 2000), simulate(5, 3, 2000), simulate(6, 3, 2000)
    for key in a.candidates.columns:
        np.testing.assert_array_equal(a.candidates.columns[key], b.candidates.columns[key])
    assert not np.array_equal(a.candidates.columns["mass"][:50], c.candidates.columns["mass"][:50])


def test_file_k_does_not_depend_on_the_number_of_files(tmp_path):
    one = generate_dataset(tmp_path / "a", files=2, events_per_file=1500, seed=4)
    two = generate_dataset(tmp_path / "b", files=3, events_per_file=1500, seed=4, jobs=2)
    for left, right in zip(_files(one), _files(two)[:2], strict=True):
        x = uproot.open(left)["Events"].arrays(library="np")
        y = uproot.open(right)["Events"].arrays(library="np")
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(
                np.concatenate(x[key]) if x[key].dtype == object else x[key],
                np.concatenate(y[key]) if y[key].dtype == object else y[key],
            )


def test_event_numbers_unique_across_files(run3_dataset):
    events = np.concatenate(
        [uproot.open(f)["Events"]["event"].array(library="np") for f in _files(run3_dataset)]
    )
    assert len(np.unique(events)) == len(events)


def test_datasets_json(run3_dataset):
    path = Path(run3_dataset["datasets_json"])
    content = json.loads(path.read_text())
    ((name, spec),) = content.items()
    assert set(spec) == {"rootpath", "files", "treename", "era", "lumi", "type"}
    assert spec["treename"] == "Events"
    assert spec["type"] == "data"
    assert all(Path(spec["rootpath"], f).is_file() for f in spec["files"].split())
    assert spec["lumi"] == pytest.approx(run3_dataset["events"] / EVENTS_PER_INVERSE_FB)


def test_lumi_sets_the_number_of_events(tmp_path):
    info = generate_dataset(tmp_path, files=2, lumi=0.02, seed=2)
    assert info["events"] == pytest.approx(0.02 * EVENTS_PER_INVERSE_FB, rel=0.01)


@pytest.fixture(scope="module")
def big_simulation():
    return simulate(3, 0, 60_000)


def _truth_masses(events, code):
    c = events.candidates.columns
    return c["mass"][c["truth"] == code]


@pytest.mark.parametrize(("code", "mass"), [(TRUTH_DS, DS_MASS), (TRUTH_DPLUS, DPLUS_MASS)])
def test_peaks_at_pdg_masses_with_detector_resolution(big_simulation, code, mass):
    m = _truth_masses(big_simulation, code)
    assert len(m) > 200
    core = m[np.abs(m - mass) < 0.06]
    assert np.median(core) == pytest.approx(mass, abs=0.002)
    # robust width (half the 16-84 % interval): SPEC 5 says 11-12 MeV
    width = 0.5 * np.subtract(*np.percentile(core, [84, 16]))
    assert 0.008 < width < 0.015


def test_phi_peak_of_the_refitted_dimuon(big_simulation):
    from tau3mu.config import MUON_MASS
    from tau3mu.processors.selection import pair_mass

    c = big_simulation.candidates.columns
    true = c["truth"] > 0
    m = pair_mass(
        *(c[f"mu1_refit_{k}"][true] for k in ("pt", "eta", "phi")),
        *(c[f"mu2_refit_{k}"][true] for k in ("pt", "eta", "phi")),
        mass=MUON_MASS,
    )
    m = m[np.isfinite(m)]
    assert np.median(m) == pytest.approx(PHI_MASS, abs=0.001)
    inside = np.mean(np.abs(m - PHI_MASS) < 0.02)
    assert inside > 0.9


def test_refit_failures_are_minus_99(big_simulation):
    pt = big_simulation.candidates.columns["mu1_refit_pt"]
    failed = pt == -99.0
    assert 0.005 < failed.mean() < 0.05
    assert np.all(big_simulation.candidates.columns["mu1_refit_eta"][failed] == -99.0)


def test_several_candidates_per_event_and_shared_muons(big_simulation):
    counts = big_simulation.candidates.counts
    assert counts.mean() > 1.5
    assert np.mean(counts == 0) < 0.02  # the skim keeps events with candidates, a few empty
    ev = np.repeat(np.arange(len(counts)), counts)
    c = big_simulation.candidates.columns
    key = ev * 100 + c["mu1_idx"]
    assert len(np.unique(key)) < len(key)  # the same muon serves several candidates


def test_run3_links_are_valid_indices(run3_dataset):
    arrays = uproot.open(_files(run3_dataset)[0])["Events"].arrays(
        ["nMuon", "nTrack", "Cand2MuTrk_mu1Idx", "Cand2MuTrk_mu2Idx", "Cand2MuTrk_trkIdx"]
    )
    for link, counter in (("mu1Idx", "nMuon"), ("mu2Idx", "nMuon"), ("trkIdx", "nTrack")):
        index = arrays[f"Cand2MuTrk_{link}"]
        assert ak.all(index >= 0)
        assert ak.all(index < arrays[counter])


@pytest.mark.root
def test_run2_candidate_copies_equal_collection_entries(run2_dataset):
    tree = uproot.open(_files(run2_dataset)[0])[RUN2.tree]
    a = tree.arrays(
        [*RUN2.candidate().values(), *RUN2.muon.values(), *RUN2.track.values()], entry_stop=2000
    )
    for prefix in ("Mu01", "Mu02"):
        for cand_key, coll_key in (("Pt", "MuonPt"), ("Eta", "MuonEta"), ("Phi", "MuonPhi")):
            copies = ak.values_astype(a[f"{prefix}_{cand_key}"], np.float32)
            pairs = ak.cartesian([copies, a[coll_key]], nested=True)
            assert ak.all(ak.any(pairs["0"] == pairs["1"], axis=2))
    for cand_key, coll_key in (("Pt", "Track_pt"), ("Eta", "Track_eta"), ("Phi", "Track_phi")):
        pairs = ak.cartesian([a[f"Tr_{cand_key}"], a[coll_key]], nested=True)
        assert ak.all(ak.any(pairs["0"] == pairs["1"], axis=2))


@pytest.mark.root
def test_run2_trigger_names_carry_versions(run2_dataset):
    tree = uproot.open(_files(run2_dataset)[0])[RUN2.tree]
    names = tree[RUN2.hlt_name].array(entry_stop=500)
    decisions = tree[RUN2.hlt_decision].array(entry_stop=500)
    assert ak.all(ak.num(names) == ak.num(decisions))
    assert ak.all(ak.num(names) >= 2)
    flat = set(ak.flatten(names).tolist())
    assert any(n.startswith("HLT_DoubleMu3_Trk_Tau3mu_v") for n in flat)
    assert all("_v" in n for n in flat)
    assert 0 < ak.mean(ak.flatten(decisions)) < 1


def test_generate_command(tmp_path, capsys):
    from tau3mu.cli import main

    assert main(["generate", str(tmp_path), "--files", "1", "--events-per-file", "500"]) == 0
    out = capsys.readouterr().out
    assert "events/s" in out
    assert (tmp_path / "datasets.json").is_file()
