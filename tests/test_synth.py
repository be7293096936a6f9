"""The synthetic ntuples: layouts by the real rules, physics by docs/physics.md, "Synthetic data", determinism."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from tau3mu.config import (
    DPLUS_MASS,
    DS_MASS,
    MUON_MASS,
    PHI_MASS,
    TRUTH_BACKGROUND,
    TRUTH_DPLUS,
    TRUTH_DS,
    Run2Selection,
    SelectionConfig,
)
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
    types = {name: tree[name].typename for name in tree.keys()}  # noqa: SIM118
    for name, cpp in expected:
        assert types.get(name) == UPROOT_TYPENAMES[cpp], name
    extra = set(types) - {name for name, _ in expected}
    refit = {RUN2.candidate()[f"mu{i}_refit_{k}"] for i in (1, 2) for k in ("pt", "eta", "phi")}
    assert extra == refit | {RUN2.truth}
    assert all(types[name] == "std::vector<double>" for name in refit)
    assert types[RUN2.truth] == "std::vector<int32_t>"
    # std::vector branches, not C arrays with counters
    assert not any(name.startswith("n") and name[1:] in types for name in types)


def test_run3_follows_nanoaod_conventions(run3_dataset):
    """The producer's layout: counters and C arrays, int32 links, one uint8 bit per HLT
    path and L1 seed, one int32 match flag per HLT path and muon."""
    tree = uproot.open(_files(run3_dataset)[0])[RUN3.tree]
    types = {name: tree[name].typename for name in tree.keys()}  # noqa: SIM118
    for collection, fields in (
        (RUN3.candidate_collection, RUN3.candidate_fields),
        (RUN3.muon_collection, RUN3.muon_fields),
        (RUN3.track_collection, RUN3.track_fields),
    ):
        assert types[RUN3.counter(collection)] == "int32_t"
        for key, field in fields.items():
            branch = RUN3.branch(collection, field)
            optional = collection == RUN3.candidate_collection and key in RUN3.optional_candidate
            if optional and branch not in types:  # the flight distance: with --fb only
                continue
            assert types[branch].endswith("[]"), branch
    assert types["Cand2MuTrk_mass"] == "float[]"
    assert types["Cand2MuTrk_flightDistBSSig"] == "float[]"
    for link in ("mu1_idx", "mu2_idx", "tr_idx"):
        assert types[f"Cand2MuTrk_{link}"] == "int32_t[]"
    assert types["Muon_pt"] == "float[]"
    assert types["Muon_energy"] == "float[]"
    assert types["Muon_charge"] == "int32_t[]"
    assert types["Muon_isMedium"] == "bool[]"
    assert types["Muon_trgDR"] == types["Muon_trgDPT"] == "float[]"
    assert all(types[RUN3.trigger_bit(p)] == "uint8_t" for p in RUN3.hlt_paths)
    assert all(types[RUN3.trigger_bit(s)] == "uint8_t" for s in RUN3.l1_seeds)
    assert all(types[RUN3.muon_match_flag(p)] == "int32_t[]" for p in RUN3.hlt_paths)
    assert {"nCand2MuTrk", "nMuon", "nTrack", "nPVtx"} <= set(types)
    assert types[RUN3.truth] == "int32_t[]"
    assert types["run"] == "uint32_t"
    assert types["luminosityBlock"] == "uint32_t"
    assert types["event"] == "uint64_t"
    # data: no simulation branches
    assert not {"nGenPart", RUN3.decay_type, RUN3.pileup} & set(types)


def test_run3_simulation_has_the_producers_truth_branches(tmp_path):
    from tau3mu.synth.run3 import write_run3

    path = write_run3(tmp_path / "mc.root", simulate(4, 0, 2000, mc=True), mc=True, seed=4)
    tree = uproot.open(path)[RUN3.tree]
    types = {name: tree[name].typename for name in tree.keys()}  # noqa: SIM118
    assert types[RUN3.decay_type] == "int32_t[]"
    assert types[RUN3.pileup] == "float"
    for field in RUN3.gen_fields:
        assert RUN3.branch(RUN3.gen_collection, field) in types, field
    a = tree.arrays(["nGenPart", "GenPart_pdgId", RUN3.decay_type])
    assert ak.any(ak.num(a["GenPart_pdgId"]) == 5)
    assert set(np.abs(ak.to_numpy(ak.flatten(a["GenPart_pdgId"])))) <= {431, 411, 333, 211, 13}
    assert ak.sum(a[RUN3.decay_type] == 1) == 2 * ak.sum(a["nGenPart"] == 5)


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
    assert name.endswith("_synth")
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


def _pair_mass(pt1, eta1, phi1, pt2, eta2, phi2, mass: float = MUON_MASS) -> np.ndarray:
    """Invariant mass of two particles of equal mass, plain numpy in float64."""
    p = []
    for pt, eta, phi in ((pt1, eta1, phi1), (pt2, eta2, phi2)):
        pt, eta, phi = (np.asarray(x, dtype=np.float64) for x in (pt, eta, phi))
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        p.append((px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)))
    px, py, pz, e = (a + b for a, b in zip(*p, strict=True))
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def _robust_width(values: np.ndarray) -> float:
    """Half the 16-84 % interval: the gaussian sigma of the core, blind to tails."""
    return 0.5 * float(np.subtract(*np.percentile(values, [84, 16])))


@pytest.mark.parametrize(("code", "mass"), [(TRUTH_DS, DS_MASS), (TRUTH_DPLUS, DPLUS_MASS)])
def test_peaks_at_pdg_masses_with_detector_resolution(big_simulation, code, mass):
    m = _truth_masses(big_simulation, code)
    assert len(m) > 200
    core = m[np.abs(m - mass) < 0.06]
    width = _robust_width(core)
    assert np.median(core) == pytest.approx(mass, abs=4 * 1.25 * width / np.sqrt(len(core)))
    # the physics' synthetic-data numbers: 11-12 MeV
    assert 0.0100 < width < 0.0130


def test_dimuon_resolution_before_and_after_the_refit(big_simulation):
    c = big_simulation.candidates.columns
    true = c["truth"] > 0
    raw = _pair_mass(
        *(c[f"mu1_{k}"][true] for k in ("pt", "eta", "phi")),
        *(c[f"mu2_{k}"][true] for k in ("pt", "eta", "phi")),
    )
    raw_width = _robust_width(raw[np.abs(raw - PHI_MASS) < 0.06])
    assert 0.009 < raw_width < 0.013  # the physics' synthetic-data numbers: about 11 MeV
    ok = true & (c["mu1_refit_pt"] > 0) & (c["mu2_refit_pt"] > 0)
    refit = _pair_mass(
        *(c[f"mu1_refit_{k}"][ok] for k in ("pt", "eta", "phi")),
        *(c[f"mu2_refit_{k}"][ok] for k in ("pt", "eta", "phi")),
    )
    assert _robust_width(refit[np.abs(refit - PHI_MASS) < 0.06]) < 0.7 * raw_width


def test_phi_peak_of_the_refitted_dimuon(big_simulation):
    from tau3mu.config import MUON_MASS

    c = big_simulation.candidates.columns
    true = c["truth"] > 0
    m = _pair_mass(
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


def test_run3_links_are_valid_indices(run3_files):
    arrays = uproot.open(run3_files[0])["Events"].arrays(
        ["nMuon", "nTrack", "Cand2MuTrk_mu1_idx", "Cand2MuTrk_mu2_idx", "Cand2MuTrk_tr_idx"]
    )
    for link, counter in (("mu1_idx", "nMuon"), ("mu2_idx", "nMuon"), ("tr_idx", "nTrack")):
        index = arrays[f"Cand2MuTrk_{link}"]
        assert ak.all(index >= 0)
        assert ak.all(index < arrays[counter])
    assert ak.all(arrays["Cand2MuTrk_mu1_idx"] != arrays["Cand2MuTrk_mu2_idx"])
    # the collections hold muons and tracks that no candidate uses
    used = ak.num(arrays["Cand2MuTrk_tr_idx"]) > 0
    n_used_tracks = ak.Array(
        [len(set(x)) for x in ak.to_list(arrays["Cand2MuTrk_tr_idx"][used][:500])]
    )
    assert ak.any(n_used_tracks < arrays["nTrack"][used][:500])


def test_trigger_match_dr_in_unit_interval(big_simulation):
    c = big_simulation.candidates.columns
    for key in ("mu1_trig_dr", "mu2_trig_dr"):
        assert np.all((c[key] >= 0) & (c[key] <= 1))
        assert 0.05 < np.mean(c[key] >= 0.03) < 0.5


@pytest.mark.root
def test_run2_candidate_copies_equal_collection_entries(run2_files):
    tree = uproot.open(run2_files[0])[RUN2.tree]
    a = tree.arrays(
        [*RUN2.candidate().values(), *RUN2.muon.values(), *RUN2.track.values()], entry_stop=2000
    )
    for prefix in ("Mu01", "Mu02"):
        for cand_key, coll_key in (("Pt", "MuonPt"), ("Eta", "MuonEta"), ("Phi", "MuonPhi")):
            copies = a[f"{prefix}_{cand_key}"]
            # exact copies: the double is the float's value, so rounding back is lossless
            assert ak.all(
                ak.values_astype(ak.values_astype(copies, np.float32), np.float64) == copies
            )
            pairs = ak.cartesian([ak.values_astype(copies, np.float32), a[coll_key]], nested=True)
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


def test_run3_zlib_is_standard_zlib_whichever_library_deflates(tmp_path):
    from tau3mu.synth.run3 import codec, write_run3

    events = simulate(2, 0, 3000)
    paths = {}
    for deflate in ("isal", "zlib"):
        paths[deflate] = write_run3(tmp_path / f"{deflate}.root", events, deflate=deflate)
        f = uproot.open(paths[deflate])
        assert f.file.fCompress == 101  # ROOT's ZLIB, level 1
        # every basket of a large branch is compressed, with the zlib (b"ZL") header
        seek = int(f[RUN3.tree]["Muon_pt"].member("fBasketSeek")[0])
        with open(paths[deflate], "rb") as raw:
            raw.seek(seek)
            key = raw.read(4096)
        keylen = int.from_bytes(key[14:16], "big")  # after Nbytes, Version, Objlen, Datime
        assert key[keylen : keylen + 2] == b"ZL"
    a = uproot.open(paths["isal"])[RUN3.tree].arrays(library="np")
    b = uproot.open(paths["zlib"])[RUN3.tree].arrays(library="np")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(
            np.concatenate(a[key]) if a[key].dtype == object else a[key],
            np.concatenate(b[key]) if b[key].dtype == object else b[key],
        )
    assert type(codec("zlib", 1)).__name__ == "IsalZLIB"
    assert type(codec("zlib", 1, deflate="zlib")) is uproot.ZLIB
    with pytest.raises(ValueError, match="deflate"):
        codec("zlib", 1, deflate="snappy")


def test_generate_command(tmp_path, capsys):
    from tau3mu.cli import main

    assert main(["generate", str(tmp_path), "--files", "1", "--events-per-file", "500"]) == 0
    out = capsys.readouterr().out
    assert "events/s" in out
    assert (tmp_path / "datasets.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--era", "2017"], "--era 2017: a run2 era, but --layout is run3"),
        (["--layout", "run2", "--era", "2022F"], "--era 2022F: a run3 era, but --layout is run2"),
        (["--era", "2019"], "--era 2019: era '2019': expected a year of Run 2"),
    ],
)
def test_generate_command_refuses_an_era_of_the_other_period(tmp_path, capsys, args, message):
    from tau3mu.cli import main

    assert main(["generate", str(tmp_path), "--files", "1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tau3mu generate: {message}")
    assert err.count("\n") == 1
    assert not list(tmp_path.iterdir())  # refused before any work


@pytest.mark.root
def test_same_events_both_layouts_hold_the_same_values(same_events_both_layouts):
    r2 = uproot.open(same_events_both_layouts["run2"])[RUN2.tree]
    r3 = uproot.open(same_events_both_layouts["run3"])[RUN3.tree]
    c2 = RUN2.candidate()
    # the producer's names, spelled out: refitted pts are written though not selected on
    pairs = {
        "mass": "Cand2MuTrk_mass",
        "vtx_chi2": "Cand2MuTrk_chi2",
        "flight_sig": "Cand2MuTrk_flightDistBSSig",
        "mu1_refit_pt": "Cand2MuTrk_refit_mu1_pt",
        "mu2_refit_pt": "Cand2MuTrk_refit_mu2_pt",
    }
    for key, branch in {**pairs, "truth": "Cand2MuTrk_truth"}.items():
        a = ak.flatten(r2[c2[key] if key != "truth" else RUN2.truth].array())
        b = ak.flatten(r3[branch].array())
        np.testing.assert_array_equal(ak.to_numpy(a), ak.to_numpy(b).astype(np.float64))
    muon = {"pt": "pt", "eta": "eta", "phi": "phi", "is_global": "isGlobal", "is_pf": "isPF"}
    for key, field in muon.items():
        a = ak.flatten(r2[RUN2.muon[key]].array())
        b = ak.flatten(r3[f"Muon_{field}"].array())
        np.testing.assert_array_equal(
            ak.to_numpy(a), ak.to_numpy(b).astype(a.type.content.primitive)
        )
    np.testing.assert_array_equal(r2["evt"].array(library="np"), r3["event"].array(library="np"))
    # Run 3 keeps the trigger match on the muon: the linked muon's trgDR, where matched,
    # is the Run 2 candidate's Mu2_dRtriggerMatch
    run2_dr = r2[c2["mu2_trig_dr"]].array()
    muon_dr = r3["Muon_trgDR"].array()[r3["Cand2MuTrk_mu2_idx"].array()]
    matched = muon_dr >= 0
    assert 0.3 < ak.mean(matched) < 1
    np.testing.assert_array_equal(
        ak.to_numpy(ak.flatten(muon_dr[matched])),
        ak.to_numpy(ak.flatten(run2_dr[matched])).astype(np.float32),
    )
    assert ak.all(muon_dr[~matched] == -1.0)


# -- yields after the full Run 2 selection (an independent numpy implementation) ----------
def _best_candidates(events, c: Run2Selection | None = None):
    """Cutflow (events, candidates after each step) and the best candidates' index, under
    the Run 2 selection the generator's yields are tuned to."""
    c = c or SelectionConfig().run2
    from tau3mu.synth.physics import HLT_PATHS

    cand, mu, trk = events.candidates.columns, events.muons.columns, events.tracks.columns
    ev = np.repeat(np.arange(len(events)), events.candidates.counts)
    g1 = events.muons.offsets[ev] + cand["mu1_idx"]
    g2 = events.muons.offsets[ev] + cand["mu2_idx"]
    gt = events.tracks.offsets[ev] + cand["trk_idx"]
    f = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in cand.items()}

    def accepted(pt, eta):
        a = np.abs(eta)
        return ((a < c.barrel_max_abseta) & (pt > c.barrel_min_pt)) | (
            (a >= c.barrel_max_abseta) & (a < c.endcap_max_abseta) & (pt > c.endcap_min_pt)
        )

    def dr(x, y):
        dphi = (f[f"{x}_phi"] - f[f"{y}_phi"] + np.pi) % (2 * np.pi) - np.pi
        d = np.hypot(f[f"{x}_eta"] - f[f"{y}_eta"], dphi)
        return (d > c.delta_r_window[0]) & (d < c.delta_r_window[1])

    l1 = np.zeros(len(events), dtype=bool)
    for name, fired in events.l1.items():
        if any(p in name for p in c.l1_patterns):
            l1 |= fired
    trigger = events.hlt[HLT_PATHS[0]] & l1
    refit = [f[f"mu{i}_refit_{k}"] for i in (1, 2) for k in ("pt", "eta", "phi")]
    ok = (refit[0] > 0) & (refit[3] > 0)
    m_phi = np.full(len(ev), np.nan)
    m_phi[ok] = _pair_mass(*(x[ok] for x in refit), mass=c.muon_mass)
    steps = {
        "trigger": trigger[ev],
        "mass_window": (f["mass"] > c.mass_window[0]) & (f["mass"] < c.mass_window[1]),
        "pv_tracks": f["pv_ntracks"] > c.min_pv_tracks,
        "flight_significance": f["flight_sig"] > c.min_flight_significance,
        "acceptance": accepted(f["mu1_pt"], f["mu1_eta"])
        & accepted(f["mu2_pt"], f["mu2_eta"])
        & (f["trk_pt"] > c.track_min_pt),
        "delta_r": dr("mu1", "mu2") & dr("mu1", "trk") & dr("mu2", "trk"),
        "muon_id": mu["is_global"][g1] & mu["is_pf"][g1] & mu["is_global"][g2] & mu["is_pf"][g2],
        "track_ip": (np.abs(trk["dz"][gt]) < c.max_track_abs_dz)
        & (np.abs(trk["dxy"][gt]) < c.max_track_abs_dxy),
        "phi_mass": (m_phi > c.phi_mass_window[0]) & (m_phi < c.phi_mass_window[1]),
        "trigger_match": (f["mu1_trig_dr"] < c.max_trigger_dr)
        & (f["mu2_trig_dr"] < c.max_trigger_dr),
    }
    passed = np.ones(len(ev), dtype=bool)
    cutflow = {"events": (len(events), len(ev))}
    for label, ok in steps.items():
        passed &= ok
        cutflow[label] = (len(np.unique(ev[passed])), int(passed.sum()))
    idx = np.flatnonzero(passed)
    idx = idx[np.lexsort((idx, f["vtx_chi2"][idx], ev[idx]))]
    best = idx[np.r_[True, ev[idx][1:] != ev[idx][:-1]]] if len(idx) else idx
    return cutflow, best


