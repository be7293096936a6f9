"""An independent, plain per-event implementation of SPEC section 3: the processor's yardstick.

Loops over events and candidates with Python floats and ``math``; it shares nothing with
the columnar code but the configuration (cut values) and the layouts (branch names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import uproot

from tau3mu.config import CUTFLOW_STEPS, SelectionConfig
from tau3mu.layouts import RUN2, RUN3


@dataclass
class ReferenceResult:
    cutflow: dict[str, dict[str, int]]
    best: list[tuple[int, int, int, int, float]] = field(default_factory=list)
    truth: dict[str, int] = field(default_factory=dict)

    def masses(self) -> np.ndarray:
        return np.array([b[4] for b in self.best])


def _dphi(a: float, b: float) -> float:
    d = a - b
    while d > math.pi:
        d -= 2 * math.pi
    while d < -math.pi:
        d += 2 * math.pi
    return d


def _dr(eta1: float, phi1: float, eta2: float, phi2: float) -> float:
    return math.hypot(eta1 - eta2, _dphi(phi1, phi2))


def _accepted(pt: float, eta: float, c: SelectionConfig) -> bool:
    a = abs(eta)
    return (a < c.barrel_max_abseta and pt > c.barrel_min_pt) or (
        c.barrel_max_abseta <= a < c.endcap_max_abseta and pt > c.endcap_min_pt
    )


def _phi_mass(r1: tuple[float, float, float], r2: tuple[float, float, float], m: float) -> float:
    if r1[0] <= 0 or r2[0] <= 0:  # refit failed (-99 placeholders)
        return math.nan
    e, px, py, pz = 0.0, 0.0, 0.0, 0.0
    for pt, eta, phi in (r1, r2):
        x, y, z = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
        e += math.sqrt(x * x + y * y + z * z + m * m)
        px, py, pz = px + x, py + y, pz + z
    m2 = e * e - px * px - py * py - pz * pz
    return math.sqrt(m2) if m2 > 0 else 0.0


def _first_match(
    values: tuple[float, float, float], collection: list[tuple[float, float, float]]
) -> int:
    for i, entry in enumerate(collection):
        if entry == values:
            return i
    return -1


def candidate_passes(
    cand: dict, muons: list[dict], tracks: list[dict], c: SelectionConfig
) -> list[bool]:
    """Steps 2-10 for one candidate, each on its own (combined with AND by the caller)."""
    i1, i2, it = cand["mu1_idx"], cand["mu2_idx"], cand["trk_idx"]
    mu1 = muons[i1] if 0 <= i1 < len(muons) else None
    mu2 = muons[i2] if 0 <= i2 < len(muons) else None
    trk = tracks[it] if 0 <= it < len(tracks) else None
    kin1, kin2, kint = cand.get("mu1_kin"), cand.get("mu2_kin"), cand.get("trk_kin")
    ok_kin = kin1 is not None and kin2 is not None and kint is not None
    lo, hi = c.delta_r_window
    if ok_kin:
        drs = (
            _dr(kin1[1], kin1[2], kin2[1], kin2[2]),
            _dr(kin1[1], kin1[2], kint[1], kint[2]),
            _dr(kin2[1], kin2[2], kint[1], kint[2]),
        )
    refit1 = (cand["mu1_refit_pt"], cand["mu1_refit_eta"], cand["mu1_refit_phi"])
    refit2 = (cand["mu2_refit_pt"], cand["mu2_refit_eta"], cand["mu2_refit_phi"])
    phi_mass = _phi_mass(refit1, refit2, c.muon_mass)
    return [
        c.mass_window[0] < cand["mass"] < c.mass_window[1],
        cand["pv_ntracks"] > c.min_pv_tracks,
        cand["flight_sig"] > c.min_flight_significance,
        ok_kin
        and _accepted(kin1[0], kin1[1], c)
        and _accepted(kin2[0], kin2[1], c)
        and kint[0] > c.track_min_pt,
        ok_kin and all(lo < d < hi for d in drs),
        mu1 is not None
        and mu2 is not None
        and mu1["is_global"] > 0
        and mu1["is_pf"] > 0
        and mu2["is_global"] > 0
        and mu2["is_pf"] > 0,
        trk is not None
        and abs(trk["dz"]) < c.max_track_abs_dz
        and abs(trk["dxy"]) < c.max_track_abs_dxy,
        c.phi_mass_window[0] < phi_mass < c.phi_mass_window[1],
        cand["mu1_trig_dr"] < c.max_trigger_dr and cand["mu2_trig_dr"] < c.max_trigger_dr,
    ]


def _read(path: str, tree: str, names: list[str]) -> dict[str, np.ndarray]:
    return uproot.open(path)[tree].arrays(names, library="np")


def _events_run2(path: str, c: SelectionConfig):
    cand_map = RUN2.candidate(c.era)
    names = [
        *cand_map.values(),
        *RUN2.muon.values(),
        *RUN2.track.values(),
        *RUN2.event.values(),
        RUN2.hlt_name,
        RUN2.hlt_decision,
        RUN2.l1_name,
        RUN2.l1_decision,
    ]
    tree = uproot.open(path)[RUN2.tree]
    has_truth = RUN2.truth in tree.keys()
    if has_truth:
        names.append(RUN2.truth)
    a = tree.arrays(names, library="np")
    for i in range(len(a[RUN2.event["run"]])):
        muons = [
            {k: float(a[b][i][j]) for k, b in RUN2.muon.items()}
            for j in range(len(a[RUN2.muon["pt"]][i]))
        ]
        tracks = [
            {k: float(a[b][i][j]) for k, b in RUN2.track.items()}
            for j in range(len(a[RUN2.track["pt"]][i]))
        ]
        muon_kin = [
            (float(np.float32(m["pt"])), float(np.float32(m["eta"])), float(np.float32(m["phi"])))
            for m in muons
        ]
        track_kin = [(t["pt"], t["eta"], t["phi"]) for t in tracks]
        cands = []
        for j in range(len(a[cand_map["mass"]][i])):
            cand = {k: float(a[b][i][j]) for k, b in cand_map.items()}
            copies = {}
            for p in ("mu1", "mu2"):
                copies[p] = tuple(float(np.float32(cand[f"{p}_{k}"])) for k in ("pt", "eta", "phi"))
                cand[f"{p}_idx"] = _first_match(copies[p], muon_kin)
                cand[f"{p}_kin"] = tuple(cand[f"{p}_{k}"] for k in ("pt", "eta", "phi"))
            trk = tuple(cand[f"trk_{k}"] for k in ("pt", "eta", "phi"))
            cand["trk_idx"] = _first_match(trk, track_kin)
            cand["trk_kin"] = trk
            cand["truth"] = int(a[RUN2.truth][i][j]) if has_truth else None
            cands.append(cand)
        hlt = any(
            str(n).find(c.hlt_pattern) >= 0 and d != 0
            for n, d in zip(a[RUN2.hlt_name][i], a[RUN2.hlt_decision][i], strict=True)
        )
        l1 = any(
            any(p in str(n) for p in c.l1_patterns) and d != 0
            for n, d in zip(a[RUN2.l1_name][i], a[RUN2.l1_decision][i], strict=True)
        )
        ids = tuple(int(a[RUN2.event[k]][i]) for k in ("run", "lumi", "event"))
        yield ids, hlt and l1, cands, muons, tracks


def _events_run3(path: str, c: SelectionConfig):
    tree = uproot.open(path)[RUN3.tree]
    keys = set(tree.keys())
    cand_map = {k: v for k, v in RUN3.candidate().items() if v in keys}
    hlt_branches = [
        k for k in keys if k.startswith("HLT_") and c.hlt_pattern.removesuffix("_v") in k
    ]
    l1_branches = [k for k in keys if k.startswith("L1_") and any(p in k for p in c.l1_patterns)]
    names = [
        *cand_map.values(),
        *RUN3.muon.values(),
        *RUN3.track.values(),
        *RUN3.event.values(),
        *hlt_branches,
        *l1_branches,
    ]
    a = tree.arrays(names, library="np")
    for i in range(len(a[RUN3.event["run"]])):
        muons = [
            {k: float(a[b][i][j]) for k, b in RUN3.muon.items()}
            for j in range(len(a[RUN3.muon["pt"]][i]))
        ]
        tracks = [
            {k: float(a[b][i][j]) for k, b in RUN3.track.items()}
            for j in range(len(a[RUN3.track["pt"]][i]))
        ]
        cands = []
        for j in range(len(a[cand_map["mass"]][i])):
            cand = {k: float(a[b][i][j]) for k, b in cand_map.items()}
            for p, coll in (("mu1", muons), ("mu2", muons), ("trk", tracks)):
                idx = int(cand[f"{p}_idx"])
                cand[f"{p}_idx"] = idx
                cand[f"{p}_kin"] = (
                    (coll[idx]["pt"], coll[idx]["eta"], coll[idx]["phi"])
                    if 0 <= idx < len(coll)
                    else None
                )
            cand["truth"] = int(cand["truth"]) if "truth" in cand else None
            cands.append(cand)
        hlt = any(bool(a[b][i]) for b in hlt_branches)
        l1 = any(bool(a[b][i]) for b in l1_branches)
        ids = tuple(int(a[RUN3.event[k]][i]) for k in ("run", "lumi", "event"))
        yield ids, hlt and l1, cands, muons, tracks


def reference_select(
    paths: str | list[str], layout: str, config: SelectionConfig | None = None
) -> ReferenceResult:
    """Cutflow, best candidates and truth counts, one event at a time."""
    c = config or SelectionConfig()
    labels = ["events", "trigger", *CUTFLOW_STEPS[1:], "best_candidate"]
    flow = {label: {"events": 0, "candidates": 0} for label in labels}
    result = ReferenceResult(cutflow=flow, truth={"ds": 0, "dplus": 0, "background": 0})
    reader = _events_run2 if layout == "run2" else _events_run3
    for path in [paths] if isinstance(paths, str) else paths:
        for ids, fired, cands, muons, tracks in reader(str(path), c):
            flow["events"]["events"] += 1
            flow["events"]["candidates"] += len(cands)
            if not fired:
                continue
            flow["trigger"]["events"] += 1
            flow["trigger"]["candidates"] += len(cands)
            alive = [True] * len(cands)
            steps = [candidate_passes(cand, muons, tracks, c) for cand in cands]
            for k, label in enumerate(CUTFLOW_STEPS[1:]):
                alive = [a and s[k] for a, s in zip(alive, steps, strict=True)]
                n = sum(alive)
                flow[label]["candidates"] += n
                flow[label]["events"] += n > 0
            best = -1
            for j, cand in enumerate(cands):
                if alive[j] and (best < 0 or cand["vtx_chi2"] < cands[best]["vtx_chi2"]):
                    best = j
            if best >= 0:
                flow["best_candidate"]["events"] += 1
                flow["best_candidate"]["candidates"] += 1
                mass = cands[best]["mass"]
                result.best.append((*ids, best, mass))
                truth = cands[best]["truth"]
                axis = c.mass_axis
                if truth is not None and axis.start <= mass < axis.stop:
                    name = {0: "background", 1: "ds", 2: "dplus"}[truth]
                    result.truth[name] += 1
    return result
