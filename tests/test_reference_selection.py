"""The per-event reference (SPEC section 3) on hand-made events: every boundary, link, trigger rule.

The core (:func:`select_event`) is tested on per-event dictionaries; the readers on tiny
files written from the same dictionaries (Run 3 with uproot, Run 2 with ROOT).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from reference_selection import (
    CUTFLOW_ROWS,
    match_muon,
    match_track,
    pair_mass,
    reference_select,
    run2_trigger,
    run3_trigger,
    select_event,
)

from tau3mu.config import CUTFLOW_STEPS, SelectionConfig
from tau3mu.layouts import RUN2, RUN3

C = SelectionConfig()
LAYOUTS = ["run2", "run3"]


def _refit_pt(mass: float) -> float:
    """pt of two back-to-back tracks at eta 0 whose pair mass is ``mass``."""
    return math.sqrt((mass / 2) ** 2 - C.muon_mass**2)


def _muon(pt: float, eta: float, phi: float, glob: float = 1.0, pf: float = 1.0) -> dict:
    # Run 2 stores the muon collection as float32: keep the dictionaries float32-exact
    f = lambda x: float(np.float32(x))  # noqa: E731
    return {"pt": f(pt), "eta": f(eta), "phi": f(phi), "is_global": glob, "is_pf": pf}


def _track(pt: float, eta: float, phi: float, dz: float = 0.1, dxy: float = 0.01) -> dict:
    return {"pt": pt, "eta": eta, "phi": phi, "dz": dz, "dxy": dxy}


def _event(layout: str, n_cands: int = 1) -> dict[str, Any]:
    """One event with ``n_cands`` identical candidates that pass every step."""
    muons = [_muon(5.0, 0.25, 0.5), _muon(4.0, 0.5, 0.75), _muon(2.5, 2.0, -1.0)]
    tracks = [_track(3.0, 0.375, 0.25), _track(1.5, -1.0, 2.0)]
    p = _refit_pt(1.02)
    cand = {
        "mass": 1.97,
        "vtx_chi2": 1.5,
        "pv_ntracks": 12.0,
        "flight_sig": 5.0,
        "mu1_refit_pt": p,
        "mu1_refit_eta": 0.0,
        "mu1_refit_phi": 0.0,
        "mu2_refit_pt": p,
        "mu2_refit_eta": 0.0,
        "mu2_refit_phi": math.pi,
        "mu1_trig_dr": 0.01,
        "mu2_trig_dr": 0.01,
    }
    if layout == "run2":
        for prefix, entry in (("mu1", muons[0]), ("mu2", muons[1]), ("trk", tracks[0])):
            for k in ("pt", "eta", "phi"):
                cand[f"{prefix}_{k}"] = entry[k]
    else:
        cand.update(mu1_idx=0, mu2_idx=1, trk_idx=0)
    return {
        "ids": (1, 2, 3),
        "trigger": True,
        "candidates": [copy.deepcopy(cand) for _ in range(n_cands)],
        "muons": muons,
        "tracks": tracks,
    }


def _set_kin(event: dict, layout: str, which: str, **values: float) -> None:
    """Change the kinematics of the first candidate's mu1/mu2/trk in ``layout``'s way."""
    cand = event["candidates"][0]
    if layout == "run2":  # the candidate's copy and the collection entry move together
        index = {"mu1": 0, "mu2": 1, "trk": 0}[which]
        coll = event["tracks" if which == "trk" else "muons"]
        for k, v in values.items():
            cand[f"{which}_{k}"] = float(np.float32(v)) if which != "trk" else v
            coll[index][k] = cand[f"{which}_{k}"]
    else:
        coll = event["tracks" if which == "trk" else "muons"]
        for k, v in values.items():
            coll[cand[f"{which}_idx"]][k] = v


def _first_failure(event: dict, layout: str, config: SelectionConfig = C) -> str | None:
    """Label of the first step after which no candidate is left; None if one survives."""
    sel = select_event(event, layout, config)
    for label in CUTFLOW_STEPS:
        if sel.steps[label][1] == 0:
            return label
    assert sel.best >= 0
    return None


# -- a good candidate, and the cutflow rows ------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_good_candidate_passes_every_step(layout):
    sel = select_event(_event(layout), layout, C)
    assert list(sel.steps) == list(CUTFLOW_ROWS)
    assert all(sel.steps[label] == (True, 1) for label in CUTFLOW_ROWS)
    assert sel.best == 0


def test_phi_mass_helper():
    assert pair_mass((_refit_pt(1.02), 0.0, 0.0), (_refit_pt(1.02), 0.0, math.pi), C.muon_mass) == (
        pytest.approx(1.02, abs=1e-12)
    )


# -- boundaries of the candidate cuts ------------------------------------------------------

EPS = 1e-6

CANDIDATE_BOUNDARIES = [
    # (candidate field, value, first failing step or None)
    ("mass", C.mass_window[0], "mass_window"),
    ("mass", C.mass_window[0] + EPS, None),
    ("mass", C.mass_window[1], "mass_window"),
    ("mass", C.mass_window[1] - EPS, None),
    ("pv_ntracks", C.min_pv_tracks, "pv_tracks"),
    ("pv_ntracks", C.min_pv_tracks + 1, None),
    ("flight_sig", C.min_flight_significance, "flight_significance"),
    ("flight_sig", C.min_flight_significance + EPS, None),
    ("mu1_trig_dr", C.max_trigger_dr, "trigger_match"),
    ("mu1_trig_dr", C.max_trigger_dr - EPS, None),
    ("mu2_trig_dr", C.max_trigger_dr, "trigger_match"),
    ("mu2_trig_dr", 0.5, "trigger_match"),
    ("mass", math.nan, "mass_window"),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("name", "value", "fails"), CANDIDATE_BOUNDARIES)
def test_candidate_cut_boundaries(layout, name, value, fails):
    event = _event(layout)
    event["candidates"][0][name] = value
    assert _first_failure(event, layout) == fails


ACCEPTANCE = [
    # (which, pt, eta, first failing step or None): open pt cuts, |eta| < 1.2 barrel,
    # 1.2 <= |eta| < 2.4 endcap
    ("mu1", C.barrel_min_pt, 0.5, "acceptance"),
    ("mu1", C.barrel_min_pt + EPS, 0.5, None),
    ("mu1", 3.0, C.barrel_max_abseta, None),  # 1.2 is endcap: pt > 2 is enough
    ("mu1", 3.0, -C.barrel_max_abseta, None),
    ("mu1", 3.0, 1.19, "acceptance"),  # barrel needs pt > 3.5
    ("mu2", C.endcap_min_pt, 1.5, "acceptance"),
    ("mu2", C.endcap_min_pt + EPS, -1.5, None),
    ("mu2", 5.0, C.endcap_max_abseta, "acceptance"),
    ("mu2", 5.0, -C.endcap_max_abseta, "acceptance"),
    ("mu2", 5.0, -2.39, None),
    ("trk", C.track_min_pt, 0.375, "acceptance"),
    ("trk", C.track_min_pt + EPS, 0.375, None),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("which", "pt", "eta", "fails"), ACCEPTANCE)
def test_acceptance_boundaries(layout, which, pt, eta, fails):
    assert _first_failure(_acceptance_event(layout, which, pt, eta, fails), layout) == fails


def _acceptance_event(layout: str, which: str, pt: float, eta: float, fails: str | None) -> dict:
    event = _event(layout)
    _set_kin(event, layout, which, pt=pt, eta=eta)
    if fails is None and abs(eta) > 1.0:  # bring the others close: delta R stays < 0.8
        for other in sorted({"mu1", "mu2", "trk"} - {which}):
            offset = {"mu1": 0.0, "mu2": 0.25, "trk": 0.125}[other]
            _set_kin(event, layout, other, eta=math.copysign(abs(eta) - offset - 0.0625, eta))
    return event


DELTA_R = [
    # (mu1 (eta, phi), mu2 (eta, phi), trk (eta, phi), first failing step or None)
    ((0.0, 0.0), (0.25, 0.125), (0.8, 0.0), "delta_r"),  # dR(mu1, trk) == 0.8 exactly
    ((0.0, 0.0), (0.25, 0.125), (0.75, 0.0), None),
    ((0.0, 0.0), (0.0001, 0.0), (0.25, 0.25), "delta_r"),  # dR(mu1, mu2) == 1e-4 exactly
    ((0.0, 0.0), (0.0002, 0.0), (0.25, 0.25), None),
    ((0.0, 0.5), (0.0, 0.5), (0.25, 0.25), "delta_r"),  # identical directions: dR == 0
    ((0.0, 3.1), (0.1, -3.1), (0.05, 3.13), None),  # across +-pi: dphi wrapped
    ((0.0, -3.1), (0.1, 3.1), (0.05, -3.13), None),
    ((0.0, 0.0), (0.0, 0.79), (0.0, 1.59), "delta_r"),  # mu1-trk 1.59 apart
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("mu1", "mu2", "trk", "fails"), DELTA_R)
def test_delta_r_boundaries(layout, mu1, mu2, trk, fails):
    event = _event(layout)
    for which, (eta, phi) in (("mu1", mu1), ("mu2", mu2), ("trk", trk)):
        _set_kin(event, layout, which, eta=eta, phi=phi)
    assert _first_failure(event, layout) == fails


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("muon", "flag"), [(0, "is_global"), (0, "is_pf"), (1, "is_global"), (1, "is_pf")]
)
def test_muon_id_reads_the_linked_muon(layout, muon, flag):
    event = _event(layout)
    event["muons"][muon][flag] = 0.0
    assert _first_failure(event, layout) == "muon_id"
    # a muon that no candidate uses does not matter (SPEC 6 defect 3 read flags[i])
    event = _event(layout)
    event["muons"][2][flag] = 0.0
    assert _first_failure(event, layout) is None


TRACK_IP = [
    ("dz", C.max_track_abs_dz, "track_ip"),
    ("dz", -C.max_track_abs_dz, "track_ip"),  # two-sided on |dz| (defect 5)
    ("dz", -25.0, "track_ip"),
    ("dz", -C.max_track_abs_dz + EPS, None),
    ("dxy", C.max_track_abs_dxy, "track_ip"),
    ("dxy", -C.max_track_abs_dxy, "track_ip"),
    ("dxy", -C.max_track_abs_dxy + EPS, None),
    ("dxy", math.nan, "track_ip"),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("name", "value", "fails"), TRACK_IP)
def test_track_ip_boundaries(layout, name, value, fails):
    event = _event(layout)
    event["tracks"][0][name] = value
    assert _first_failure(event, layout) == fails


@pytest.mark.parametrize("layout", LAYOUTS)
def test_track_ip_reads_the_candidates_track_not_another(layout):
    event = _event(layout)
    event["tracks"][1]["dz"] = 50.0  # the unused track
    assert _first_failure(event, layout) is None


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("mass", "fails"),
    [
        (C.phi_mass_window[0] - EPS, "phi_mass"),
        (C.phi_mass_window[0] + EPS, None),
        (C.phi_mass_window[1] - EPS, None),
        (C.phi_mass_window[1] + EPS, "phi_mass"),
    ],
)
def test_phi_mass_boundaries(layout, mass, fails):
    event = _event(layout)
    cand = event["candidates"][0]
    cand["mu1_refit_pt"] = cand["mu2_refit_pt"] = _refit_pt(mass)
    assert _first_failure(event, layout) == fails


REFIT_FAILURES = [
    {"mu1_refit_pt": -99.0},
    {"mu2_refit_pt": -99.0, "mu2_refit_eta": -99.0, "mu2_refit_phi": -99.0},
    dict.fromkeys(("mu1_refit_pt", "mu1_refit_eta", "mu1_refit_phi"), -99.0)
    | dict.fromkeys(("mu2_refit_pt", "mu2_refit_eta", "mu2_refit_phi"), -99.0),
    {"mu1_refit_eta": 1000.0},  # sinh overflows: no exception, a failed candidate
    {"mu1_refit_pt": math.nan},
    {"mu1_refit_pt": 0.0},
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("refit", REFIT_FAILURES)
def test_failed_refits_fail_phi_mass_without_exception(layout, refit):
    event = _event(layout)
    event["candidates"][0].update(refit)
    assert _first_failure(event, layout) == "phi_mass"


# -- links --------------------------------------------------------------------------------


def test_run2_muon_match_rounds_the_copy_to_float32():
    muons = [_muon(7.0, 0.1, 0.2), _muon(5.0, 0.25, 0.5)]
    copy_double = (5.0 + 1e-9, 0.25, 0.5)  # a double that rounds to the float32 5.0
    assert float(np.float32(copy_double[0])) == 5.0
    assert match_muon(copy_double, muons) == 1
    assert match_muon((5.001, 0.25, 0.5), muons) == -1
    # eta 0.1 is not float32-exact: the collection holds float32(0.1), the copy 0.1
    assert match_muon((7.0, 0.1, 0.2), muons) == 0
    # first of two identical entries
    assert match_muon((5.0, 0.25, 0.5), [*muons, _muon(5.0, 0.25, 0.5)]) == 1


def test_run2_track_match_is_exact_on_doubles():
    tracks = [_track(1.5, -1.0, 2.0), _track(3.0, 0.375, 0.25)]
    assert match_track((3.0, 0.375, 0.25), tracks) == 1
    assert match_track((3.0 + 1e-12, 0.375, 0.25), tracks) == -1
    assert match_track((float(np.float32(0.1)), 0.0, 0.0), [_track(0.1, 0.0, 0.0)]) == -1


@pytest.mark.parametrize("which", ["mu1", "mu2"])
def test_run2_unmatched_muon_fails_muon_id(which):
    event = _event("run2")
    event["candidates"][0][f"{which}_pt"] += 0.001  # no longer equal to any muon
    # acceptance and delta R read the candidate's own copies: still fine
    assert _first_failure(event, "run2") == "muon_id"


def test_run2_unmatched_track_fails_track_ip():
    event = _event("run2")
    event["candidates"][0]["trk_phi"] += 1e-12
    assert _first_failure(event, "run2") == "track_ip"


def test_run2_muon_matched_by_value_not_position():
    event = _event("run2")
    event["muons"].reverse()  # candidate copies unchanged: the link follows the values
    assert _first_failure(event, "run2") is None
    event["muons"][2]["is_pf"] = 0.0  # now muons[2] is the first candidate muon
    assert _first_failure(event, "run2") == "muon_id"


@pytest.mark.parametrize("link", ["mu1_idx", "mu2_idx", "trk_idx"])
@pytest.mark.parametrize("index", [-1, 7])
def test_run3_missing_link_fails_acceptance(link, index):
    # Run 3 candidates carry no kinematics: without its muon or track nothing is accepted
    event = _event("run3")
    event["candidates"][0][link] = index
    assert _first_failure(event, "run3") == "acceptance"


def test_run3_links_by_index():
    event = _event("run3")
    event["candidates"][0].update(mu1_idx=2)  # pt 2.5, eta 2.0: endcap, accepted
    # far in eta from the others: delta R fails, not acceptance
    assert _first_failure(event, "run3") == "delta_r"


# -- combining the steps, best candidate ----------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_steps_combine_with_and_across_candidates(layout):
    """Each candidate fails a different step: none survives (SPEC 6 defect 4)."""
    event = _event(layout, n_cands=3)
    event["candidates"][0]["mass"] = 1.5
    event["candidates"][1]["pv_ntracks"] = 0.0
    event["candidates"][2]["mu1_trig_dr"] = 0.9
    sel = select_event(event, layout, C)
    got = {label: sel.steps[label] for label in CUTFLOW_ROWS}
    assert got["events"] == (True, 3)
    assert got["trigger"] == (True, 3)
    assert got["mass_window"] == (True, 2)
    assert got["pv_tracks"] == (True, 1)
    assert all(got[label] == (True, 1) for label in CUTFLOW_STEPS[3:-1])
    assert got["trigger_match"] == (False, 0)
    assert got["best_candidate"] == (False, 0)
    assert sel.best == -1


@pytest.mark.parametrize("layout", LAYOUTS)
def test_best_is_smallest_chi2_among_survivors(layout):
    event = _event(layout, n_cands=4)
    chi2 = [0.5, 3.0, 2.0, 2.5]
    for cand, value in zip(event["candidates"], chi2, strict=True):
        cand["vtx_chi2"] = value
    event["candidates"][0]["flight_sig"] = 1.0  # the smallest chi2 fails a cut
    assert select_event(event, layout, C).best == 2


@pytest.mark.parametrize("layout", LAYOUTS)
def test_best_ties_go_to_the_lowest_index(layout):
    event = _event(layout, n_cands=4)
    for cand, value in zip(event["candidates"], [4.0, 2.0, 1.0, 1.0], strict=True):
        cand["vtx_chi2"] = value
    assert select_event(event, layout, C).best == 2
    event["candidates"][2]["mass"] = 3.0
    assert select_event(event, layout, C).best == 3


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nan_chi2_never_wins(layout):
    event = _event(layout, n_cands=2)
    event["candidates"][0]["vtx_chi2"] = math.nan
    event["candidates"][1]["vtx_chi2"] = 9.0
    assert select_event(event, layout, C).best == 1
    event["candidates"][1]["vtx_chi2"] = math.nan
    sel = select_event(event, layout, C)
    assert sel.best == -1
    assert sel.steps["trigger_match"] == (True, 2)
    assert sel.steps["best_candidate"] == (False, 0)


# -- trigger ---------------------------------------------------------------------------------

HLT_OK = "HLT_DoubleMu3_Trk_Tau3mu_v12"
L1_OK = "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4"


TRIGGER_RUN2 = [
    ([(HLT_OK, 1)], [(L1_OK, 1)], True),
    ([(HLT_OK, 1)], [("L1_TripleMu_5_3_3", 1)], True),
    ([("HLT_Dimuon0_Jpsi_v3", 1), (HLT_OK, 1)], [("L1_SingleMu22", 1), (L1_OK, 1)], True),
    ([(HLT_OK, 0)], [(L1_OK, 1)], False),  # path present but not fired
    ([(HLT_OK, 1)], [(L1_OK, 0), ("L1_SingleMu22", 1)], False),  # wrong seed fired
    ([("HLT_DoubleMu3_Trk_Tau3mu_NoL1Mass_v5", 1)], [(L1_OK, 1)], False),  # no "_v" after
    ([("HLT_DoubleMu3_Trk_Tau3mu", 1)], [(L1_OK, 1)], False),  # no version suffix
    ([("HLT_Dimuon0_Jpsi_v3", 1)], [(L1_OK, 1)], False),
    ([], [(L1_OK, 1)], False),
    ([(HLT_OK, 1)], [], False),
    ([(HLT_OK, 7)], [(L1_OK, -1)], True),  # any non-zero decision
]


@pytest.mark.parametrize(("hlt", "l1", "fired"), TRIGGER_RUN2)
def test_run2_trigger(hlt, l1, fired):
    names = lambda pairs: [n for n, _ in pairs]  # noqa: E731
    decisions = lambda pairs: [d for _, d in pairs]  # noqa: E731
    assert run2_trigger(names(hlt), decisions(hlt), names(l1), decisions(l1), C) is fired


@pytest.mark.parametrize(
    ("bits", "fired"),
    [
        ({"HLT_DoubleMu3_Trk_Tau3mu": True, L1_OK: True}, True),
        ({"HLT_DoubleMu3_Trk_Tau3mu": True, "L1_TripleMu_5_3_3": True}, True),
        ({"HLT_DoubleMu3_Trk_Tau3mu": True, "L1_DoubleMu4_SQ_OS_dR_Max1p2": True}, True),
        ({"HLT_DoubleMu3_Trk_Tau3mu": False, L1_OK: True}, False),
        ({"HLT_DoubleMu3_Trk_Tau3mu": True, L1_OK: False, "L1_TripleMu_5_3_3": False}, False),
        ({"HLT_DoubleMu3_Trk_Tau3mu_NoL1Mass": True, L1_OK: True}, False),
        ({"HLT_Tau3Mu_Mu7_Mu1_TkMu1_IsoTau15": True, L1_OK: True}, False),
        ({"HLT_DoubleMu4_3_LowMass": True, L1_OK: True}, False),
        ({L1_OK: True}, False),  # no HLT branch at all
    ],
)
def test_run3_trigger(bits, fired):
    assert run3_trigger(bits, C) is fired


def test_trigger_patterns_come_from_the_config():
    other = SelectionConfig(hlt_pattern="HLT_DoubleMu4_3_LowMass", l1_patterns=("L1_SingleMu",))
    assert run3_trigger({"HLT_DoubleMu4_3_LowMass": True, "L1_SingleMu22": True}, other)
    assert not run3_trigger({"HLT_DoubleMu3_Trk_Tau3mu": True, L1_OK: True}, other)
    assert run2_trigger(["HLT_DoubleMu4_3_LowMass_v2"], [1], ["L1_SingleMu22"], [1], other)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_trigger_row_counts_fired_events_and_their_candidates(layout):
    event = _event(layout, n_cands=2)
    event["trigger"] = False
    sel = select_event(event, layout, C)
    assert sel.steps["events"] == (True, 2)
    assert all(sel.steps[label] == (False, 0) for label in CUTFLOW_ROWS[1:])
    empty = _event(layout, n_cands=0)
    sel = select_event(empty, layout, C)
    assert sel.steps["trigger"] == (True, 0)  # fired, without candidates
    assert sel.steps["mass_window"] == (False, 0)


# -- tiny files: the readers ------------------------------------------------------------------


def _events_for_files(layout: str) -> list[dict]:
    """Four events: good; trigger off; two candidates with the best second; a failure."""
    good = _event(layout)
    off = _event(layout)
    off["trigger"] = False
    two = _event(layout, n_cands=2)
    two["candidates"][0]["vtx_chi2"] = 3.0
    two["candidates"][1]["mass"] = 1.8
    bad = _event(layout, n_cands=1)
    bad["candidates"][0]["mu1_refit_pt"] = -99.0
    events = [good, off, two, bad]
    for i, ev in enumerate(events):
        ev["ids"] = (1, 10 + i, 100 + i)
        for j, cand in enumerate(ev["candidates"]):
            cand["truth"] = j % 2
    return events


def _expected(events: list[dict], layout: str) -> tuple[dict, list]:
    flow = {label: {"events": 0, "candidates": 0} for label in CUTFLOW_ROWS}
    best = []
    for ev in events:
        sel = select_event(ev, layout, C)
        for label, (passes, n) in sel.steps.items():
            flow[label]["events"] += passes
            flow[label]["candidates"] += n
        if sel.best >= 0:
            best.append((*ev["ids"], sel.best, ev["candidates"][sel.best]["mass"]))
    return flow, best


def _check_file_result(result, events, layout):
    flow, best = _expected(events, layout)
    assert result.cutflow == flow
    assert [b[:4] for b in result.best] == [b[:4] for b in best]
    assert [b[3] for b in best] == [0, 1]
    # Run 3 stores float32
    assert result.best_masses == pytest.approx([1.97, 1.8], rel=1e-7)
    assert result.truth_counts == {"ds": 1, "dplus": 0, "background": 1}
    h = result.h_mass()
    assert h.shape == (C.mass_axis.bins,)
    assert h.sum() == 2


def _write_run3(path, events: list[dict]) -> None:
    import awkward as ak
    import uproot

    def coll(key: str, fields: dict[str, str], dtypes: dict[str, str]) -> ak.Array:
        return ak.zip(
            {
                name: ak.values_astype(
                    ak.Array([[row[k] for row in ev[key]] for ev in events]),
                    dtypes.get(k, "float32"),
                )
                for k, name in fields.items()
            }
        )

    cand_fields = {
        k: v for k, v in RUN3.candidate_fields.items() if k not in ("pt", "eta", "phi", "charge")
    }
    ints = {"mu1_idx": "int32", "mu2_idx": "int32", "trk_idx": "int32", "truth": "int32"}
    data = {
        RUN3.candidate_collection: coll("candidates", cand_fields, ints),
        RUN3.muon_collection: coll(
            "muons",
            {k: RUN3.muon_fields[k] for k in ("pt", "eta", "phi", "is_global", "is_pf")},
            {"is_global": "bool", "is_pf": "bool"},
        ),
        RUN3.track_collection: coll(
            "tracks", {k: RUN3.track_fields[k] for k in ("pt", "eta", "phi", "dz", "dxy")}, {}
        ),
        RUN3.hlt_path: np.array([ev["trigger"] for ev in events]),
        # a look-alike that must not count, and the seeds
        "HLT_DoubleMu3_Trk_Tau3mu_NoL1Mass": np.ones(len(events), dtype=bool),
        RUN3.l1_seeds[0]: np.array([ev["trigger"] for ev in events]),
        "L1_SingleMu22": np.ones(len(events), dtype=bool),
    }
    for k, name in RUN3.event.items():
        position = ("run", "lumi", "event").index(k)
        data[name] = np.array(
            [ev["ids"][position] for ev in events], dtype=np.uint32 if k != "event" else np.uint64
        )
    with uproot.recreate(path) as f:
        tree = f.mktree(
            RUN3.tree,
            {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()},
            counter_name=RUN3.counter,
            field_name=RUN3.branch,
        )
        tree.extend(data)


def test_run3_file(tmp_path):
    events = _events_for_files("run3")
    path = tmp_path / "tiny_run3.root"
    _write_run3(path, events)
    result = reference_select(str(path), "run3")
    _check_file_result(result, events, "run3")
    # two copies of the file: everything doubles
    twice = reference_select([path, path], "run3")
    assert twice.cutflow["best_candidate"] == {"events": 4, "candidates": 4}


def _write_run2(path, events: list[dict]) -> None:
    import ROOT

    cand_map = dict(RUN2.candidate(C.era))
    cand_map["truth"] = RUN2.truth
    vectors: dict[str, Any] = {}
    f = ROOT.TFile(str(path), "RECREATE")
    directory, name = RUN2.tree.split("/")
    f.mkdir(directory).cd()
    tree = ROOT.TTree(name, name)
    scalars = {k: np.zeros(1, dtype=np.uint32) for k in RUN2.event.values()}
    for branch, array in scalars.items():
        tree.Branch(branch, array, f"{branch}/i")

    def vec(branch: str, ctype: str):
        vectors[branch] = ROOT.std.vector(ctype)()
        tree.Branch(branch, vectors[branch])

    for key, branch in cand_map.items():
        vec(branch, "int" if key == "truth" else "double")
    for key, branch in RUN2.muon.items():
        vec(branch, "float" if key in ("pt", "eta", "phi") else "double")
    for branch in RUN2.track.values():
        vec(branch, "double")
    vec(RUN2.hlt_name, "std::string")
    vec(RUN2.l1_name, "std::string")
    vec(RUN2.hlt_decision, "int")
    vec(RUN2.l1_decision, "int")
    for ev in events:
        for v in vectors.values():
            v.clear()
        for position, key in enumerate(("run", "lumi", "event")):
            scalars[RUN2.event[key]][0] = ev["ids"][position]
        for cand in ev["candidates"]:
            for key, branch in cand_map.items():
                vectors[branch].push_back(cand[key])
        for coll, mapping in (("muons", RUN2.muon), ("tracks", RUN2.track)):
            for row in ev[coll]:
                for key, branch in mapping.items():
                    vectors[branch].push_back(row[key])
        fired = int(ev["trigger"])
        hlt_paths = ev.get("hlt") or [
            ("HLT_Dimuon0_Jpsi_v3", 1),
            (HLT_OK, fired),
            ("HLT_DoubleMu3_Trk_Tau3mu_NoL1Mass_v1", 1),
        ]
        for hlt, decision in hlt_paths:
            vectors[RUN2.hlt_name].push_back(hlt)
            vectors[RUN2.hlt_decision].push_back(decision)
        for l1, decision in ev.get("l1") or [("L1_SingleMu22", 1), (L1_OK, fired)]:
            vectors[RUN2.l1_name].push_back(l1)
            vectors[RUN2.l1_decision].push_back(decision)
        tree.Fill()
    f.Write()
    f.Close()


@pytest.mark.root
def test_run2_file(tmp_path):
    pytest.importorskip("ROOT")
    events = _events_for_files("run2")
    path = tmp_path / "tiny_run2.root"
    _write_run2(path, events)
    result = reference_select(str(path), "run2")
    _check_file_result(result, events, "run2")


def test_unknown_layout(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        reference_select(str(tmp_path / "x.root"), "run4")


def boundary_events(layout: str = "run2") -> list[dict]:
    """Every case of this module as one event each, for files that other tools read.

    Candidates that pass get distinct masses across ``h_mass``, so that a histogram
    comparison sees which candidate and which event were kept.
    """
    events: list[dict] = []

    def add(event: dict) -> None:
        events.append(event)

    for name, value, _ in CANDIDATE_BOUNDARIES:
        ev = _event(layout)
        ev["candidates"][0][name] = value
        add(ev)
    for which, pt, eta, fails in ACCEPTANCE:
        add(_acceptance_event(layout, which, pt, eta, fails))
    for mu1, mu2, trk, _ in DELTA_R:
        ev = _event(layout)
        for which, (eta, phi) in (("mu1", mu1), ("mu2", mu2), ("trk", trk)):
            _set_kin(ev, layout, which, eta=eta, phi=phi)
        add(ev)
    for muon in (0, 1, 2):
        for flag in ("is_global", "is_pf"):
            ev = _event(layout)
            ev["muons"][muon][flag] = 0.0
            add(ev)
    for name, value, _ in TRACK_IP:
        ev = _event(layout)
        ev["tracks"][0][name] = value
        add(ev)
    ev = _event(layout)
    ev["tracks"][1]["dz"] = 50.0
    add(ev)
    for mass in (1.0 - EPS, 1.0 + EPS, 1.04 - EPS, 1.04 + EPS):
        ev = _event(layout)
        ev["candidates"][0]["mu1_refit_pt"] = ev["candidates"][0]["mu2_refit_pt"] = _refit_pt(mass)
        add(ev)
    for refit in REFIT_FAILURES:
        ev = _event(layout)
        ev["candidates"][0].update(refit)
        add(ev)
    if layout == "run2":
        for field_name, delta in (("mu1_pt", 0.001), ("mu2_eta", 1e-4), ("trk_phi", 1e-12)):
            ev = _event(layout)  # no match in the collection
            ev["candidates"][0][field_name] += delta
            add(ev)
        ev = _event(layout)
        ev["muons"].reverse()
        add(ev)
    else:
        for link in ("mu1_idx", "mu2_idx", "trk_idx"):
            for index in (-1, 7):
                ev = _event(layout)
                ev["candidates"][0][link] = index
                add(ev)
        ev = _event(layout)
        ev["candidates"][0]["mu1_idx"] = 2
        add(ev)
    # several candidates: AND across steps, best among survivors, ties, NaN chi2
    ev = _event(layout, n_cands=3)
    ev["candidates"][0]["mass"] = 1.5
    ev["candidates"][1]["pv_ntracks"] = 0.0
    ev["candidates"][2]["mu1_trig_dr"] = 0.9
    add(ev)
    for chi2, failing in (
        ([0.5, 3.0, 2.0, 2.5], 0),
        ([4.0, 2.0, 1.0, 1.0], None),
        ([4.0, 2.0, 1.0, 1.0], 2),
        ([math.nan, 9.0, 8.0, 9.5], None),
        ([math.nan, math.nan, 7.0, 1.0], 3),
    ):
        ev = _event(layout, n_cands=4)
        for k, (cand, value) in enumerate(zip(ev["candidates"], chi2, strict=True)):
            cand["vtx_chi2"] = value
            cand["mass"] = 1.70 + 0.05 * k
        if failing is not None:
            ev["candidates"][failing]["flight_sig"] = 1.0
        add(ev)
    # trigger
    for hlt, l1, fired in TRIGGER_RUN2 if layout == "run2" else ():
        ev = _event(layout)
        ev["trigger"] = fired
        ev["hlt"], ev["l1"] = hlt or [("HLT_Nothing_v1", 0)], l1 or [("L1_Nothing", 0)]
        add(ev)
    add(_event(layout, n_cands=0))
    off = _event(layout, n_cands=2)
    off["trigger"] = False
    add(off)

    for i, ev in enumerate(events):
        ev["ids"] = (1, 1 + i // 10, 1000 + i)
        for cand in ev["candidates"]:
            if cand["mass"] == 1.97:
                cand["mass"] = 1.66 + 0.0057 * (i % 60)
            cand["truth"] = i % 3
    return events


@pytest.mark.parametrize("layout", LAYOUTS)
def test_boundary_events_exercise_every_step(layout):
    events = boundary_events(layout)
    first = [_first_failure(ev, layout) if ev["candidates"] else "empty" for ev in events]
    for label in CUTFLOW_STEPS:
        assert label in first, label
    assert first.count(None) > 20


@pytest.mark.root
def test_run2_boundary_file(tmp_path):
    """The Run 2 reader reproduces the dictionaries' results on every boundary case."""
    pytest.importorskip("ROOT")
    events = boundary_events("run2")
    path = tmp_path / "boundaries_run2.root"
    _write_run2(path, events)
    flow, best = _expected(events, "run2")
    result = reference_select(str(path), "run2")
    assert result.cutflow == flow
    assert result.best == best
