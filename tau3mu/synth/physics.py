"""Layout-independent simulation of skimmed 2 mu + track events (SPEC section 5).

Each event holds a muon collection, a track collection and mu mu track candidates built
from them (so one muon serves several candidates, as in real skims). Three kinds of
events: Ds+ -> phi(mu mu) pi+ and D+ -> phi(mu mu) pi+ with PDG masses and lifetimes,
and combinatorial background (random dimuons, a share of them real phi, with nearby
tracks). Every quantity is rounded to float32 precision, so the same events written
in both layouts hold identical values.

Everything is vectorised with numpy; a file depends only on ``(seed, file_index)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tau3mu.config import (
    DPLUS_CTAU,
    DPLUS_MASS,
    DS_CTAU,
    DS_MASS,
    MUON_MASS,
    PHI_MASS,
    PHI_WIDTH,
    PION_MASS,
    TRUTH_BACKGROUND,
    TRUTH_DPLUS,
    TRUTH_DS,
)
from tau3mu.synth import kinematics as kin

#: all muon pairs (i < j) of up to MAX_MUONS muons, ordered so that the first
#: n (n - 1) / 2 pairs use only the first n muons
MAX_MUONS = 6
_PAIRS = np.array([(i, j) for j in range(1, MAX_MUONS) for i in range(j)], dtype=np.int64)

#: HLT paths and L1 seeds of the synthetic menu (Run 2 keeps names, Run 3 bools)
HLT_PATHS = (
    "HLT_DoubleMu3_Trk_Tau3mu",
    "HLT_DoubleMu4_3_LowMass",
    "HLT_Tau3Mu_Mu7_Mu1_TkMu1_IsoTau15",
)
L1_SEEDS = (
    "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4",
    "L1_DoubleMu4_SQ_OS_dR_Max1p2",
    "L1_TripleMu_5_3_3",
    "L1_SingleMu22",
)


@dataclass(frozen=True)
class Tuning:
    """Knobs of the simulation; defaults reproduce SPEC section 5 after the selection."""

    ds_fraction: float = 0.0095
    dplus_fraction: float = 0.0032
    extra_muons: float = 0.6
    extra_tracks: float = 3.0
    extra_candidates: float = 3.0
    phi_fraction_background: float = 0.60
    random_pair_fraction: float = 0.25
    muon_track_copy: float = 0.30
    empty_fraction: float = 0.005
    #: relative pt resolution and angular resolution of muons and tracks
    pt_resolution: float = 0.0085
    angle_resolution: float = 0.0012
    #: the refit's resolution, as a fraction of the detector's
    refit_fraction: float = 0.35
    refit_failure: float = 0.02
    skim_mass: tuple[float, float] = (1.55, 2.15)
    skim_dimuon: tuple[float, float] = (0.8, 3.0)


@dataclass
class Collection:
    """A jagged collection: per-event counts and flat per-entry columns."""

    counts: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def offsets(self) -> np.ndarray:
        out = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=out[1:])
        return out


@dataclass
class SyntheticEvents:
    """One file's worth of simulated events, in the analysis names of :mod:`tau3mu.layouts`."""

    run: np.ndarray
    lumi: np.ndarray
    event: np.ndarray
    muons: Collection
    tracks: Collection
    candidates: Collection
    hlt: dict[str, np.ndarray]
    l1: dict[str, np.ndarray]
    hlt_version: np.ndarray
    kind: np.ndarray  # per event: TRUTH_* of the event's true decay (0: background only)

    def __len__(self) -> int:
        return len(self.run)


