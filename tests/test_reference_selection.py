"""The per-event reference of both periods on hand-made events: every boundary, link,
trigger rule.

The core (:func:`select_event`) is tested on per-event dictionaries (Run 2: analysis
names; Run 3: the producer's field names); the readers on tiny files written from the
same dictionaries (Run 3 with uproot, Run 2 with ROOT).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from reference_selection import (
    CUTFLOW_ROWS,
    RUN3_CUTFLOW_ROWS,
    four_vector_mass,
    match_muon,
    match_track,
    pair_mass,
    reference_select,
    run2_trigger,
    run3_trigger,
    select_event,
)

from tau3mu.config import (
    MUON_MASS,
    RUN2_STEPS,
    RUN3_STEPS,
    Run2Selection,
    Run3Selection,
    SelectionConfig,
)
from tau3mu.layouts import RUN2

C = SelectionConfig()
R2, R3 = C.run2, C.run3
LAYOUTS = ["run2", "run3"]
STEPS = {"run2": RUN2_STEPS, "run3": RUN3_STEPS}
ROWS = {"run2": CUTFLOW_ROWS, "run3": RUN3_CUTFLOW_ROWS}
#: the candidate's chi2 and flight significance, as each period's dictionaries name them
CHI2 = {"run2": "vtx_chi2", "run3": "chi2"}
FLIGHT = {"run2": "flight_sig", "run3": "flightDistBSSig"}
#: the Run 3 muons' trigger-match flag set in the hand-made events
MATCH_PATH = "HLT_DoubleMu4_3_LowMass_v"


def _refit_pt(mass: float) -> float:
    """pt of two back-to-back tracks at eta 0 whose pair mass is ``mass``."""
    return math.sqrt((mass / 2) ** 2 - R2.muon_mass**2)


def _muon(pt: float, eta: float, phi: float, glob: float = 1.0, pf: float = 1.0) -> dict:
    # Run 2 stores the muon collection as float32: keep the dictionaries float32-exact
    f = lambda x: float(np.float32(x))  # noqa: E731
    return {"pt": f(pt), "eta": f(eta), "phi": f(phi), "is_global": glob, "is_pf": pf}


def _run3_muon(pt: float, eta: float, phi: float, charge: int, matched: bool = True) -> dict:
    """A Run 3 muon as the producer names its fields, matched to ``MATCH_PATH`` or none."""
    muon = {
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "energy": math.hypot(pt * math.cosh(eta), MUON_MASS),
        "charge": charge,
        "isGlobal": 1,
        "isPF": 1,
        "isMedium": 1,
        "trgDR": 0.01 if matched else -1.0,
        "trgDPT": 0.02 if matched else 10000.0,
    }
    return muon | {path: int(matched and path == MATCH_PATH) for path in R3.matched_paths}


def _track(pt: float, eta: float, phi: float, dz: float = 0.1, dxy: float = 0.01) -> dict:
    return {"pt": pt, "eta": eta, "phi": phi, "dz": dz, "dxy": dxy}


def _momentum(*particles: dict) -> tuple[float, float, float]:
    px = sum(p["pt"] * math.cos(p["phi"]) for p in particles)
    py = sum(p["pt"] * math.sin(p["phi"]) for p in particles)
    pz = sum(p["pt"] * math.sinh(p["eta"]) for p in particles)
    return px, py, pz


def _set_phi_mass(event: dict, mass: float) -> None:
    """Give the first Run 3 candidate's two muons equal energies that make their pair
    mass ``mass`` (the selection takes it from the stored energies)."""
    cand = event["candidates"][0]
    first, second = (event["muons"][cand[k]] for k in ("mu1_idx", "mu2_idx"))
    px, py, pz = _momentum(first, second)
    first["energy"] = second["energy"] = math.sqrt(mass**2 + px * px + py * py + pz * pz) / 2


def _event(layout: str, n_cands: int = 1) -> dict[str, Any]:
    """One event with ``n_cands`` identical candidates that pass every step."""
    if layout == "run3":
        return _run3_event(n_cands)
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
    for prefix, entry in (("mu1", muons[0]), ("mu2", muons[1]), ("trk", tracks[0])):
        for k in ("pt", "eta", "phi"):
            cand[f"{prefix}_{k}"] = entry[k]
    return {
        "ids": (1, 2, 3),
        "trigger": True,
        "candidates": [copy.deepcopy(cand) for _ in range(n_cands)],
        "muons": muons,
        "tracks": tracks,
    }


def _run3_event(n_cands: int) -> dict[str, Any]:
    """A Run 3 event in the producer's names: muons 0 (+) and 1 (-) make a phi of 1.02
    GeV, muon 2 is unmatched; track 0 passes, track 1 (pt 1.5) is outside the acceptance."""
    muons = [
        _run3_muon(5.0, 0.25, 0.5, +1),
        _run3_muon(4.0, 0.5, 0.75, -1),
        _run3_muon(2.5, 2.0, -1.0, +1, matched=False),
    ]
    tracks = [_track(4.0, 0.375, 0.25), _track(1.5, -1.0, 2.0)]
    cand = {
        "mass": 1.97,
        "chi2": 1.5,
        "flightDistBSSig": 5.0,
        "mu1_idx": 0,
        "mu2_idx": 1,
        "tr_idx": 0,
    }
    event = {
        "ids": (1, 2, 3),
        "trigger": True,
        "candidates": [copy.deepcopy(cand) for _ in range(max(n_cands, 1))],
        "muons": muons,
        "tracks": tracks,
    }
    _set_phi_mass(event, 1.02)
    event["candidates"] = event["candidates"][:n_cands]
    return event


_RUN3_LINK = {"mu1": "mu1_idx", "mu2": "mu2_idx", "trk": "tr_idx"}


def _set_kin(event: dict, layout: str, which: str, **values: float) -> None:
    """Change the kinematics of the first candidate's mu1/mu2/trk in ``layout``'s way
    (Run 3: the muons' energies follow, to keep the phi mass)."""
    cand = event["candidates"][0]
    coll = event["tracks" if which == "trk" else "muons"]
    if layout == "run2":  # the candidate's copy and the collection entry move together
        index = {"mu1": 0, "mu2": 1, "trk": 0}[which]
        for k, v in values.items():
            cand[f"{which}_{k}"] = float(np.float32(v)) if which != "trk" else v
            coll[index][k] = cand[f"{which}_{k}"]
    else:
        for k, v in values.items():
            coll[cand[_RUN3_LINK[which]]][k] = v
        if which != "trk":
            _set_phi_mass(event, 1.02)


def _first_failure(event: dict, layout: str, config: SelectionConfig = C) -> str | None:
    """Label of the first step after which no candidate is left; None if one survives."""
    sel = select_event(event, layout, config)
    for label in STEPS[layout]:
        if sel.steps[label][1] == 0:
            return label
    assert sel.best >= 0
    return None


# -- a good candidate, and the cutflow rows ------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_good_candidate_passes_every_step(layout):
    sel = select_event(_event(layout), layout, C)
    assert list(sel.steps) == list(ROWS[layout])
    assert all(sel.steps[label] == (True, 1) for label in ROWS[layout])
    assert sel.best == 0


def test_phi_mass_helper():
    assert pair_mass(
        (_refit_pt(1.02), 0.0, 0.0), (_refit_pt(1.02), 0.0, math.pi), R2.muon_mass
    ) == (pytest.approx(1.02, abs=1e-12))


def test_run3_phi_mass_helper():
    event = _event("run3")
    assert four_vector_mass(event["muons"][0], event["muons"][1]) == pytest.approx(1.02, abs=1e-12)


# -- Run 2 boundaries of the candidate cuts --------------------------------------------------

EPS = 1e-6

CANDIDATE_BOUNDARIES = [
    # (candidate field, value, first failing step or None)
    ("mass", R2.mass_window[0], "mass_window"),
    ("mass", R2.mass_window[0] + EPS, None),
    ("mass", R2.mass_window[1], "mass_window"),
    ("mass", R2.mass_window[1] - EPS, None),
    ("pv_ntracks", R2.min_pv_tracks, "pv_tracks"),
    ("pv_ntracks", R2.min_pv_tracks + 1, None),
    ("flight_sig", R2.min_flight_significance, "flight_significance"),
    ("flight_sig", R2.min_flight_significance + EPS, None),
    ("mu1_trig_dr", R2.max_trigger_dr, "trigger_match"),
    ("mu1_trig_dr", R2.max_trigger_dr - EPS, None),
    ("mu2_trig_dr", R2.max_trigger_dr, "trigger_match"),
    ("mu2_trig_dr", 0.5, "trigger_match"),
    ("mass", math.nan, "mass_window"),
]


@pytest.mark.parametrize(("name", "value", "fails"), CANDIDATE_BOUNDARIES)
def test_candidate_cut_boundaries(name, value, fails):
    event = _event("run2")
    event["candidates"][0][name] = value
    assert _first_failure(event, "run2") == fails


ACCEPTANCE = [
    # (which, pt, eta, first failing step or None): open pt cuts, |eta| < 1.2 barrel,
    # 1.2 <= |eta| < 2.4 endcap
    ("mu1", R2.barrel_min_pt, 0.5, "acceptance"),
    ("mu1", R2.barrel_min_pt + EPS, 0.5, None),
    ("mu1", 3.0, R2.barrel_max_abseta, None),  # 1.2 is endcap: pt > 2 is enough
    ("mu1", 3.0, -R2.barrel_max_abseta, None),
    ("mu1", 3.0, 1.19, "acceptance"),  # barrel needs pt > 3.5
    ("mu2", R2.endcap_min_pt, 1.5, "acceptance"),
    ("mu2", R2.endcap_min_pt + EPS, -1.5, None),
    ("mu2", 5.0, R2.endcap_max_abseta, "acceptance"),
    ("mu2", 5.0, -R2.endcap_max_abseta, "acceptance"),
    ("mu2", 5.0, -2.39, None),
    ("trk", R2.track_min_pt, 0.375, "acceptance"),
    ("trk", R2.track_min_pt + EPS, 0.375, None),
]


@pytest.mark.parametrize(("which", "pt", "eta", "fails"), ACCEPTANCE)
def test_acceptance_boundaries(which, pt, eta, fails):
    assert _first_failure(_acceptance_event("run2", which, pt, eta, fails), "run2") == fails


def _acceptance_event(layout: str, which: str, pt: float, eta: float, fails: str | None) -> dict:
    event = _event(layout)
    _set_kin(event, layout, which, pt=pt, eta=eta)
    if layout == "run2" and fails is None and abs(eta) > 1.0:
        # bring the others close: delta R stays < 0.8
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


@pytest.mark.parametrize(("mu1", "mu2", "trk", "fails"), DELTA_R)
def test_delta_r_boundaries(mu1, mu2, trk, fails):
    event = _event("run2")
    for which, (eta, phi) in (("mu1", mu1), ("mu2", mu2), ("trk", trk)):
        _set_kin(event, "run2", which, eta=eta, phi=phi)
    assert _first_failure(event, "run2") == fails


@pytest.mark.parametrize(
    ("muon", "flag"), [(0, "is_global"), (0, "is_pf"), (1, "is_global"), (1, "is_pf")]
)
def test_muon_id_reads_the_linked_muon(muon, flag):
    event = _event("run2")
    event["muons"][muon][flag] = 0.0
    assert _first_failure(event, "run2") == "muon_id"
    # a muon that no candidate uses does not matter (the original's defect 3 read flags[i])
    event = _event("run2")
    event["muons"][2][flag] = 0.0
    assert _first_failure(event, "run2") is None


TRACK_IP = [
    ("dz", R2.max_track_abs_dz, "track_ip"),
    ("dz", -R2.max_track_abs_dz, "track_ip"),  # two-sided on |dz| (defect 5)
    ("dz", -25.0, "track_ip"),
    ("dz", -R2.max_track_abs_dz + EPS, None),
    ("dxy", R2.max_track_abs_dxy, "track_ip"),
    ("dxy", -R2.max_track_abs_dxy, "track_ip"),
    ("dxy", -R2.max_track_abs_dxy + EPS, None),
    ("dxy", math.nan, "track_ip"),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("name", "value", "fails"), TRACK_IP)
def test_track_ip_boundaries(layout, name, value, fails):
    """The same track IP cut in both periods (Run 3 on absolute values too)."""
    assert (R2.max_track_abs_dz, R2.max_track_abs_dxy) == (
        R3.max_track_abs_dz,
        R3.max_track_abs_dxy,
    )
    event = _event(layout)
    event["tracks"][0][name] = value
    assert _first_failure(event, layout) == fails


@pytest.mark.parametrize("layout", LAYOUTS)
def test_track_ip_reads_the_candidates_track_not_another(layout):
    event = _event(layout)
    event["tracks"][1]["dz"] = 50.0  # the unused track
    assert _first_failure(event, layout) is None


PHI_MASS = [
    (R2.phi_mass_window[0] - EPS, "phi_mass"),
    (R2.phi_mass_window[0] + EPS, None),
    (R2.phi_mass_window[1] - EPS, None),
    (R2.phi_mass_window[1] + EPS, "phi_mass"),
]


@pytest.mark.parametrize(("mass", "fails"), PHI_MASS)
def test_phi_mass_boundaries(mass, fails):
    event = _event("run2")
    cand = event["candidates"][0]
    cand["mu1_refit_pt"] = cand["mu2_refit_pt"] = _refit_pt(mass)
    assert _first_failure(event, "run2") == fails


REFIT_FAILURES = [
    {"mu1_refit_pt": -99.0},
    {"mu2_refit_pt": -99.0, "mu2_refit_eta": -99.0, "mu2_refit_phi": -99.0},
    dict.fromkeys(("mu1_refit_pt", "mu1_refit_eta", "mu1_refit_phi"), -99.0)
    | dict.fromkeys(("mu2_refit_pt", "mu2_refit_eta", "mu2_refit_phi"), -99.0),
    {"mu1_refit_eta": 1000.0},  # sinh overflows: no exception, a failed candidate
    {"mu1_refit_pt": math.nan},
    {"mu1_refit_pt": 0.0},
]


@pytest.mark.parametrize("refit", REFIT_FAILURES)
def test_failed_refits_fail_phi_mass_without_exception(refit):
    event = _event("run2")
    event["candidates"][0].update(refit)
    assert _first_failure(event, "run2") == "phi_mass"


# -- Run 3 boundaries: closed windows, >= on the flight significance -------------------------

RUN3_CANDIDATE_BOUNDARIES = [
    # (candidate field, value, first failing step or None)
    ("mass", R3.mass_window[0], None),
    ("mass", R3.mass_window[0] - EPS, "mass_window"),
    ("mass", R3.mass_window[1], None),
    ("mass", R3.mass_window[1] + EPS, "mass_window"),
    ("mass", math.nan, "mass_window"),
    ("flightDistBSSig", R3.min_flight_significance, None),
    ("flightDistBSSig", R3.min_flight_significance - EPS, "flight_significance"),
    ("flightDistBSSig", math.nan, "flight_significance"),
]


@pytest.mark.parametrize(("name", "value", "fails"), RUN3_CANDIDATE_BOUNDARIES)
def test_run3_candidate_cut_boundaries(name, value, fails):
    event = _event("run3")
    event["candidates"][0][name] = value
    assert _first_failure(event, "run3") == fails


RUN3_ACCEPTANCE = [
    # (which, pt, eta, first failing step or None): barrel |eta| <= 1.2, endcap
    # 1.2 < |eta| < 2.4, for the muons and the track alike
    ("mu1", R3.barrel_min_pt, 0.5, "acceptance"),
    ("mu1", R3.barrel_min_pt + EPS, 0.5, None),
    ("mu1", R3.barrel_min_pt + EPS, R3.barrel_max_abseta, None),
    ("mu1", 3.0, R3.barrel_max_abseta, "acceptance"),  # 1.2 is barrel: pt > 3.5 needed
    ("mu1", 3.0, -R3.barrel_max_abseta, "acceptance"),
    ("mu1", 3.0, R3.barrel_max_abseta + EPS, None),  # endcap: pt > 2 is enough
    ("mu2", R3.endcap_min_pt, 1.5, "acceptance"),
    ("mu2", R3.endcap_min_pt + EPS, -1.5, None),
    ("mu2", 5.0, R3.endcap_max_abseta, "acceptance"),
    ("mu2", 5.0, -R3.endcap_max_abseta, "acceptance"),
    ("mu2", 5.0, -2.39, None),
    ("trk", R3.barrel_min_pt, 0.375, "acceptance"),  # the track: the muons' cuts
    ("trk", R3.barrel_min_pt + EPS, 0.375, None),
    ("trk", 2.5, 1.5, None),
    ("trk", R3.endcap_min_pt, -1.5, "acceptance"),
    ("trk", 5.0, R3.endcap_max_abseta, "acceptance"),
]


@pytest.mark.parametrize(("which", "pt", "eta", "fails"), RUN3_ACCEPTANCE)
def test_run3_acceptance_boundaries(which, pt, eta, fails):
    event = _acceptance_event("run3", which, pt, eta, fails)
    assert _first_failure(event, "run3") == fails


RUN3_MUON_CASES = [
    # (muon, field, value, first failing step or None)
    (0, "isGlobal", 0, "muon_id"),
    (1, "isGlobal", 0, "muon_id"),
    (0, "isMedium", 0, "muon_id"),
    (1, "isMedium", 0, "muon_id"),
    (0, "isPF", 0, None),  # Run 3 asks global and medium, not PF
    (2, "isMedium", 0, None),  # a muon that no candidate uses
    (1, "charge", +1, "phi_mass"),  # same sign: no phi
    (0, "trgDR", R3.max_trigger_dr, "trigger_match"),
    (0, "trgDR", R3.max_trigger_dr - EPS, None),
    (1, "trgDR", -R3.max_trigger_dr, "trigger_match"),  # on |trgDR|
    (1, "trgDR", -R3.max_trigger_dr + EPS, None),
    (0, "trgDR", -1.0, "trigger_match"),  # the producer's value for no match
    (0, "trgDPT", R3.max_trigger_dpt, "trigger_match"),
    (0, "trgDPT", -R3.max_trigger_dpt + EPS, None),
    (1, "trgDPT", -R3.max_trigger_dpt, "trigger_match"),
    (1, "trgDPT", 10000.0, "trigger_match"),
    (0, MATCH_PATH, 0, "trigger_match"),  # no path's flag: not matched
    (1, "energy", math.nan, "phi_mass"),
]


@pytest.mark.parametrize(("muon", "name", "value", "fails"), RUN3_MUON_CASES)
def test_run3_muon_cases(muon, name, value, fails):
    event = _event("run3")
    event["muons"][muon][name] = value
    assert _first_failure(event, "run3") == fails


@pytest.mark.parametrize("path", R3.matched_paths)
def test_run3_trigger_match_takes_any_of_the_paths_flags(path):
    event = _event("run3")
    for muon in event["muons"][:2]:
        muon[MATCH_PATH] = 0
        muon[path] = 1
    assert _first_failure(event, "run3") is None
    event["muons"][1][path] = 0
    assert _first_failure(event, "run3") == "trigger_match"


RUN3_PHI_MASS = [
    (R3.phi_mass_window[0] - EPS, "phi_mass"),
    (R3.phi_mass_window[0] + EPS, None),
    (R3.phi_mass_window[1] - EPS, None),
    (R3.phi_mass_window[1] + EPS, "phi_mass"),
    (1.00 - EPS, None),  # inside Run 3's window, outside Run 2's
    (1.04 + EPS, None),
]


@pytest.mark.parametrize(("mass", "fails"), RUN3_PHI_MASS)
def test_run3_phi_mass_boundaries(mass, fails):
    event = _event("run3")
    _set_phi_mass(event, mass)
    assert _first_failure(event, "run3") == fails


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


@pytest.mark.parametrize("link", ["mu1_idx", "mu2_idx", "tr_idx"])
@pytest.mark.parametrize("index", [-1, 7])
def test_run3_missing_link_fails_acceptance(link, index):
    # Run 3 candidates carry no kinematics: without its muon or track nothing is accepted
    event = _event("run3")
    event["candidates"][0][link] = index
    assert _first_failure(event, "run3") == "acceptance"


def test_run3_links_by_index():
    event = _event("run3")
    event["candidates"][0].update(mu1_idx=2)  # pt 2.5, eta 2.0: endcap, accepted
    # muons 2 and 1 are far apart: the phi mass fails, not the acceptance
    assert _first_failure(event, "run3") == "phi_mass"
    event = _event("run3")
    event["candidates"][0].update(tr_idx=1)  # pt 1.5: outside the acceptance
    assert _first_failure(event, "run3") == "acceptance"


# -- combining the steps, best candidate ----------------------------------------------------


def test_steps_combine_with_and_across_candidates():
    """Each candidate fails a different step: none survives (the original's defect 4)."""
    event = _event("run2", n_cands=3)
    event["candidates"][0]["mass"] = 1.5
    event["candidates"][1]["pv_ntracks"] = 0.0
    event["candidates"][2]["mu1_trig_dr"] = 0.9
    sel = select_event(event, "run2", C)
    got = {label: sel.steps[label] for label in CUTFLOW_ROWS}
    assert got["events"] == (True, 3)
    assert got["trigger"] == (True, 3)
    assert got["mass_window"] == (True, 2)
    assert got["pv_tracks"] == (True, 1)
    assert all(got[label] == (True, 1) for label in RUN2_STEPS[3:-1])
    assert got["trigger_match"] == (False, 0)
    assert got["best_candidate"] == (False, 0)
    assert sel.best == -1


def test_run3_steps_combine_with_and_across_candidates():
    event = _event("run3", n_cands=3)
    event["candidates"][0]["mass"] = 1.5
    event["candidates"][1]["flightDistBSSig"] = 1.0
    event["candidates"][2]["tr_idx"] = 1
    sel = select_event(event, "run3", C)
    got = {label: sel.steps[label] for label in RUN3_CUTFLOW_ROWS}
    assert got["events"] == (True, 3)
    assert got["trigger"] == (True, 3)
    assert got["acceptance"] == (True, 2)
    assert got["flight_significance"] == (True, 1)
    assert all(got[label] == (True, 1) for label in ("muon_id", "track_ip", "phi_mass"))
    assert got["mass_window"] == (False, 0)
    assert got["trigger_match"] == (False, 0)
    assert got["best_candidate"] == (False, 0)
    assert sel.best == -1


@pytest.mark.parametrize("layout", LAYOUTS)
def test_best_is_smallest_chi2_among_survivors(layout):
    event = _event(layout, n_cands=4)
    chi2 = [0.5, 3.0, 2.0, 2.5]
    for cand, value in zip(event["candidates"], chi2, strict=True):
        cand[CHI2[layout]] = value
    event["candidates"][0][FLIGHT[layout]] = 1.0  # the smallest chi2 fails a cut
    assert select_event(event, layout, C).best == 2


@pytest.mark.parametrize("layout", LAYOUTS)
def test_best_ties_go_to_the_lowest_index(layout):
    event = _event(layout, n_cands=4)
    for cand, value in zip(event["candidates"], [4.0, 2.0, 1.0, 1.0], strict=True):
        cand[CHI2[layout]] = value
    assert select_event(event, layout, C).best == 2
    event["candidates"][2]["mass"] = 3.0
    assert select_event(event, layout, C).best == 3


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nan_chi2_never_wins(layout):
    event = _event(layout, n_cands=2)
    event["candidates"][0][CHI2[layout]] = math.nan
    event["candidates"][1][CHI2[layout]] = 9.0
    assert select_event(event, layout, C).best == 1
    event["candidates"][1][CHI2[layout]] = math.nan
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
    assert run2_trigger(names(hlt), decisions(hlt), names(l1), decisions(l1), R2) is fired


RUN3_HLT = "Trigger_HLT_DoubleMu4_3_LowMass_v"
RUN3_L1 = f"Trigger_{L1_OK}"
TRIGGER_RUN3 = [
    ({RUN3_HLT: 1, RUN3_L1: 1}, True),
    *(({RUN3_HLT: 1, f"Trigger_{seed}": 1}, True) for seed in R3.l1_seeds),
    ({RUN3_HLT: 0, RUN3_L1: 1}, False),
    ({RUN3_HLT: 1, RUN3_L1: 0}, False),
    # a seed the producer keeps that the Ds -> phi pi selection does not take
    ({RUN3_HLT: 1, "Trigger_L1_TripleMu_5SQ_3SQ_0_DoubleMu_5_3_SQ_OS_Mass_Max9": 1}, False),
    ({"Trigger_HLT_DoubleMu3_Trk_Tau3mu": 1, RUN3_L1: 1}, False),  # the Run 2 path
    ({"Trigger_HLT_DoubleMu4_LowMass_Displaced_v": 1, RUN3_L1: 1}, False),
    ({"HLT_DoubleMu4_3_LowMass_v": 1, "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4": 1}, False),  # no prefix
    ({RUN3_L1: 1}, False),  # no HLT branch at all
]


@pytest.mark.parametrize(("bits", "fired"), TRIGGER_RUN3)
def test_run3_trigger(bits, fired):
    assert run3_trigger(bits, R3) is fired


def test_trigger_patterns_come_from_the_config():
    run2 = Run2Selection(hlt_pattern="HLT_DoubleMu4_3_LowMass", l1_patterns=("L1_SingleMu",))
    assert run2_trigger(["HLT_DoubleMu4_3_LowMass_v2"], [1], ["L1_SingleMu22"], [1], run2)
    assert not run2_trigger([HLT_OK], [1], [L1_OK], [1], run2)
    run3 = Run3Selection(
        hlt_paths=("HLT_DoubleMu4_LowMass_Displaced_v",), l1_seeds=("L1_SingleMu22",)
    )
    bits = {"Trigger_HLT_DoubleMu4_LowMass_Displaced_v": 1, "Trigger_L1_SingleMu22": 1}
    assert run3_trigger(bits, run3)
    assert not run3_trigger({RUN3_HLT: 1, RUN3_L1: 1}, run3)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_trigger_row_counts_fired_events_and_their_candidates(layout):
    event = _event(layout, n_cands=2)
    event["trigger"] = False
    sel = select_event(event, layout, C)
    assert sel.steps["events"] == (True, 2)
    assert all(sel.steps[label] == (False, 0) for label in ROWS[layout][1:])
    empty = _event(layout, n_cands=0)
    sel = select_event(empty, layout, C)
    assert sel.steps["trigger"] == (True, 0)  # fired, without candidates
    assert sel.steps[STEPS[layout][1]] == (False, 0)


# -- tiny files: the readers ------------------------------------------------------------------


def _float32_exact(events: list[dict]) -> list[dict]:
    """The Run 3 events with every float rounded to float32, as the producer stores them
    (the dictionaries' results are then the file's)."""
    for event in events:
        for key in ("candidates", "muons", "tracks"):
            for row in event[key]:
                for name, value in row.items():
                    if isinstance(value, float):
                        row[name] = float(np.float32(value))
    return events


def _events_for_files(layout: str) -> list[dict]:
    """Four events: good; trigger off; two candidates with the best second; a failure."""
    good = _event(layout)
    off = _event(layout)
    off["trigger"] = False
    two = _event(layout, n_cands=2)
    two["candidates"][0][CHI2[layout]] = 3.0
    two["candidates"][1]["mass"] = 1.8
    bad = _event(layout, n_cands=1)
    bad["candidates"][0][FLIGHT[layout]] = 1.0
    events = [good, off, two, bad]
    for i, ev in enumerate(events):
        ev["ids"] = (1, 10 + i, 100 + i)
        for j, cand in enumerate(ev["candidates"]):
            cand["truth"] = j % 2
    return _float32_exact(events) if layout == "run3" else events


def _expected(events: list[dict], layout: str) -> tuple[dict, list]:
    flow = {label: {"events": 0, "candidates": 0} for label in ROWS[layout]}
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


#: the producer's branch types of the fields the hand-made Run 3 files carry
_RUN3_INTS = {"mu1_idx": "int32", "mu2_idx": "int32", "tr_idx": "int32", "truth": "int32"}
_RUN3_MUON_TYPES = {"charge": "int32", "isGlobal": "bool", "isPF": "bool", "isMedium": "bool"}
_RUN3_REFITS = (
    ("refit_mu1_pt", "mu1_idx", "muons"),
    ("refit_mu2_pt", "mu2_idx", "muons"),
    ("refit_tr_pt", "tr_idx", "tracks"),
)


def _write_run3(path, events: list[dict]) -> None:
    """The producer's layout, written from the dictionaries: ``Cand2MuTrk_*``, ``Muon_*``
    with the five match flags, ``Track_*``, uint8 ``Trigger_*`` bits (look-alikes that must
    not count among them). Fields the dictionaries lack and no cut reads (refitted pts,
    track charge) are filled in."""
    import awkward as ak
    import uproot

    def coll(key: str, fields: list[str], dtypes: dict[str, str]) -> ak.Array:
        return ak.zip(
            {
                name: ak.values_astype(
                    ak.Array([[row[name] for row in ev[key]] for ev in events]),
                    dtypes.get(name, "float32"),
                )
                for name in fields
            }
        )

    for ev in events:  # the refitted pts (not cut on): the linked objects', -99 for none
        for cand in ev["candidates"]:
            for name, link, owner in _RUN3_REFITS:
                index = int(cand[link])
                rows = ev[owner]
                cand.setdefault(name, rows[index]["pt"] if 0 <= index < len(rows) else -99.0)
        for track in ev["tracks"]:
            track.setdefault("charge", 1)
    candidate = ["mass", "chi2", "flightDistBSSig", "mu1_idx", "mu2_idx", "tr_idx"]
    candidate += [name for name, _, _ in _RUN3_REFITS]
    if any("truth" in c for ev in events for c in ev["candidates"]):
        candidate.append("truth")
    muon = ["pt", "eta", "phi", "energy", "charge", "isGlobal", "isPF", "isMedium"]
    muon += ["trgDR", "trgDPT", *R3.matched_paths]
    flags = dict.fromkeys(R3.matched_paths, "int32")
    fired = np.array([ev["trigger"] for ev in events], dtype=np.uint8)
    ones = np.ones(len(events), dtype=np.uint8)
    data = {
        "Cand2MuTrk": coll("candidates", candidate, _RUN3_INTS),
        "Muon": coll("muons", muon, _RUN3_MUON_TYPES | flags),
        "Track": coll("tracks", ["pt", "eta", "phi", "charge", "dz", "dxy"], {"charge": "int32"}),
        RUN3_HLT: fired,
        RUN3_L1: fired,
        # look-alikes that must not count: another path, a seed outside the selection's
        "Trigger_HLT_DoubleMu3_Trk_Tau3mu": ones,
        "Trigger_L1_TripleMu_5SQ_3SQ_0_DoubleMu_5_3_SQ_OS_Mass_Max9": ones,
    }
    for position, name in enumerate(("run", "luminosityBlock", "event")):
        dtype = np.uint64 if name == "event" else np.uint32
        data[name] = np.array([ev["ids"][position] for ev in events], dtype=dtype)
    with uproot.recreate(path) as f:
        tree = f.mktree(
            "Events",
            {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()},
            counter_name=lambda collection: f"n{collection}",
            field_name=lambda collection, field: f"{collection}_{field}",
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

    cand_map = dict(RUN2.candidate(C.trigger_match_year(None)))
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
    """Every case of this module as one event each, for files that other tools read
    (Run 3: float32-exact, as the producer stores them).

    Candidates that pass get distinct masses across ``h_mass``, so that a histogram
    comparison sees which candidate and which event were kept.
    """
    events = _run2_boundary_events() if layout == "run2" else _run3_boundary_events()
    for i, ev in enumerate(events):
        ev["ids"] = (1, 1 + i // 10, 1000 + i)
        for cand in ev["candidates"]:
            if cand["mass"] == 1.97:
                cand["mass"] = 1.66 + 0.0057 * (i % 60)
            cand["truth"] = i % 3
    return _float32_exact(events) if layout == "run3" else events


def _best_candidate_events(layout: str) -> list[dict]:
    """Several candidates: best among survivors, ties, NaN chi2."""
    events = []
    for chi2, failing in (
        ([0.5, 3.0, 2.0, 2.5], 0),
        ([4.0, 2.0, 1.0, 1.0], None),
        ([4.0, 2.0, 1.0, 1.0], 2),
        ([math.nan, 9.0, 8.0, 9.5], None),
        ([math.nan, math.nan, 7.0, 1.0], 3),
    ):
        ev = _event(layout, n_cands=4)
        for k, (cand, value) in enumerate(zip(ev["candidates"], chi2, strict=True)):
            cand[CHI2[layout]] = value
            cand["mass"] = 1.70 + 0.05 * k
        if failing is not None:
            ev["candidates"][failing][FLIGHT[layout]] = 1.0
        events.append(ev)
    events.append(_event(layout, n_cands=0))
    off = _event(layout, n_cands=2)
    off["trigger"] = False
    events.append(off)
    return events


def _run2_boundary_events() -> list[dict]:
    events: list[dict] = []
    add = events.append
    for name, value, _ in CANDIDATE_BOUNDARIES:
        ev = _event("run2")
        ev["candidates"][0][name] = value
        add(ev)
    for which, pt, eta, fails in ACCEPTANCE:
        add(_acceptance_event("run2", which, pt, eta, fails))
    for mu1, mu2, trk, _ in DELTA_R:
        ev = _event("run2")
        for which, (eta, phi) in (("mu1", mu1), ("mu2", mu2), ("trk", trk)):
            _set_kin(ev, "run2", which, eta=eta, phi=phi)
        add(ev)
    for muon in (0, 1, 2):
        for flag in ("is_global", "is_pf"):
            ev = _event("run2")
            ev["muons"][muon][flag] = 0.0
            add(ev)
    for name, value, _ in TRACK_IP:
        ev = _event("run2")
        ev["tracks"][0][name] = value
        add(ev)
    ev = _event("run2")
    ev["tracks"][1]["dz"] = 50.0
    add(ev)
    for mass, _ in PHI_MASS:
        ev = _event("run2")
        ev["candidates"][0]["mu1_refit_pt"] = ev["candidates"][0]["mu2_refit_pt"] = _refit_pt(mass)
        add(ev)
    for refit in REFIT_FAILURES:
        ev = _event("run2")
        ev["candidates"][0].update(refit)
        add(ev)
    for field_name, delta in (("mu1_pt", 0.001), ("mu2_eta", 1e-4), ("trk_phi", 1e-12)):
        ev = _event("run2")  # no match in the collection
        ev["candidates"][0][field_name] += delta
        add(ev)
    ev = _event("run2")
    ev["muons"].reverse()
    add(ev)
    # several candidates: AND across steps
    ev = _event("run2", n_cands=3)
    ev["candidates"][0]["mass"] = 1.5
    ev["candidates"][1]["pv_ntracks"] = 0.0
    ev["candidates"][2]["mu1_trig_dr"] = 0.9
    add(ev)
    events += _best_candidate_events("run2")
    for hlt, l1, fired in TRIGGER_RUN2:
        ev = _event("run2")
        ev["trigger"] = fired
        ev["hlt"], ev["l1"] = hlt or [("HLT_Nothing_v1", 0)], l1 or [("L1_Nothing", 0)]
        add(ev)
    return events


def _run3_boundary_events() -> list[dict]:
    events: list[dict] = []
    add = events.append
    for name, value, _ in RUN3_CANDIDATE_BOUNDARIES:
        ev = _event("run3")
        ev["candidates"][0][name] = value
        add(ev)
    for which, pt, eta, fails in RUN3_ACCEPTANCE:
        add(_acceptance_event("run3", which, pt, eta, fails))
    for muon, name, value, _ in RUN3_MUON_CASES:
        ev = _event("run3")
        ev["muons"][muon][name] = value
        add(ev)
    for path in R3.matched_paths:
        ev = _event("run3")
        for muon in ev["muons"][:2]:
            muon[MATCH_PATH] = 0
            muon[path] = 1
        add(ev)
    for name, value, _ in TRACK_IP:
        ev = _event("run3")
        ev["tracks"][0][name] = value
        add(ev)
    ev = _event("run3")
    ev["tracks"][1]["dz"] = 50.0
    add(ev)
    for mass, _ in RUN3_PHI_MASS:
        ev = _event("run3")
        _set_phi_mass(ev, mass)
        add(ev)
    for link in ("mu1_idx", "mu2_idx", "tr_idx"):
        for index in (-1, 7):
            ev = _event("run3")
            ev["candidates"][0][link] = index
            add(ev)
    for link, index in (("mu1_idx", 2), ("tr_idx", 1)):
        ev = _event("run3")
        ev["candidates"][0][link] = index
        add(ev)
    # several candidates: AND across steps
    ev = _event("run3", n_cands=3)
    ev["candidates"][0]["mass"] = 1.5
    ev["candidates"][1]["flightDistBSSig"] = 1.0
    ev["candidates"][2]["tr_idx"] = 1
    add(ev)
    return events + _best_candidate_events("run3")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_boundary_events_exercise_every_step(layout):
    events = boundary_events(layout)
    first = [_first_failure(ev, layout) if ev["candidates"] else "empty" for ev in events]
    for label in STEPS[layout]:
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


def test_run3_boundary_file(tmp_path):
    """The Run 3 reader reproduces the dictionaries' results on every boundary case."""
    events = boundary_events("run3")
    path = tmp_path / "boundaries_run3.root"
    _write_run3(path, events)
    flow, best = _expected(events, "run3")
    result = reference_select(str(path), "run3")
    assert result.cutflow == flow
    assert result.best == best


# -- ct and truth origin on hand-made candidates --------------------------------------------
def test_reference_proper_decay_length():
    from reference_selection import proper_decay_length

    cand = {"flight_dist": 0.03, "mass": 1.968, "pt": 10.0}
    assert proper_decay_length(cand) == 0.03 * 1.968 / 10.0
    assert math.isnan(proper_decay_length({"mass": 1.968, "pt": 10.0}))


def _gen(pdg, eta, phi, is_b=0):
    return {"pdg_id": pdg, "pt": 8.0, "eta": eta, "phi": phi, "is_b_decay": is_b}


def test_reference_run2_origin_takes_the_closest_ds_in_the_cone():
    from reference_selection import truth_origin

    cand = {"eta": 0.5, "phi": 3.13}
    across = 3.13 + 0.02 - 2 * math.pi  # dR 0.02 across the phi wrap
    cases = [
        ([_gen(431, 0.5, across, 1), _gen(-431, 0.51, 3.13, 0)], 1),  # closer one: prompt
        ([_gen(431, 0.5, across, 1)], 2),
        ([_gen(-431, 0.5, 3.13 + 0.031, 0)], 0),  # outside the cone
        ([_gen(411, 0.5, 3.13, 1)], 0),  # a D+ is no Ds
        ([], 0),
    ]
    for gen, expected in cases:
        assert truth_origin({"gen": gen}, cand, "run2") == expected, gen
    assert truth_origin({"gen": None}, cand, "run2") == 0  # data


def test_reference_run3_origin_from_the_muons_decay_type():
    from reference_selection import truth_origin

    cand = {"eta": -1.0, "phi": 0.2, "mu1_idx": 1, "mu2_idx": 0}
    ds = [_gen(431, -1.0, 0.21)]
    for types, expected in [((1, 1), 1), ((2, 2), 2), ((1, 2), 2), ((0, 1), 0), ((3, 2), 0)]:
        muons = [{"decayType": types[1]}, {"decayType": types[0]}]
        assert truth_origin({"gen": ds, "muons": muons}, cand, "run3") == expected, types
    muons = [{"decayType": 1}, {"decayType": 1}]
    assert truth_origin({"gen": [_gen(411, -1.0, 0.2)], "muons": muons}, cand, "run3") == 0
