"""An independent, plain per-event implementation of both periods' selections: the
processor's yardstick (``docs/physics.md``, "Selection").

Loops over events and candidates with Python floats and ``math``. It shares nothing with
the columnar code (``tau3mu.processors``, ``tau3mu.kernels``) but the configuration (cut
values) and, for Run 2, the layout's branch names; the Run 3 part spells the producer's
branch names itself.

Structure, so that each piece can be tested on hand-made input:

- :func:`read_events` turns a file of either layout into per-event dictionaries
  (``ids``, ``trigger``, ``candidates``, ``muons``, ``tracks``) of Python scalars;
- :func:`run2_trigger` / :func:`run3_trigger` evaluate step 1;
- :func:`run2_links` / :func:`run3_links` find each candidate's muons and track
  (Run 2: by value, Run 3: by index) and the kinematics steps 5 and 6 read;
- :func:`candidate_steps` evaluates steps 2-10 for one candidate, each on its own;
- :func:`select_event` combines them with AND, counts, and picks the best candidate;
- :func:`reference_select` sums everything over files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from tau3mu.config import (
    RUN2_STEPS,
    RUN3_STEPS,
    TRUTH_BACKGROUND,
    TRUTH_DPLUS,
    TRUTH_DS,
    Run2Selection,
    Run3Selection,
    SelectionConfig,
)
from tau3mu.layouts import RUN2

#: cutflow rows in order: the input, the ten Run 2 steps, the best candidate
CUTFLOW_ROWS: tuple[str, ...] = ("events", *RUN2_STEPS, "best_candidate")
#: the same for Run 3
RUN3_CUTFLOW_ROWS: tuple[str, ...] = ("events", *RUN3_STEPS, "best_candidate")
TRUTH_NAMES = {TRUTH_BACKGROUND: "background", TRUTH_DS: "ds", TRUTH_DPLUS: "dplus"}

Kinematics = tuple[float, float, float]  # (pt, eta, phi)
#: the muon and track fields the selection reads
MUON_KEYS = ("pt", "eta", "phi", "is_global", "is_pf")
TRACK_KEYS = ("pt", "eta", "phi", "dz", "dxy")


@dataclass
class ReferenceResult:
    """What the selection produces, summed over all files.

    ``cutflow``: ``{label: {"events": n, "candidates": n}}`` for every label of
    :data:`CUTFLOW_ROWS` (the processor's format). ``best``: one
    ``(run, lumi, event, best_candidate_index, mass)`` per selected event, in file order.
    ``truth``: truth category of the best candidates inside the ``h_mass`` range
    (zeros when the files carry no truth branch; see ``has_truth``).
    """

    cutflow: dict[str, dict[str, int]]
    best: list[tuple[int, int, int, int, float]] = field(default_factory=list)
    #: per selected event, what the control histograms show of its best candidate
    #: (:func:`control_quantities`)
    controls: list[dict[str, float]] = field(default_factory=list)
    truth: dict[str, int] = field(default_factory=dict)
    has_truth: bool = False
    config: SelectionConfig = field(default_factory=SelectionConfig)
    layout: str = "run2"

    @property
    def cutflow_pairs(self) -> dict[str, tuple[int, int]]:
        """``{label: (events, candidates)}``."""
        return {k: (v["events"], v["candidates"]) for k, v in self.cutflow.items()}

    @property
    def truth_counts(self) -> dict[str, int] | None:
        """Truth counts, ``None`` when the files carry no truth branch."""
        return dict(self.truth) if self.has_truth else None

    @property
    def best_masses(self) -> list[float]:
        """Best-candidate masses (all of them, also outside the histogram range)."""
        return [b[4] for b in self.best]

    def masses(self) -> np.ndarray:
        return np.array(self.best_masses, dtype=np.float64)

    def h_mass(self) -> np.ndarray:
        """Counts of ``h_mass`` (``config.mass_axis``; under- and overflow dropped)."""
        return histogram(self.best_masses, self.config)


def histogram(masses: list[float], config: SelectionConfig) -> np.ndarray:
    """Regular-binned counts, bins closed on the left (as ROOT's ``TAxis::FindBin``)."""
    axis = config.mass_axis
    counts = np.zeros(axis.bins, dtype=np.float64)
    for m in masses:
        if axis.start <= m < axis.stop:
            i = int(axis.bins * (m - axis.start) / (axis.stop - axis.start))
            counts[min(i, axis.bins - 1)] += 1
    return counts


# -- step 1: trigger ----------------------------------------------------------------------


def run2_trigger(
    hlt_names: list[str],
    hlt_decisions: list[int],
    l1_names: list[str],
    l1_decisions: list[int],
    config: Run2Selection,
) -> bool:
    """An HLT path containing ``hlt_pattern`` fired and an L1 seed containing one of ``l1_patterns`` fired."""
    hlt = False
    for name, decision in zip(hlt_names, hlt_decisions, strict=False):
        if config.hlt_pattern in name and decision != 0:
            hlt = True
    l1 = False
    for name, decision in zip(l1_names, l1_decisions, strict=False):
        if decision != 0 and any(p in name for p in config.l1_patterns):
            l1 = True
    return hlt and l1


def run3_trigger(bits: dict[str, int], config: Run3Selection) -> bool:
    """One of the HLT path bits and one of the L1 seed bits is 1 (``Trigger_<name>``)."""
    hlt = any(bits.get(f"Trigger_{p}", 0) == 1 for p in config.hlt_paths)
    l1 = any(bits.get(f"Trigger_{s}", 0) == 1 for s in config.l1_seeds)
    return hlt and l1


# -- links between a candidate and the collections ---------------------------------------


def _f32(x: float) -> float:
    return float(np.float32(x))


def match_muon(copy: Kinematics, muons: list[dict[str, float]]) -> int:
    """First muon whose float32 (pt, eta, phi) equals the candidate's copy rounded to float32."""
    key = (_f32(copy[0]), _f32(copy[1]), _f32(copy[2]))
    for j, mu in enumerate(muons):
        if (_f32(mu["pt"]), _f32(mu["eta"]), _f32(mu["phi"])) == key:
            return j
    return -1


def match_track(copy: Kinematics, tracks: list[dict[str, float]]) -> int:
    """First track whose (pt, eta, phi) equals the candidate's copy exactly (doubles)."""
    for j, trk in enumerate(tracks):
        if (trk["pt"], trk["eta"], trk["phi"]) == copy:
            return j
    return -1


@dataclass
class Links:
    """Indices into the collections (-1: none) and the kinematics steps 5 and 6 read."""

    mu1: int
    mu2: int
    trk: int
    mu1_kin: Kinematics | None
    mu2_kin: Kinematics | None
    trk_kin: Kinematics | None


def run2_links(cand: dict[str, Any], muons: list[dict], tracks: list[dict]) -> Links:
    """Run 2: match by value; acceptance and delta R use the candidate's own copies."""
    mu1 = (cand["mu1_pt"], cand["mu1_eta"], cand["mu1_phi"])
    mu2 = (cand["mu2_pt"], cand["mu2_eta"], cand["mu2_phi"])
    trk = (cand["trk_pt"], cand["trk_eta"], cand["trk_phi"])
    return Links(
        match_muon(mu1, muons), match_muon(mu2, muons), match_track(trk, tracks), mu1, mu2, trk
    )


def _entry(collection: list[dict], index: int) -> Kinematics | None:
    if 0 <= index < len(collection):
        e = collection[index]
        return (e["pt"], e["eta"], e["phi"])
    return None


def run3_links(cand: dict[str, Any], muons: list[dict], tracks: list[dict]) -> Links:
    """Run 3: explicit indices (-1 or out of range: none); kinematics from the collections."""
    i1, i2, it = int(cand["mu1_idx"]), int(cand["mu2_idx"]), int(cand["trk_idx"])
    k1, k2, kt = _entry(muons, i1), _entry(muons, i2), _entry(tracks, it)
    return Links(
        i1 if k1 is not None else -1,
        i2 if k2 is not None else -1,
        it if kt is not None else -1,
        k1,
        k2,
        kt,
    )


# -- steps 2-10 ---------------------------------------------------------------------------


def delta_phi(a: float, b: float) -> float:
    """a - b wrapped into [-pi, pi]."""
    d = a - b
    while d > math.pi:
        d -= 2 * math.pi
    while d < -math.pi:
        d += 2 * math.pi
    return d


def delta_r(a: Kinematics, b: Kinematics) -> float:
    return math.hypot(a[1] - b[1], delta_phi(a[2], b[2]))


def muon_accepted(pt: float, eta: float, c: Run2Selection) -> bool:
    a = abs(eta)
    barrel = a < c.barrel_max_abseta and pt > c.barrel_min_pt
    endcap = c.barrel_max_abseta <= a < c.endcap_max_abseta and pt > c.endcap_min_pt
    return barrel or endcap


def pair_mass(r1: Kinematics, r2: Kinematics, m: float) -> float:
    """Invariant mass of two tracks of mass ``m``; NaN when a refit failed (pt <= 0, -99)."""
    if not (r1[0] > 0 and r2[0] > 0):
        return math.nan
    e = px = py = pz = 0.0
    try:
        for pt, eta, phi in (r1, r2):
            x, y, z = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
            e += math.sqrt(x * x + y * y + z * z + m * m)
            px, py, pz = px + x, py + y, pz + z
    except (OverflowError, ValueError):
        return math.nan
    m2 = e * e - px * px - py * py - pz * pz
    return math.sqrt(m2) if m2 > 0 else 0.0


def candidate_steps(
    cand: dict[str, Any],
    links: Links,
    muons: list[dict],
    tracks: list[dict],
    c: Run2Selection,
) -> dict[str, bool]:
    """Run 2 steps 2-10 for one candidate, each on its own (the caller combines them with AND)."""
    k1, k2, kt = links.mu1_kin, links.mu2_kin, links.trk_kin
    have_kin = k1 is not None and k2 is not None and kt is not None

    acceptance = (
        have_kin
        and muon_accepted(k1[0], k1[1], c)
        and muon_accepted(k2[0], k2[1], c)
        and kt[0] > c.track_min_pt
    )
    lo, hi = c.delta_r_window
    dr_ok = have_kin and all(lo < delta_r(a, b) < hi for a, b in ((k1, k2), (k1, kt), (k2, kt)))

    muon_id = links.mu1 >= 0 and links.mu2 >= 0
    if muon_id:
        for j in (links.mu1, links.mu2):
            muon_id = muon_id and muons[j]["is_global"] > 0 and muons[j]["is_pf"] > 0

    track_ip = links.trk >= 0
    if track_ip:
        trk = tracks[links.trk]
        track_ip = abs(trk["dz"]) < c.max_track_abs_dz and abs(trk["dxy"]) < c.max_track_abs_dxy

    refit1 = (cand["mu1_refit_pt"], cand["mu1_refit_eta"], cand["mu1_refit_phi"])
    refit2 = (cand["mu2_refit_pt"], cand["mu2_refit_eta"], cand["mu2_refit_phi"])
    phi_mass = pair_mass(refit1, refit2, c.muon_mass)  # NaN fails both comparisons

    return {
        "mass_window": c.mass_window[0] < cand["mass"] < c.mass_window[1],
        "pv_tracks": cand["pv_ntracks"] > c.min_pv_tracks,
        "flight_significance": cand["flight_sig"] > c.min_flight_significance,
        "acceptance": bool(acceptance),
        "delta_r": bool(dr_ok),
        "muon_id": bool(muon_id),
        "track_ip": bool(track_ip),
        "phi_mass": c.phi_mass_window[0] < phi_mass < c.phi_mass_window[1],
        "trigger_match": cand["mu1_trig_dr"] < c.max_trigger_dr
        and cand["mu2_trig_dr"] < c.max_trigger_dr,
    }


def run3_accepted(pt: float, eta: float, c: Run3Selection) -> bool:
    """The group's Run 3 acceptance: barrel ``|eta| <= 1.2``, endcap ``1.2 < |eta| < 2.4``."""
    a = abs(eta)
    barrel = a <= c.barrel_max_abseta and pt > c.barrel_min_pt
    endcap = c.barrel_max_abseta < a < c.endcap_max_abseta and pt > c.endcap_min_pt
    return barrel or endcap


def four_vector_mass(a: dict[str, float], b: dict[str, float]) -> float:
    """Mass of two particles from their (pt, eta, phi, energy)."""
    e = a["energy"] + b["energy"]
    px = a["pt"] * math.cos(a["phi"]) + b["pt"] * math.cos(b["phi"])
    py = a["pt"] * math.sin(a["phi"]) + b["pt"] * math.sin(b["phi"])
    pz = a["pt"] * math.sinh(a["eta"]) + b["pt"] * math.sinh(b["eta"])
    m2 = e * e - px * px - py * py - pz * pz
    return math.sqrt(m2) if m2 > 0 else 0.0


def run3_candidate_steps(
    cand: dict[str, Any], muons: list[dict], tracks: list[dict], c: Run3Selection
) -> dict[str, bool]:
    """The Run 3 steps after the trigger for one candidate, each on its own."""
    i1, i2, it = int(cand["mu1_idx"]), int(cand["mu2_idx"]), int(cand["tr_idx"])
    mu1 = muons[i1] if 0 <= i1 < len(muons) else None
    mu2 = muons[i2] if 0 <= i2 < len(muons) else None
    trk = tracks[it] if 0 <= it < len(tracks) else None
    linked = mu1 is not None and mu2 is not None and trk is not None
    if not linked:
        return dict.fromkeys(RUN3_STEPS[1:], False) | {
            "flight_significance": cand["flightDistBSSig"] >= c.min_flight_significance,
            "mass_window": c.mass_window[0] <= cand["mass"] <= c.mass_window[1],
        }

    def matched(mu: dict[str, float]) -> bool:
        flag = any(mu.get(path, 0) > 0 for path in c.matched_paths)
        return (
            flag and abs(mu["trgDR"]) < c.max_trigger_dr and abs(mu["trgDPT"]) < c.max_trigger_dpt
        )

    phi = four_vector_mass(mu1, mu2)
    return {
        "acceptance": all(run3_accepted(x["pt"], x["eta"], c) for x in (mu1, mu2, trk)),
        "flight_significance": cand["flightDistBSSig"] >= c.min_flight_significance,
        "muon_id": all(m["isGlobal"] > 0 and m["isMedium"] > 0 for m in (mu1, mu2)),
        "track_ip": abs(trk["dz"]) < c.max_track_abs_dz and abs(trk["dxy"]) < c.max_track_abs_dxy,
        "phi_mass": mu1["charge"] + mu2["charge"] == 0
        and c.phi_mass_window[0] <= phi <= c.phi_mass_window[1],
        "mass_window": c.mass_window[0] <= cand["mass"] <= c.mass_window[1],
        "trigger_match": matched(mu1) and matched(mu2),
    }


@dataclass
class EventSelection:
    """One event: ``(passes, candidates)`` after each step, and the best candidate (-1: none)."""

    steps: dict[str, tuple[bool, int]]
    best: int


def select_event(event: dict[str, Any], layout: str, c: SelectionConfig) -> EventSelection:
    """The period's steps combined with AND per candidate, then the best candidate.

    ``event``: ``{"trigger": bool, "candidates": [...], "muons": [...], "tracks": [...]}``
    as :func:`read_events` yields (Run 2 candidate keys: the analysis names of
    :mod:`tau3mu.layouts`; Run 3: the producer's field names).
    """
    cands, muons, tracks = event["candidates"], event["muons"], event["tracks"]
    n = len(cands)
    steps: dict[str, tuple[bool, int]] = {"events": (True, n)}
    fired = bool(event["trigger"])
    steps["trigger"] = (fired, n if fired else 0)
    alive = [fired] * n
    if layout == "run2":
        labels = RUN2_STEPS
        per_cand = [
            candidate_steps(cand, run2_links(cand, muons, tracks), muons, tracks, c.run2)
            for cand in cands
        ]
        chi2_key = "vtx_chi2"
    else:
        labels = RUN3_STEPS
        per_cand = [run3_candidate_steps(cand, muons, tracks, c.run3) for cand in cands]
        chi2_key = "chi2"
    for label in labels[1:]:
        alive = [a and p[label] for a, p in zip(alive, per_cand, strict=True)]
        steps[label] = (any(alive), sum(alive))
    best = -1
    for j, cand in enumerate(cands):
        chi2 = cand[chi2_key]
        if not alive[j] or math.isnan(chi2):  # a NaN chi2 is no smallest chi2
            continue
        if best < 0 or chi2 < cands[best][chi2_key]:  # strict: ties keep the lower index
            best = j
    steps["best_candidate"] = (best >= 0, int(best >= 0))
    return EventSelection(steps, best)


# -- reading ------------------------------------------------------------------------------


def _rows(arrays: dict[str, np.ndarray], mapping: dict[str, str], i: int) -> list[dict]:
    first = next(iter(mapping.values()))
    return [
        {key: float(arrays[branch][i][j]) for key, branch in mapping.items()}
        for j in range(len(arrays[first][i]))
    ]


#: what ct and the truth origin read, spelled out here: the candidate's momentum and
#: flight distance, the generated particles (Run 2 vectors, Run 3 GenPart)
_RUN2_KINEMATICS = {
    "pt": "Triplet2_Pt",
    "eta": "Triplet2_Eta",
    "phi": "Triplet2_Phi",
    "flight_dist": "FlightDistBS_SV",
}
_RUN2_GEN = {
    "pdg_id": "GenParticle_PdgId",
    "pt": "GenParticle_Pt",
    "eta": "GenParticle_Eta",
    "phi": "GenParticle_Phi",
    "is_b_decay": "GenParticle_isBdecay",
}
_RUN3_GEN = {
    "pdg_id": "GenPart_pdgId",
    "pt": "GenPart_pt",
    "eta": "GenPart_eta",
    "phi": "GenPart_phi",
}


def _present(mapping: dict[str, str], keys: set[str]) -> dict[str, str]:
    return mapping if all(b in keys for b in mapping.values()) else {}


def _read_run2(path: str, c: SelectionConfig, year: str) -> Iterator[dict[str, Any]]:
    tree = uproot.open(path)[RUN2.tree]
    keys = set(tree.keys())
    cand_map = dict(RUN2.candidate(year)) | _present(_RUN2_KINEMATICS, keys)
    gen_map = _present(_RUN2_GEN, keys)
    l1_decision = next(
        b
        for b in ("Trigger_l1decision", "Trigger_l1Finaldecision")
        if b in tree.keys()  # noqa: SIM118
    )
    if RUN2.truth in tree.keys():  # noqa: SIM118 (branch names)
        cand_map["truth"] = RUN2.truth
    muon_map = {k: RUN2.muon[k] for k in MUON_KEYS}
    track_map = {k: RUN2.track[k] for k in TRACK_KEYS}
    names = [
        *cand_map.values(),
        *muon_map.values(),
        *track_map.values(),
        *RUN2.event.values(),
        RUN2.hlt_name,
        RUN2.hlt_decision,
        RUN2.l1_name,
        l1_decision,
        *gen_map.values(),
    ]
    a = tree.arrays(names, library="np")
    for i in range(tree.num_entries):
        yield {
            "ids": tuple(int(a[RUN2.event[k]][i]) for k in ("run", "lumi", "event")),
            "trigger": run2_trigger(
                [str(s) for s in a[RUN2.hlt_name][i]],
                [int(d) for d in a[RUN2.hlt_decision][i]],
                [str(s) for s in a[RUN2.l1_name][i]],
                [int(d) for d in a[l1_decision][i]],
                c.run2,
            ),
            "candidates": _rows(a, cand_map, i),
            "muons": _rows(a, muon_map, i),
            "tracks": _rows(a, track_map, i),
            "gen": _rows(a, gen_map, i) if gen_map else None,
        }


#: the producer's Run 3 fields the reference reads, spelled out here
_RUN3_CANDIDATE = ("mass", "chi2", "flightDistBSSig", "mu1_idx", "mu2_idx", "tr_idx")
_RUN3_MUON = ("pt", "eta", "phi", "energy", "charge", "isGlobal", "isMedium", "trgDR", "trgDPT")
_RUN3_TRACK = ("pt", "eta", "phi", "dz", "dxy")


def _read_run3(path: str, c: SelectionConfig) -> Iterator[dict[str, Any]]:
    tree = uproot.open(path)["Events"]
    keys = set(tree.keys())
    cand_map = {k: f"Cand2MuTrk_{k}" for k in _RUN3_CANDIDATE}
    if "Cand2MuTrk_truth" in keys:
        cand_map["truth"] = "Cand2MuTrk_truth"
    extra = {k: f"Cand2MuTrk_{k}" for k in ("pt", "eta", "phi")}
    cand_map |= _present({**extra, "flight_dist": "Cand2MuTrk_flightDistBS"}, keys)
    flags = [p for p in c.run3.matched_paths if f"Muon_{p}" in keys]
    muon_map = {k: f"Muon_{k}" for k in (*_RUN3_MUON, *flags)}
    if "Muon_decayType" in keys:
        muon_map["decayType"] = "Muon_decayType"
    track_map = {k: f"Track_{k}" for k in _RUN3_TRACK}
    gen_map = _present(_RUN3_GEN, keys)
    bits = [b for b in keys if b.startswith("Trigger_")]
    ids = ("run", "luminosityBlock", "event")
    names = [*cand_map.values(), *muon_map.values(), *track_map.values(), *ids, *bits]
    names += list(gen_map.values())
    a = tree.arrays(names, library="np")
    for i in range(tree.num_entries):
        yield {
            "ids": tuple(int(a[k][i]) for k in ids),
            "trigger": run3_trigger({b: int(a[b][i]) for b in bits}, c.run3),
            "candidates": _rows(a, cand_map, i),
            "muons": _rows(a, muon_map, i),
            "tracks": _rows(a, track_map, i),
            "gen": _rows(a, gen_map, i) if gen_map else None,
        }


def read_events(
    path: str | Path, layout: str, config: SelectionConfig, year: str = "2017"
) -> Iterator[dict]:
    """Per-event dictionaries of Python scalars from one file of ``layout`` (Run 2: the
    trigger-match branches of ``year``)."""
    if layout == "run2":
        return _read_run2(str(path), config, year)
    if layout == "run3":
        return _read_run3(str(path), config)
    raise ValueError(f"unknown layout {layout!r}; expected 'run2' or 'run3'")


def has_truth_branch(path: str | Path, layout: str) -> bool:
    tree, truth = (
        ("Tree3Mu/ntuple", RUN2.truth) if layout == "run2" else ("Events", "Cand2MuTrk_truth")
    )
    return truth in uproot.open(str(path))[tree].keys()  # noqa: SIM118 (branch names)


def proper_decay_length(cand: dict[str, Any]) -> float:
    """ct = flight distance x mass / pt (cm); NaN without the branches."""
    if "flight_dist" not in cand or "pt" not in cand:
        return math.nan
    return cand["flight_dist"] * cand["mass"] / cand["pt"]


def truth_origin(event: dict[str, Any], cand: dict[str, Any], layout: str) -> int:
    """0 not a true Ds (or no generated particles), 1 prompt Ds, 2 Ds from a b hadron.

    A generated |pdgId| 431 within dR < 0.03 of the candidate makes it a true Ds; Run 2:
    the closest one's isBdecay decides; Run 3: both muons' decayType must be 1 or 2, and
    a 2 means from a b hadron.
    """
    gen = event.get("gen")
    if not gen or "eta" not in cand:
        return 0
    direction = (0.0, cand["eta"], cand["phi"])
    cone = [
        (delta_r(direction, (0.0, g["eta"], g["phi"])), g)
        for g in gen
        if abs(int(g["pdg_id"])) == 431
    ]
    cone = [(dr, g) for dr, g in cone if dr < 0.03]
    if not cone:
        return 0
    if layout == "run2":
        closest = min(cone, key=lambda pair: pair[0])[1]
        return 2 if int(closest["is_b_decay"]) == 1 else 1
    types = [int(event["muons"][int(cand[f"mu{i}_idx"])].get("decayType", 0)) for i in (1, 2)]
    if not all(t in (1, 2) for t in types):
        return 0
    return 2 if 2 in types else 1


def control_quantities(
    event: dict[str, Any], cand: dict[str, Any], layout: str, c: SelectionConfig
) -> dict[str, float]:
    """What the control histograms show of a best candidate: its mass, its muons' and
    track's pt and eta, the dimuon mass (Run 2: of the refitted tracks; Run 3: of the
    muons, with their energies), the flight significance, the vertex chi2, the proper
    decay length ``ct`` and the truth ``origin``."""
    common = {
        "mass": cand["mass"],
        "ct": proper_decay_length(cand),
        "origin": truth_origin(event, cand, layout),
    }
    return common | _period_quantities(event, cand, layout, c)


def _period_quantities(
    event: dict[str, Any], cand: dict[str, Any], layout: str, c: SelectionConfig
) -> dict[str, float]:
    if layout == "run2":
        refit = [
            tuple(cand[f"{m}_refit_{k}"] for k in ("pt", "eta", "phi")) for m in ("mu1", "mu2")
        ]
        out = {k: cand[k] for k in ("mu1_pt", "mu1_eta", "mu2_pt", "mu2_eta", "trk_pt", "trk_eta")}
        return out | {
            "phi_mass": pair_mass(refit[0], refit[1], c.run2.muon_mass),
            "flight_sig": cand["flight_sig"],
            "vtx_chi2": cand["vtx_chi2"],
        }
    mu1, mu2 = (event["muons"][int(cand[f"mu{i}_idx"])] for i in (1, 2))
    trk = event["tracks"][int(cand["tr_idx"])]
    return {
        "mu1_pt": mu1["pt"],
        "mu1_eta": mu1["eta"],
        "mu2_pt": mu2["pt"],
        "mu2_eta": mu2["eta"],
        "trk_pt": trk["pt"],
        "trk_eta": trk["eta"],
        "phi_mass": four_vector_mass(mu1, mu2),
        "flight_sig": cand["flightDistBSSig"],
        "vtx_chi2": cand["chi2"],
    }


# -- the whole selection -------------------------------------------------------------------


def reference_select(
    path_or_paths: str | Path | list[str | Path],
    layout: str,
    config: SelectionConfig | None = None,
    era: str | None = None,
) -> ReferenceResult:
    """Cutflow, best candidates and truth counts of the period's selection, one event at
    a time (Run 2: the trigger-match branches of ``era``'s year, 2017 without one)."""
    if layout not in ("run2", "run3"):
        raise ValueError(f"unknown layout {layout!r}; expected 'run2' or 'run3'")
    c = config or SelectionConfig()
    paths = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    rows = CUTFLOW_ROWS if layout == "run2" else RUN3_CUTFLOW_ROWS
    result = ReferenceResult(
        cutflow={label: {"events": 0, "candidates": 0} for label in rows},
        truth=dict.fromkeys(("ds", "dplus", "background"), 0),
        config=c,
        layout=layout,
    )
    year = c.trigger_match_year(era)
    axis = c.mass_axis
    for path in paths:
        result.has_truth = result.has_truth or has_truth_branch(path, layout)
        for event in read_events(path, layout, c, year):
            sel = select_event(event, layout, c)
            for label, (passes, n) in sel.steps.items():
                result.cutflow[label]["events"] += int(passes)
                result.cutflow[label]["candidates"] += n
            if sel.best < 0:
                continue
            cand = event["candidates"][sel.best]
            result.best.append((*event["ids"], sel.best, cand["mass"]))
            result.controls.append(control_quantities(event, cand, layout, c))
            if "truth" in cand and axis.start <= cand["mass"] < axis.stop:
                result.truth[TRUTH_NAMES[int(cand["truth"])]] += 1
    return result