def _f32(x: np.ndarray) -> np.ndarray:
    """Round to float32 precision, keep float64 storage."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def _rng(seed: int, file_index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(file_index), 0x7A3]))


def _source(rng, n, kind):
    """Pt/eta of the parent of the leading dimuon (D meson or background source)."""
    pt = np.where(
        kind == TRUTH_BACKGROUND, 6.0 + rng.exponential(5.0, n), 7.0 + rng.exponential(5.0, n)
    )
    eta = rng.uniform(-2.1, 2.1, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    return pt, eta, phi


def simulate(
    seed: int,
    file_index: int,
    n_events: int,
    *,
    mc: bool = False,
    run_number: int = 297050,
    first_event: int | None = None,
    tuning: Tuning = Tuning(),
) -> SyntheticEvents:
    """Simulate ``n_events`` skimmed events of file ``file_index`` of a dataset seeded ``seed``.

    Like the real skim, events keep at least one candidate, except a small share
    (``Tuning.empty_fraction``) kept empty on purpose: readers must cope with them.
    """
    rng = _rng(seed, file_index)
    n = int(n_events)
    parts, have = [], 0
    while have < n:
        raw = _simulate_raw(rng, max(2 * (n - have), 64), mc, tuning)
        keep = (raw.candidates.counts > 0) | (
            rng.random(len(raw.candidates.counts)) < tuning.empty_fraction
        )
        keep &= np.cumsum(keep) <= n - have
        parts.append(_select_events(raw, keep))
        have += int(keep.sum())
    merged = _concatenate(parts)
    if first_event is None:
        first_event = file_index * 10_000_000
    merged.run = np.full(n, run_number, dtype=np.uint32)
    merged.lumi = (1 + file_index * 97 + np.arange(n) // 500).astype(np.uint32)
    merged.event = (first_event + np.arange(n)).astype(np.uint64)
    merged.hlt_version = np.full(n, 8 + file_index % 5, dtype=np.int64)
    return merged


def _select_events(events: SyntheticEvents, keep: np.ndarray) -> SyntheticEvents:
    def coll(c: Collection) -> Collection:
        entry = np.repeat(keep, c.counts)
        return Collection(c.counts[keep], {k: v[entry] for k, v in c.columns.items()})

    return SyntheticEvents(
        run=events.run[keep],
        lumi=events.lumi[keep],
        event=events.event[keep],
        muons=coll(events.muons),
        tracks=coll(events.tracks),
        candidates=coll(events.candidates),
        hlt={k: v[keep] for k, v in events.hlt.items()},
        l1={k: v[keep] for k, v in events.l1.items()},
        hlt_version=events.hlt_version[keep],
        kind=events.kind[keep],
    )


def _concatenate(parts: list[SyntheticEvents]) -> SyntheticEvents:
    if len(parts) == 1:
        return parts[0]

    def coll(name: str) -> Collection:
        cs = [getattr(p, name) for p in parts]
        return Collection(
            np.concatenate([c.counts for c in cs]),
            {k: np.concatenate([c.columns[k] for c in cs]) for k in cs[0].columns},
        )

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return SyntheticEvents(
        run=cat("run"),
        lumi=cat("lumi"),
        event=cat("event"),
        muons=coll("muons"),
        tracks=coll("tracks"),
        candidates=coll("candidates"),
        hlt={k: np.concatenate([p.hlt[k] for p in parts]) for k in parts[0].hlt},
        l1={k: np.concatenate([p.l1[k] for p in parts]) for k in parts[0].l1},
        hlt_version=cat("hlt_version"),
        kind=cat("kind"),
    )


def _simulate_raw(rng: np.random.Generator, n: int, mc: bool, t: Tuning) -> SyntheticEvents:
    """Events before the skim's at-least-one-candidate requirement."""

    # -- event kinds: Ds+, D+ or background only; simulation is mostly signal ---------
    u = rng.random(n)
    ds_f, dp_f = (0.55, 0.25) if mc else (t.ds_fraction, t.dplus_fraction)
    kind = np.where(u < ds_f, TRUTH_DS, np.where(u < ds_f + dp_f, TRUTH_DPLUS, TRUTH_BACKGROUND))
    signal = kind != TRUTH_BACKGROUND

    # -- the leading dimuon and track: a decay chain for signal, a random source else --
    m_parent = np.where(kind == TRUTH_DS, DS_MASS, DPLUS_MASS)
    true = _leading_system(rng, n, kind, m_parent, t)

    # -- pools: the leading pair and track, plus extra muons and tracks nearby ---------
    n_mu = np.minimum(2 + rng.poisson(t.extra_muons, n), MAX_MUONS)
    n_trk = np.minimum(1 + rng.poisson(t.extra_tracks, n), 9)
    muons = _muon_pool(rng, n_mu, true, signal, t)
    tracks = _track_pool(rng, n_trk, true, kind, muons, t)

    # -- candidates: distinct (pair, track) combinations, the true one first -----------
    n_pairs = n_mu * (n_mu - 1) // 2
    n_combos = n_pairs * n_trk
    n_cand = np.minimum(1 + rng.poisson(t.extra_candidates, n), n_combos)
    offset = np.where(signal, 0, rng.integers(0, 1 << 30, n) % np.maximum(n_combos, 1))
    ev = np.repeat(np.arange(n), n_cand)
    local = np.arange(n_cand.sum()) - np.repeat(np.cumsum(n_cand) - n_cand, n_cand)
    combo = (local + offset[ev]) % n_combos[ev]
    pair = combo // n_trk[ev]
    trk_idx = combo % n_trk[ev]
    mu1_idx, mu2_idx = _PAIRS[pair, 0], _PAIRS[pair, 1]
    is_true = signal[ev] & (combo == 0)
    cands = _candidates(rng, ev, mu1_idx, mu2_idx, trk_idx, is_true, kind, muons, tracks, true, t)

    # -- skim: 2 mu + track mass window and dimuon mass window ----------------------------
    keep = (
        (cands.columns["mass"] > t.skim_mass[0])
        & (cands.columns["mass"] < t.skim_mass[1])
        & (cands.columns["dimuon_mass"] > t.skim_dimuon[0])
        & (cands.columns["dimuon_mass"] < t.skim_dimuon[1])
    )
    cands.columns = {k: v[keep] for k, v in cands.columns.items()}
    cands.counts = np.bincount(ev[keep], minlength=n).astype(np.int64)
    del cands.columns["dimuon_mass"]

    # -- trigger ---------------------------------------------------------------------------
    hlt_rate = np.where(signal, 0.90, 0.80)
    hlt = {
        HLT_PATHS[0]: rng.random(n) < hlt_rate,
        HLT_PATHS[1]: rng.random(n) < 0.35,
        HLT_PATHS[2]: rng.random(n) < 0.05,
    }
    l1 = {
        L1_SEEDS[0]: rng.random(n) < 0.80,
        L1_SEEDS[1]: rng.random(n) < 0.30,
        L1_SEEDS[2]: rng.random(n) < 0.12,
        L1_SEEDS[3]: rng.random(n) < 0.20,
    }
    return SyntheticEvents(
        run=np.zeros(n, dtype=np.uint32),
        lumi=np.zeros(n, dtype=np.uint32),
        event=np.zeros(n, dtype=np.uint64),
        muons=muons,
        tracks=tracks,
        candidates=cands,
        hlt=hlt,
        l1=l1,
        hlt_version=np.zeros(n, dtype=np.int64),
        kind=kind.astype(np.int32),
    )