@pytest.fixture(scope="module")
def selected():
    """About 0.5 fb^-1 of data through the full selection."""
    events = simulate(21, 0, EVENTS_PER_INVERSE_FB // 2)
    cutflow, best = _best_candidates(events)
    return events, cutflow, best, 0.5


def test_every_selection_step_removes_a_visible_share(selected):
    _, cutflow, _, _ = selected
    labels = list(cutflow)
    for before, after in itertools.pairwise(labels):
        kept = cutflow[after][1] / cutflow[before][1]
        assert 0.2 < kept < 0.995, (after, kept)
    # most skimmed events fail the offline selection
    assert 0.03 < cutflow["trigger_match"][0] / cutflow["events"][0] < 0.2


def test_yields_after_the_selection_follow_spec(selected):
    events, _, best, lumi = selected
    axis = SelectionConfig().mass_axis
    mass = events.candidates.columns["mass"][best]
    truth = events.candidates.columns["truth"][best]
    window = (mass > axis.start) & (mass < axis.stop)
    n_ds = int(np.sum(window & (truth == TRUTH_DS)))
    n_dplus = int(np.sum(window & (truth == TRUTH_DPLUS)))
    expected_ds = 5000 / 4.8 * lumi
    assert abs(n_ds - expected_ds) < 5 * np.sqrt(expected_ds) + 0.1 * expected_ds
    assert n_dplus / n_ds == pytest.approx(0.35, abs=0.08)
    assert np.sum(window) == pytest.approx(65_000 / 4.8 * lumi, rel=0.12)
    # background falling roughly linearly: ~1270 -> ~810 per bin for 4.8 fb^-1
    bkg, _ = np.histogram(
        mass[truth == TRUTH_BACKGROUND], bins=axis.bins, range=(axis.start, axis.stop)
    )
    scale = 4.8 / lumi
    first, last = bkg[:10].mean() * scale, bkg[-10:].mean() * scale
    assert 1000 < first < 1450
    assert 650 < last < 950
    slope = np.polyfit(np.arange(axis.bins), bkg, 1)[0]
    assert slope < 0


def test_simulation_is_mostly_ds(tmp_path):
    events = simulate(1, 0, 3000, mc=True)
    assert np.mean(events.kind == TRUTH_DS) > 0.6
    assert np.mean(events.kind == TRUTH_DPLUS) < np.mean(events.kind == TRUTH_DS)


def test_missing_root_is_a_clear_error(monkeypatch, tmp_path):
    import sys

    from tau3mu.synth import run2

    run2.load_root.cache_clear()
    monkeypatch.setitem(sys.modules, "ROOT", None)
    try:
        with pytest.raises(run2.ROOTMissingError, match=r"pip install 'tau3mu\[validation\]'"):
            run2.write_run2(tmp_path / "x.root", simulate(1, 0, 10))
    finally:
        run2.load_root.cache_clear()


def _chi2_per_bin(values: np.ndarray, edges: np.ndarray, cdf) -> float:
    """chi2 / bins of a histogram of ``values`` against the distribution ``cdf``."""
    counts, _ = np.histogram(values, bins=edges)
    expected = len(values) * np.diff([cdf(x) for x in edges])
    return float(np.sum((counts - expected) ** 2 / expected)) / len(counts)


def test_compiled_random_draws_follow_their_distributions():
    """The kernels' inline generator (xoshiro256++, ziggurat normals): moments and shapes."""
    import math

    import numba

    from tau3mu.synth import rng

    @numba.njit
    def draw(state, out):
        for k in range(out.shape[1]):
            out[0, k] = rng.uniform(state)
            out[1, k] = rng.normal(state)
            out[2, k] = rng.exponential(state)
            out[3, k], out[4, k] = rng.uniform_pair(state)

    n = 1_000_000
    state = rng.rng_state(np.random.default_rng(17))
    out = np.empty((5, n), dtype=np.float32)
    draw(state.copy(), out)
    again = np.empty_like(out)
    draw(state.copy(), again)
    assert np.array_equal(out, again)  # the state alone decides the numbers
    u, normal, expo = (out[k].astype(np.float64) for k in range(3))
    for values in (u, out[3], out[4]):
        assert _chi2_per_bin(values, np.linspace(0, 1, 51), lambda x: x) < 2
    assert abs(np.corrcoef(out[3], out[4])[0, 1]) < 5 / np.sqrt(n)
    normal_cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    assert _chi2_per_bin(normal, np.linspace(-4, 4, 81), normal_cdf) < 2
    assert normal.var() == pytest.approx(1, abs=0.005)
    # the ziggurat's tail beyond r = 3.654
    tail = 2 * (1 - normal_cdf(3.7))
    assert np.mean(np.abs(normal) > 3.7) == pytest.approx(tail, rel=0.25)
    assert _chi2_per_bin(expo, np.linspace(0, 8, 81), lambda x: 1 - math.exp(-x)) < 2
    assert expo.min() > 0
    assert np.mean(expo > 5) == pytest.approx(math.exp(-5), rel=0.1)


# -- the normalisation's truth: origin, flight distance, efficiency ratio -------------------
def _tree_arrays(dataset, tree, names=None):
    parts = [uproot.open(f)[tree].arrays(names, library="ak") for f in _files(dataset)]
    return ak.concatenate(parts)


def test_new_draws_leave_every_existing_branch_as_it_was(tmp_path):
    """--fb draws from its own generator: a Run 3 data file keeps every branch of the file
    written without it, value for value, and only gains the flight distances."""
    plain = generate_dataset(tmp_path / "plain", files=1, events_per_file=2000, seed=9)
    drawn = generate_dataset(tmp_path / "fb", files=1, events_per_file=2000, seed=9, f_b=0.3)
    x, y = (_tree_arrays(d, RUN3.tree) for d in (plain, drawn))
    assert set(y.fields) - set(x.fields) == {
        "Cand2MuTrk_flightDistBS",
        "Cand2MuTrk_flightDistBSErr",
    }
    for field in x.fields:
        assert ak.all(ak.ravel(x[field]) == ak.ravel(y[field])), field


@pytest.fixture(scope="module")
def closure_samples(tmp_path_factory, pog_sf_file):
    """Data of 2022C with R = 0.85 and f_B = 0.25, and simulation of 2022, both through
    the 2017 scale factors (--muon-sf), and the run of both with those scale factors."""
    from tau3mu.cli import main

    folder = tmp_path_factory.mktemp("closure")
    common = ["generate", str(folder), "--layout", "run3", "--fb", "0.25", "--jobs", "1"]
    common += ["--muon-sf", str(pog_sf_file)]
    assert main([*common, "--era", "2022C", "--lumi", "0.5", "--files", "2", "--seed", "31",
                 "--efficiency-ratio", "0.85"]) == 0  # fmt: skip
    assert (
        main([*common, "--era", "2022", "--mc", "--events-per-file", "60000", "--seed", "32"]) == 0
    )
    out = folder / "out"
    run = ["run", str(folder / "datasets.json"), "--out", str(out), "--muon-sf", str(pog_sf_file)]
    run += ["--pileup", str(folder / "pileup_weights.json"), "--executor", "iterative"]
    assert main([*run, "--no-fit", "--no-progress"]) == 0
    with uproot.open(out / "snapshot.root") as f:
        snapshot = f["ntuple"].arrays(library="np")
    return folder, snapshot


def test_truth_json_and_simulations_xsec_and_ngen(closure_samples, pog_sf_file):
    from tau3mu.synth.physics import Tuning, skim_survival
    from tau3mu.synth.truth import largest_event_sf

    folder, _ = closure_samples
    truth = json.loads((folder / "truth.json").read_text())
    datasets = json.loads((folder / "datasets.json").read_text())
    (data,) = [k for k, v in truth.items() if v["type"] == "data"]
    (mc,) = [k for k, v in truth.items() if v["type"] == "mc"]
    assert truth[data]["efficiency_ratio"] == 0.85
    assert truth[data]["f_b"] == truth[mc]["f_b"] == 0.25
    assert truth[mc]["muon_sf"] == str(pog_sf_file.resolve())
    # thinning removed signal events from the 0.5 fb^-1 of data
    assert truth[data]["events"] < 0.5 * EVENTS_PER_INVERSE_FB
    assert datasets[mc]["ngen"] == truth[mc]["raw_events"] > truth[mc]["events"] == 60_000
    assert "lumi" not in datasets[mc]  # normalised to the data of its era
    # by hand: data Ds per pb^-1 over simulation's Ds share and the largest SF product
    tuning = Tuning()
    sf_max = _largest_nominal_sf(pog_sf_file)
    assert largest_event_sf(_sf(pog_sf_file)) == sf_max**2
    per_pb = EVENTS_PER_INVERSE_FB / 1000 * tuning.ds_fraction / skim_survival()
    assert datasets[mc]["xsec"] == pytest.approx(per_pb / (sf_max**2 * tuning.mc_ds_fraction))
    assert 0.6 < skim_survival() < 0.8


def _sf(path):
    from tau3mu.corrections import MuonScaleFactors

    return MuonScaleFactors(path)


def _largest_nominal_sf(path):
    """The largest nominal scale factor, by correctionlib at every bin's centre."""
    import correctionlib

    correction = correctionlib.CorrectionSet.from_file(str(path))["NUM_MediumID_DEN_TrackerMuons"]
    node = json.loads(path.read_text())["corrections"]
    (data,) = [c["data"] for c in node if c["name"] == "NUM_MediumID_DEN_TrackerMuons"]
    eta_edges = np.array(data["edges"])
    pt_edges = np.array(data["content"][0]["edges"])
    pt_edges[np.isinf(pt_edges)] = pt_edges[np.isfinite(pt_edges)].max() + 10
    eta, pt = np.meshgrid(
        0.5 * (eta_edges[1:] + eta_edges[:-1]), 0.5 * (pt_edges[1:] + pt_edges[:-1])
    )
    return float(np.max(correction.evaluate(eta.ravel(), pt.ravel(), "nominal")))


def test_efficiency_ratio_and_fb_close_on_the_truth(closure_samples):
    """R from true Ds+ counts (data) over their summed weights (simulation: xsec x L /
    ngen x SFs x w_PU), within 4 of its statistical errors of 0.85; simulation's share of
    true Ds+ from b hadrons within 4 binomial errors of 0.25."""
    _, snapshot = closure_samples
    in_range = (snapshot["BestTriplet_mass"] >= 1.65) & (snapshot["BestTriplet_mass"] < 2.01)
    true_ds = in_range & (snapshot["BestTriplet_truth"] == TRUTH_DS)
    is_mc = snapshot["dataset"] == 1
    n_data = np.count_nonzero(true_ds & ~is_mc)
    w = snapshot["weight"][true_ds & is_mc]
    ratio = n_data / w.sum()
    error = ratio * np.hypot(1 / np.sqrt(n_data), np.sqrt((w**2).sum()) / w.sum())
    assert abs(ratio - 0.85) < 4 * error, (ratio, error)
    assert error < 0.07
    origin = snapshot["BestTriplet_origin"][true_ds & is_mc]
    f_b = np.mean(origin == 2)
    assert abs(f_b - 0.25) < 4 * np.sqrt(0.25 * 0.75 / len(origin)), f_b
    assert set(np.unique(origin)) == {1, 2}


def test_non_prompt_ct_adds_the_b_hadrons_flight(closure_samples):
    """Mean ct of non-prompt minus prompt true Ds+: c tau_B m_Ds / m_B x E[1/z], z uniform
    in [Z_MIN, Z_MAX] (computed here, not taken from the generator)."""
    from tau3mu.config import B_CTAU
    from tau3mu.synth.truth import B_MASS, Z_MAX, Z_MIN

    _, snapshot = closure_samples
    is_mc = snapshot["dataset"] == 1
    true_ds = is_mc & (snapshot["BestTriplet_truth"] == TRUTH_DS)
    ct = snapshot["BestTriplet_ct"]
    origin = snapshot["BestTriplet_origin"]
    prompt, from_b = ct[true_ds & (origin == 1)], ct[true_ds & (origin == 2)]
    mean_inverse_z = np.log(Z_MAX / Z_MIN) / (Z_MAX - Z_MIN)
    expected = B_CTAU * DS_MASS / B_MASS * mean_inverse_z
    difference = from_b.mean() - prompt.mean()
    error = np.hypot(from_b.std() / np.sqrt(len(from_b)), prompt.std() / np.sqrt(len(prompt)))
    assert abs(difference - expected) < 4 * error, (difference, expected, error)
    # prompt: the Ds+ lifetime (150 um) with a resolution of tens of um
    assert 0.010 < prompt.mean() < 0.022
    assert np.all(np.isfinite(ct))


def test_simulation_truth_as_the_producer_writes_it(closure_samples):
    """Run 3 simulation: muons of non-prompt decays have decayType 2 and their GenPart
    list ends with the b hadron, the Ds+'s mother."""
    folder, _ = closure_samples
    datasets = json.loads((folder / "datasets.json").read_text())
    (mc,) = [k for k, v in datasets.items() if v["type"] == "mc"]
    path = folder / datasets[mc]["files"].split()[0]
    a = uproot.open(path)["Events"].arrays(
        ["nGenPart", "GenPart_pdgId", "GenPart_genPartIdxMother", RUN3.decay_type]
    )
    six = a[a["nGenPart"] == 6]
    assert len(six) > 0
    assert set(np.abs(ak.to_numpy(six["GenPart_pdgId"][:, 5]))) == {521}
    assert ak.all(six["GenPart_genPartIdxMother"][:, 0] == 5)
    assert ak.sum(a[RUN3.decay_type] == 2) == 2 * len(six)
    assert ak.sum(a[RUN3.decay_type] == 1) == 2 * ak.sum(a["nGenPart"] == 5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fb", "1.5"], "--fb 1.5: a probability"),
        (["--efficiency-ratio", "0"], "--efficiency-ratio 0.0: above 0"),
        (["--efficiency-ratio", "0.8", "--mc"], "--efficiency-ratio applies to data"),
    ],
)
def test_generate_refuses_bad_truth_options(tmp_path, capsys, args, message):
    from tau3mu.cli import main

    assert main(["generate", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]