def _leading_system(rng, n, kind, m_parent, t):
    """Truth four-vectors of the leading mu+ mu- and track (before detector smearing).

    Decays whose muons or pion would fail the skim (pt > 2 GeV, |eta| < 2.4) are drawn
    again, so the surviving sample is what a skim keeps, without distorting kinematics.
    """
    out = _draw_leading(rng, n, kind, m_parent, t)
    bad = np.flatnonzero(~_passes_skim(out, kind))
    for _ in range(100):
        if not len(bad):
            break
        redo = _draw_leading(rng, len(bad), kind[bad], m_parent[bad], t)
        for key, value in redo.items():
            if isinstance(value, tuple):
                for component, new in zip(out[key], value):
                    component[bad] = new
            else:
                out[key][bad] = value
        bad = bad[~_passes_skim(redo, kind[bad])]
    return out


def _passes_skim(system, kind):
    ok = np.ones(len(kind), dtype=bool)
    for key in ("mu1", "mu2"):
        pt, eta, _ = kin.to_ptetaphi(system[key])
        ok &= (pt > 2.05) & (np.abs(eta) < 2.38)
    pt, eta, _ = kin.to_ptetaphi(system["pion"])
    ok &= ((pt > 2.05) & (np.abs(eta) < 2.45)) | (kind == TRUTH_BACKGROUND)
    return ok


def _draw_leading(rng, n, kind, m_parent, t):
    pt, eta, phi = _source(rng, n, kind)
    signal = kind != TRUTH_BACKGROUND
    # dimuon mass: phi Breit-Wigner for signal (and a share of background), continuum else
    bw = PHI_MASS + 0.5 * PHI_WIDTH * rng.standard_cauchy(n)
    bw = np.clip(bw, 2 * MUON_MASS + 0.01, 1.10)
    cont = 0.8 + rng.exponential(0.3, n)
    real_phi = signal | (rng.random(n) < t.phi_fraction_background)
    m_mumu = np.where(real_phi, bw, cont)
    # signal: D -> phi pi, then phi -> mu mu; background: the dimuon is the source itself
    parent = kin.from_ptetaphim(pt, eta, phi, m_parent)
    phi_v, pion = kin.two_body_decay(rng, parent, m_parent, m_mumu, PION_MASS)
    src = kin.from_ptetaphim(pt * 0.8, eta, phi, m_mumu)
    dimuon = tuple(np.where(signal, a, b) for a, b in zip(phi_v, src))
    mu1, mu2 = _decay_with_mass(rng, dimuon, m_mumu, MUON_MASS, MUON_MASS)
    # random pairs: a second muon from elsewhere in the event, at any angle
    random_pair = ~signal & (rng.random(n) < t.random_pair_fraction)
    pt1, eta1, phi1 = kin.to_ptetaphi(mu1)
    eta2, phi2 = _nearby(rng, eta1, phi1, n, 0.9)
    other = kin.from_ptetaphim(2.0 + rng.exponential(3.0, n), eta2, phi2, MUON_MASS)
    mu2 = tuple(np.where(random_pair, a, b) for a, b in zip(other, mu2))
    # lifetime: transverse flight length of the D meson
    ctau = np.where(kind == TRUTH_DS, DS_CTAU, DPLUS_CTAU)
    flight = np.where(signal, pt / m_parent * ctau * rng.exponential(1.0, n), 0.0)
    return {"mu1": mu1, "mu2": mu2, "pion": pion, "flight": flight, "m_mumu": m_mumu}


def _decay_with_mass(rng, parent, m_parent, m1, m2):
    """Two-body decay where the parent's invariant mass is ``m_parent`` (per entry)."""
    px, py, pz, _ = parent
    e = np.sqrt(px**2 + py**2 + pz**2 + m_parent**2)
    return kin.two_body_decay(rng, (px, py, pz, e), m_parent, m1, m2)


def _detector(rng, p4, t, n):
    """Measured (pt, eta, phi) of true four-vectors: pt and angular resolution."""
    pt, eta, phi = kin.to_ptetaphi(p4)
    pt = pt * (1 + t.pt_resolution * rng.normal(0, 1, n))
    eta = eta + t.angle_resolution * rng.normal(0, 1, n)
    phi = (phi + t.angle_resolution * rng.normal(0, 1, n) + np.pi) % (2 * np.pi) - np.pi
    return pt, eta, phi


def _nearby(rng, eta0, phi0, n, spread):
    eta = np.clip(eta0 + rng.normal(0, spread, n), -2.39, 2.39)
    phi = (phi0 + rng.normal(0, spread, n) + np.pi) % (2 * np.pi) - np.pi
    return eta, phi


def _muon_pool(rng, n_mu, true, signal, t):
    n = len(n_mu)
    total = int(n_mu.sum())
    ev = np.repeat(np.arange(n), n_mu)
    first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_mu, out=first[1:])
    local = np.arange(total) - first[ev]
    pt_l, eta_l, phi_l = kin.to_ptetaphi(kin.add(true["mu1"], true["mu2"]))
    # extra muons: soft, near the leading dimuon
    pt = 2.0 + rng.exponential(2.5, total)
    eta, phi = _nearby(rng, eta_l[ev], phi_l[ev], total, 0.9)
    true_pt = pt.copy()
    true_eta = eta.copy()
    true_phi = phi.copy()
    for slot, key in ((0, "mu1"), (1, "mu2")):
        sel = local == slot
        p4 = tuple(c[ev[sel]] for c in true[key])
        tp, te, tf = kin.to_ptetaphi(p4)
        mp, me, mf = _detector(rng, p4, t, int(sel.sum()))
        true_pt[sel], true_eta[sel], true_phi[sel] = tp, te, tf
        pt[sel], eta[sel], phi[sel] = mp, me, mf
    # the skim: muons above 2 GeV inside the tracker; push the few outliers inside
    pt = np.maximum(pt, 2.0 + 0.01 * rng.random(total))
    eta = np.clip(eta, -2.399, 2.399)
    charge = np.where(local % 2 == 0, 1, -1) * np.where(rng.random(total) < 0.5, 1, -1) ** (
        local >= 2
    )
    leading = local < 2
    sig = signal[ev] & leading
    is_global = rng.random(total) < np.where(sig, 0.975, 0.93)
    is_pf = rng.random(total) < np.where(sig, 0.99, 0.97)
    trig_matched = rng.random(total) < np.where(sig, 0.94, np.where(leading, 0.85, 0.45))
    trig_dr = np.where(
        trig_matched, np.abs(rng.normal(0, 0.007, total)), rng.uniform(0.03, 1.0, total)
    )
    return Collection(
        counts=n_mu.astype(np.int64),
        columns={
            "pt": _f32(pt),
            "eta": _f32(eta),
            "phi": _f32(phi),
            "charge": charge.astype(np.int32),
            "is_global": is_global,
            "is_pf": is_pf,
            "true_pt": true_pt,
            "true_eta": true_eta,
            "true_phi": true_phi,
            "trig_dr": _f32(np.minimum(trig_dr, 1.0)),
        },
    )


def _track_pool(rng, n_trk, true, kind, muons, t):
    n = len(n_trk)
    total = int(n_trk.sum())
    ev = np.repeat(np.arange(n), n_trk)
    first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_trk, out=first[1:])
    local = np.arange(total) - first[ev]
    _, eta_l, phi_l = kin.to_ptetaphi(kin.add(true["mu1"], true["mu2"]))
    pt = 2.0 + rng.exponential(2.0, total)
    eta, phi = _nearby(rng, eta_l[ev], phi_l[ev], total, 0.5)
    sel = (local == 0) & (kind[ev] != TRUTH_BACKGROUND)
    p4 = tuple(c[ev[sel]] for c in true["pion"])
    pt[sel], eta[sel], phi[sel] = _detector(rng, p4, t, int(sel.sum()))
    # background: give each track the momentum that puts (mu1 mu2 track) at a mass drawn
    # from a linearly falling spectrum, the shape of the real combinatorial background
    # (tried along ever wider cones around the dimuon until a track above 2 GeV does it)
    todo = np.flatnonzero(~sel)
    target = _falling_mass(rng, len(todo), t)
    dimuon = kin.add(true["mu1"], true["mu2"])
    for spread in (0.08, 0.15, 0.25, 0.4, 0.6, 1.2):
        if not len(todo):
            break
        e_try, f_try = _nearby(rng, eta_l[ev[todo]], phi_l[ev[todo]], len(todo), spread)
        p = kin.momentum_for_mass(
            tuple(c[ev[todo]] for c in dimuon), _unit(e_try, f_try), PION_MASS, target
        )
        pt_try = p / np.cosh(e_try)
        ok = np.isfinite(pt_try) & (pt_try > 2.0) & (pt_try < 60.0)
        done = todo[ok]
        pt[done], eta[done], phi[done] = pt_try[ok], e_try[ok], f_try[ok]
        todo, target = todo[~ok], target[~ok]
    pt = np.maximum(pt, 2.0 + 0.01 * rng.random(total))
    eta = np.clip(eta, -2.499, 2.499)
    # the muons' own tracks sometimes sit in the track collection too: candidates built
    # with them have dR(mu, track) = 0, which the delta_r step's lower bound removes
    last = (local == n_trk[ev] - 1) & (n_trk[ev] >= 2) & (rng.random(total) < t.muon_track_copy)
    source = muons.offsets[ev[last]] + rng.integers(0, 2, int(last.sum()))
    pt[last] = muons.columns["pt"][source]
    eta[last] = muons.columns["eta"][source]
    phi[last] = muons.columns["phi"][source]
    # impact parameters: prompt core, tails, and decay-length displacement for true pions
    dz = rng.normal(0, 4.5, total)
    tail = rng.random(total) < 0.015
    dz[tail] = rng.uniform(20.0, 30.0, int(tail.sum())) * np.sign(rng.normal(size=int(tail.sum())))
    dxy = rng.normal(0, 0.03, total)
    tail = rng.random(total) < 0.05
    dxy[tail] = rng.uniform(0.3, 1.5, int(tail.sum())) * np.sign(rng.normal(size=int(tail.sum())))
    dxy[sel] = rng.normal(0, 0.01, int(sel.sum())) + true["flight"][ev[sel]] * 0.3
    return Collection(
        counts=n_trk.astype(np.int64),
        columns={
            "pt": _f32(pt),
            "eta": _f32(eta),
            "phi": _f32(phi),
            "charge": np.where(rng.random(total) < 0.5, 1, -1).astype(np.int32),
            "dz": _f32(dz),
            "dxy": _f32(dxy),
        },
    )


def _unit(eta, phi):
    theta = 2 * np.arctan(np.exp(-eta))
    return np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)


def _falling_mass(rng, n, t):
    """Masses on the skim window with a density falling linearly by ~45 % across it."""
    lo, hi = t.skim_mass
    slope = -0.45 / (hi - lo)  # relative change per GeV
    # inverse CDF of f(m) = 1 + slope (m - lo)
    a, b = slope / 2, 1.0
    c = -rng.random(n) * ((hi - lo) + a * (hi - lo) ** 2)
    x = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
    return lo + x


def _candidates(rng, ev, i1, i2, it, is_true, kind, muons, tracks, true, t):
    n_c = len(ev)
    mo = muons.offsets
    to = tracks.offsets
    g1, g2, gt = mo[ev] + i1, mo[ev] + i2, to[ev] + it
    m, tr = muons.columns, tracks.columns
    mu1 = kin.from_ptetaphim(m["pt"][g1], m["eta"][g1], m["phi"][g1], MUON_MASS)
    mu2 = kin.from_ptetaphim(m["pt"][g2], m["eta"][g2], m["phi"][g2], MUON_MASS)
    trk = kin.from_ptetaphim(tr["pt"][gt], tr["eta"][gt], tr["phi"][gt], PION_MASS)
    triplet = kin.add(mu1, mu2, trk)
    mass = kin.mass(triplet) + rng.normal(0, 0.001, n_c)
    dimuon_mass = kin.mass(kin.add(mu1, mu2))
    tpt, teta, tphi = kin.to_ptetaphi(triplet)
    # refit: the true muon directions with a fraction of the detector resolution
    refit = {}
    for key, g in (("mu1", g1), ("mu2", g2)):
        rp = m["true_pt"][g] * (1 + t.refit_fraction * t.pt_resolution * rng.normal(0, 1, n_c))
        re = m["true_eta"][g] + t.refit_fraction * t.angle_resolution * rng.normal(0, 1, n_c)
        rf = m["true_phi"][g] + t.refit_fraction * t.angle_resolution * rng.normal(0, 1, n_c)
        refit[key] = [rp, re, rf]
    failed = rng.random(n_c) < t.refit_failure
    for key in ("mu1", "mu2"):
        for arr in refit[key]:
            arr[failed] = -99.0
    # vertex quality and displacement
    vtx_chi2 = np.where(
        is_true,
        rng.chisquare(2, n_c) * 0.6,
        rng.chisquare(2, n_c) * 1.6 + rng.exponential(1.5, n_c),
    )
    pv_ntracks = rng.poisson(22, n_c).astype(np.float64)
    low = rng.random(n_c) < 0.03
    pv_ntracks[low] = rng.integers(0, 2, int(low.sum()))
    err = rng.uniform(0.0025, 0.0060, n_c)
    flight = np.where(is_true, true["flight"][ev], 0.0)
    displaced = ~is_true & (rng.random(n_c) < 0.60)
    flight = np.where(displaced, rng.exponential(0.02, n_c), flight)
    flight_sig = np.abs(flight + rng.normal(0, 1, n_c) * err) / err
    truth = np.where(is_true, kind[ev], TRUTH_BACKGROUND).astype(np.int32)
    charge = (m["charge"][g1] + m["charge"][g2] + tr["charge"][gt]).astype(np.int32)
    return Collection(
        counts=np.zeros(0, dtype=np.int64),
        columns={
            "mass": _f32(mass),
            "dimuon_mass": dimuon_mass,
            "vtx_chi2": _f32(vtx_chi2),
            "pv_ntracks": pv_ntracks,
            "flight_sig": _f32(flight_sig),
            "mu1_idx": i1.astype(np.int32),
            "mu2_idx": i2.astype(np.int32),
            "trk_idx": it.astype(np.int32),
            "mu1_pt": m["pt"][g1],
            "mu1_eta": m["eta"][g1],
            "mu1_phi": m["phi"][g1],
            "mu2_pt": m["pt"][g2],
            "mu2_eta": m["eta"][g2],
            "mu2_phi": m["phi"][g2],
            "trk_pt": tr["pt"][gt],
            "trk_eta": tr["eta"][gt],
            "trk_phi": tr["phi"][gt],
            "mu1_refit_pt": _f32(refit["mu1"][0]),
            "mu1_refit_eta": _f32(refit["mu1"][1]),
            "mu1_refit_phi": _f32(refit["mu1"][2]),
            "mu2_refit_pt": _f32(refit["mu2"][0]),
            "mu2_refit_eta": _f32(refit["mu2"][1]),
            "mu2_refit_phi": _f32(refit["mu2"][2]),
            "mu1_trig_dr": m["trig_dr"][g1],
            "mu2_trig_dr": m["trig_dr"][g2],
            "pt": _f32(tpt),
            "eta": _f32(teta),
            "phi": _f32(tphi),
            "charge": charge,
            "truth": truth,
        },
    )
