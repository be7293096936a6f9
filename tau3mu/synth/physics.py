"""Layout-independent simulation of skimmed 2 mu + track events (SPEC section 5).

Each event holds a muon collection, a track collection and mu mu track candidates built
from them (so one muon serves several candidates, as in real skims). Three kinds of
events: Ds+ -> phi(mu mu) pi+ and D+ -> phi(mu mu) pi+ with PDG masses and lifetimes,
and combinatorial background (random dimuons, a share of them real phi, with nearby
tracks whose momenta put the mu mu track mass on a linearly falling spectrum).

The candidate mass is the vertex-fit-like mass of its own muons and track: the mass of
the measured momenta, pulled towards the mass of the true momenta by
``Tuning.vertex_fit_keep`` (the fit's improvement), plus a little fit noise. Peaks come
out at the PDG masses with ~11.5 MeV resolution; the dimuon of measured muons has
~11 MeV, the refitted muon tracks about a third of it.

Speed: everything is vectorised with numpy over whole files, in float32 where the
precision allows (kinematics of one particle, random draws) and with cheap forms of
the slow ufuncs (sinh/arcsinh through exp/log, discrete distributions through lookup
tables). The skim is applied to candidates before the expensive per-candidate fields are
drawn. Values are float32 (or int/bool), so the same events written in both layouts
hold identical numbers. A file depends only on ``(seed, file_index)``.
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

F32 = np.float32
#: all muon pairs (i < j) of up to MAX_MUONS muons, ordered so that the first
#: n (n - 1) / 2 pairs use only the first n muons; pair 0 is the leading (0, 1)
MAX_MUONS = 6
MAX_TRACKS = 9
_PAIRS = np.array([(i, j) for j in range(1, MAX_MUONS) for i in range(j)], dtype=np.int32)

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
#: per path / seed: probability to fire in (signal, background) events
HLT_RATES = {HLT_PATHS[0]: (0.90, 0.80), HLT_PATHS[1]: (0.35, 0.35), HLT_PATHS[2]: (0.05, 0.05)}
L1_RATES = {
    L1_SEEDS[0]: (0.80, 0.80),
    L1_SEEDS[1]: (0.30, 0.30),
    L1_SEEDS[2]: (0.12, 0.12),
    L1_SEEDS[3]: (0.20, 0.20),
}


@dataclass(frozen=True)
class Tuning:
    """Knobs of the simulation; defaults reproduce SPEC section 5 after the selection."""

    #: event kinds in data and in simulation (``mc``: mostly Ds+, for scale factors)
    ds_fraction: float = 0.0131
    dplus_fraction: float = 0.0045
    mc_ds_fraction: float = 0.75
    mc_dplus_fraction: float = 0.10
    #: Poisson means of muons beyond the leading pair, tracks beyond the first, and
    #: candidates beyond the first (before the skim)
    extra_muons: float = 0.6
    extra_tracks: float = 3.0
    extra_candidates: float = 2.6
    #: share of background events whose candidates start at a random (pair, track)
    shuffled_candidates: float = 0.25
    #: background: share of real phi dimuons, of random (uncorrelated) muon pairs, of
    #: events whose track collection also holds a muon's own track (dR = 0)
    phi_fraction_background: float = 0.60
    random_pair_fraction: float = 0.20
    muon_track_copy: float = 0.30
    #: relative slope of the background mass density across the skim window
    background_slope: float = -0.60
    #: share of events kept although no candidate passed the skim (readers must cope)
    empty_fraction: float = 0.005
    #: relative pt resolution and angular resolution of muons and tracks
    pt_resolution: float = 0.0085
    angle_resolution: float = 0.0012
    #: vertex fit: share of the measured-momenta mass error kept, and the fit's own noise
    vertex_fit_keep: float = 0.85
    vertex_fit_noise: float = 0.0015
    #: the refit's resolution, as a fraction of the detector's, and its failure rate
    refit_fraction: float = 0.35
    refit_failure: float = 0.02
    skim_mass: tuple[float, float] = (1.55, 2.15)
    skim_dimuon: tuple[float, float] = (0.8, 3.0)
    #: skim on single particles (SPEC 5): muons pt > 2, |eta| < 2.4; tracks pt > 2
    skim_min_pt: float = 2.0
    skim_muon_abseta: float = 2.4
    skim_track_abseta: float = 2.5


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
    """One file's worth of simulated events, in the analysis names of :mod:`tau3mu.layouts`.

    ``candidates.columns`` hold mass, vtx_chi2, pv_ntracks, flight_sig, the links
    mu1_idx/mu2_idx/trk_idx (local indices into the event's muons and tracks), copies
    of the linked kinematics mu{1,2}_{pt,eta,phi} and trk_{pt,eta,phi}, the refitted
    muons mu{1,2}_refit_{pt,eta,phi} (-99 where the refit failed), mu{1,2}_trig_dr,
    the triplet's pt/eta/phi/charge and truth (TRUTH_*).
    """

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


# -- cheap random numbers and kinematics ---------------------------------------------------
def _rng(seed: int, file_index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(file_index), 0x7A3]))


def _uniform(rng: np.random.Generator, n: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    u = rng.random(n, dtype=F32)
    return u if (lo, hi) == (0.0, 1.0) else F32(lo) + F32(hi - lo) * u


def _normal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n, dtype=F32)


def _expo(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_exponential(n, dtype=F32)


def _poisson_table(mean: float, cap: int, size: int = 4096) -> np.ndarray:
    """Quantile function of a Poisson(mean) capped at ``cap``, on a grid of ``size``."""
    k = np.arange(cap + 1)
    pmf = np.exp(-mean) * mean**k / np.cumprod(np.r_[1, k[1:]])
    cdf = np.cumsum(pmf)
    cdf[-1] = 1.0
    return np.searchsorted(cdf, (np.arange(size) + 0.5) / size).astype(np.int32)


def _poisson(rng: np.random.Generator, n: int, mean: float, cap: int) -> np.ndarray:
    """Poisson(mean) draws capped at ``cap`` by table lookup (numpy's poisson is slow)."""
    table = _poisson_table(mean, cap)
    return table[rng.integers(0, len(table), n)]


def _wrap(phi: np.ndarray) -> np.ndarray:
    return (phi + F32(np.pi)) % F32(2 * np.pi) - F32(np.pi)


def _p4(pt, eta, phi, mass) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(px, py, pz, E) from (pt, eta, phi, m), sinh/cosh through one exp."""
    ex = np.exp(eta)
    inv = 1 / ex
    pz = pt * (ex - inv) * 0.5
    p = pt * (ex + inv) * 0.5
    return pt * np.cos(phi), pt * np.sin(phi), pz, np.sqrt(p * p + mass * mass)


def _ptetaphi(px, py, pz) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pt, eta, phi) of momenta, arcsinh through log."""
    pt = np.sqrt(px * px + py * py)
    x = pz / pt
    ax = np.abs(x)
    eta = np.copysign(np.log(ax + np.sqrt(ax * ax + 1)), x)
    return pt, eta, np.arctan2(py, px)


def _mass(px, py, pz, e) -> np.ndarray:
    return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0))


def _two_body(rng, parent, m_parent, m1, m2):
    """Isotropic two-body decay in the parent's rest frame, boosted to the lab."""
    n = len(m_parent)
    mp = np.asarray(m_parent, dtype=F32)
    m1 = np.asarray(m1, dtype=F32)
    m2 = F32(m2)
    p_star = np.sqrt(np.maximum((mp * mp - (m1 + m2) ** 2) * (mp * mp - (m1 - m2) ** 2), 0)) / (
        2 * mp
    )
    cos_t = _uniform(rng, n, -1.0, 1.0)
    sin_t = np.sqrt(1 - cos_t * cos_t)
    ang = _uniform(rng, n, -np.pi, np.pi)
    d = (p_star * sin_t * np.cos(ang), p_star * sin_t * np.sin(ang), p_star * cos_t)
    e1 = np.sqrt(p_star * p_star + m1 * m1)
    e2 = np.sqrt(p_star * p_star + m2 * m2)
    px, py, pz, e = parent
    bx, by, bz = px / e, py / e, pz / e
    b2 = bx * bx + by * by + bz * bz
    gamma = 1 / np.sqrt(1 - b2)
    g2 = gamma * gamma / (1 + gamma)  # (gamma - 1) / beta^2, stable

    def boost(sign, energy):
        qx, qy, qz = sign * d[0], sign * d[1], sign * d[2]
        bp = bx * qx + by * qy + bz * qz
        f = g2 * bp + gamma * energy
        return qx + f * bx, qy + f * by, qz + f * bz, gamma * (energy + bp)

    return boost(F32(1), e1), boost(F32(-1), e2)


def _direction_for_mass(rng, system, p, m_track: float, target):
    """Unit direction of a track of momentum ``p`` such that system + track has mass ``target``.

    The opening angle to the system follows from E_s E - |P_s| p cos(theta) = A with
    A = (M^2 - m_s^2 - m^2) / 2; the azimuth around the system is uniform. NaN where no
    angle gives the mass.
    """
    px, py, pz, e = system
    p_s = np.sqrt(px * px + py * py + pz * pz)
    a = (target * target - (e * e - p_s * p_s) - m_track**2) / 2
    cos_t = (e * np.sqrt(p * p + m_track**2) - a) / (p_s * p)
    cos_t = np.where(np.abs(cos_t) <= 1, cos_t, F32(np.nan))
    sin_t = np.sqrt(1 - cos_t * cos_t)
    nx, ny, nz = px / p_s, py / p_s, pz / p_s
    # a unit vector perpendicular to n (n x z, the beam axis, never parallel here)
    norm = np.sqrt(nx * nx + ny * ny)
    ux, uy = ny / norm, -nx / norm
    vx, vy, vz = ny * 0 - nz * uy, nz * ux, nx * uy - ny * ux
    ang = _uniform(rng, len(p), -np.pi, np.pi)
    c, s = np.cos(ang), np.sin(ang)
    return (
        cos_t * nx + sin_t * (c * ux + s * vx),
        cos_t * ny + sin_t * (c * uy + s * vy),
        cos_t * nz + sin_t * s * vz,
    )


def _falling_mass(rng, n: int, lo: float, hi: float, slope: float) -> np.ndarray:
    """Masses on [lo, hi] with density 1 + slope (m - lo) / (hi - lo) (inverse CDF)."""
    a = slope / 2
    c = -rng.random(n) * (1 + a)
    x = (-1 + np.sqrt(1 - 4 * a * c)) / (2 * a) if a else -c
    return lo + (hi - lo) * x


def _local_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event of each entry, index of each entry inside its event, offsets)."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    ev = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return ev, np.arange(offsets[-1], dtype=np.int64) - offsets[ev], offsets


# -- the simulation --------------------------------------------------------------------------
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
    Event numbers start at ``first_event`` (default ``file_index * 10**7``), so files of
    one dataset never share an event number.
    """
    rng = _rng(seed, file_index)
    n = int(n_events)
    parts, have, survival = [], 0, 0.85
    while have < n or not parts:
        want = n - have
        n_raw = max(int(want / survival * 1.02) + 16, 64)
        raw = _simulate_raw(rng, n_raw, mc, tuning)
        keep = (raw.candidates.counts > 0) | (rng.random(n_raw) < tuning.empty_fraction)
        survival = max(float(keep.mean()), 0.05)
        keep &= np.cumsum(keep) <= want
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
    # -- event kinds: Ds+, D+ or background only; simulation is mostly Ds+ ---------------
    ds_f, dp_f = (
        (t.mc_ds_fraction, t.mc_dplus_fraction) if mc else (t.ds_fraction, t.dplus_fraction)
    )
    u = rng.random(n, dtype=F32)
    kind = np.where(u < ds_f, TRUTH_DS, np.where(u < ds_f + dp_f, TRUTH_DPLUS, TRUTH_BACKGROUND))
    kind = kind.astype(np.int32)
    signal = kind != TRUTH_BACKGROUND

    # -- the leading mu mu (and pion) per event, true kinematics, skim-clean ---------------
    lead = _leading_system(rng, kind, t)

    # -- collections: the leading pair (and pion) plus extra muons and tracks nearby -------
    n_mu = 2 + _poisson(rng, n, t.extra_muons, MAX_MUONS - 2)
    n_trk = 1 + _poisson(rng, n, t.extra_tracks, MAX_TRACKS - 1)
    muons = _muon_pool(rng, n_mu, lead, signal, t)
    tracks = _track_pool(rng, n_trk, lead, signal, muons, t)

    # -- candidates: distinct (pair, track) combinations, the true one first ---------------
    n_combos = (n_mu * (n_mu - 1) // 2) * n_trk
    n_cand = np.minimum(1 + _poisson(rng, n, t.extra_candidates, 12), n_combos)
    shuffled = ~signal & (rng.random(n, dtype=F32) < t.shuffled_candidates)
    offset = np.where(shuffled, rng.integers(0, 1 << 30, n) % n_combos, 0)
    ev, local, _ = _local_index(n_cand)
    combo = (local + offset[ev]) % n_combos[ev]
    pair = combo // n_trk[ev]
    trk_idx = (combo - pair * n_trk[ev]).astype(np.int32)
    mu1_idx, mu2_idx = _PAIRS[pair, 0], _PAIRS[pair, 1]
    is_true = signal[ev] & (combo == 0)
    candidates = _candidates(
        rng, n, ev, mu1_idx, mu2_idx, trk_idx, is_true, kind, muons, tracks, lead, t
    )

    # -- trigger ----------------------------------------------------------------------------
    def fired(rates: dict[str, tuple[float, float]]) -> dict[str, np.ndarray]:
        return {
            name: rng.random(n, dtype=F32) < np.where(signal, F32(r_sig), F32(r_bkg))
            for name, (r_sig, r_bkg) in rates.items()
        }

    return SyntheticEvents(
        run=np.zeros(n, dtype=np.uint32),
        lumi=np.zeros(n, dtype=np.uint32),
        event=np.zeros(n, dtype=np.uint64),
        muons=muons,
        tracks=tracks,
        candidates=candidates,
        hlt=fired(HLT_RATES),
        l1=fired(L1_RATES),
        hlt_version=np.zeros(n, dtype=np.int64),
        kind=kind,
    )


def _leading_system(rng, kind, t):
    """True (pt, eta, phi) of the leading mu+ mu- (and pion for signal), per event.

    Decays whose muons or pion fail the skim (pt > 2 GeV, |eta| < 2.4) are drawn again,
    so the kept sample is what a skim keeps, without distorting the kinematics.
    """
    n = len(kind)
    out = {k: np.zeros(n, dtype=F32) for k in _LEADING_KEYS}
    todo = np.arange(n)
    for _ in range(200):
        draw = _draw_leading(rng, kind[todo], t)
        ok = _passes_skim(draw, kind[todo], t)
        for key in _LEADING_KEYS:
            out[key][todo[ok]] = draw[key][ok]
        todo = todo[~ok]
        if not len(todo):
            break
    else:  # practically never: keep the last draw, pushed inside the skim
        for key in _LEADING_KEYS:
            out[key][todo] = draw[key][~ok]
    return out


_LEADING_KEYS = (
    "mu1_pt",
    "mu1_eta",
    "mu1_phi",
    "mu2_pt",
    "mu2_eta",
    "mu2_phi",
    "pi_pt",
    "pi_eta",
    "pi_phi",
    "flight",
    "dimuon_eta",
    "dimuon_phi",
)


def _passes_skim(draw, kind, t):
    margin = F32(1.02)
    ok = (draw["mu1_pt"] > margin * t.skim_min_pt) & (draw["mu2_pt"] > margin * t.skim_min_pt)
    ok &= (np.abs(draw["mu1_eta"]) < t.skim_muon_abseta - 0.01) & (
        np.abs(draw["mu2_eta"]) < t.skim_muon_abseta - 0.01
    )
    pion_ok = (draw["pi_pt"] > margin * t.skim_min_pt) & (
        np.abs(draw["pi_eta"]) < t.skim_track_abseta - 0.01
    )
    return ok & (pion_ok | (kind == TRUTH_BACKGROUND))


def _draw_leading(rng, kind, t):
    n = len(kind)
    signal = kind != TRUTH_BACKGROUND
    m_parent = np.where(kind == TRUTH_DS, F32(DS_MASS), F32(DPLUS_MASS))
    # the source: a D meson for signal, the dimuon itself for background; falling pt
    e = _expo(rng, n)
    pt = np.where(signal, F32(7) + F32(5) * e, F32(5) + F32(4) * e)
    eta = _uniform(rng, n, -2.1, 2.1)
    phi = _uniform(rng, n, -np.pi, np.pi)
    # dimuon mass: phi Breit-Wigner for signal (and a share of background), continuum else
    u = rng.random((3, n), dtype=F32)
    bw = F32(PHI_MASS) + F32(0.5 * PHI_WIDTH) * np.tan(F32(np.pi) * (u[0] - F32(0.5)))
    bw = np.clip(bw, F32(0.85), F32(1.15))
    continuum = np.minimum(F32(t.skim_dimuon[0]) - F32(0.3) * np.log1p(-u[1]), F32(1.95))
    real_phi = signal | (u[2] < t.phi_fraction_background)
    m_mumu = np.where(real_phi, bw, continuum)
    px, py, pz, e_source = _p4(pt, eta, phi, np.where(signal, m_parent, m_mumu))
    dimuon = (px, py, pz, e_source)
    pion = (np.zeros(n, F32), np.ones(n, F32), np.zeros(n, F32), np.ones(n, F32))
    if signal.any():
        s = np.flatnonzero(signal)
        parent = tuple(c[s] for c in dimuon)
        phi_v, pi_v = _two_body(rng, parent, m_parent[s], m_mumu[s], PION_MASS)
        dimuon = tuple(c.copy() for c in dimuon)
        for c, new in zip(dimuon, phi_v, strict=True):
            c[s] = new
        for c, new in zip(pion, pi_v, strict=True):
            c[s] = new
    mu1, mu2 = _two_body(rng, dimuon, m_mumu, m_mumu * 0 + F32(MUON_MASS), MUON_MASS)
    out = {}
    for key, vec in (("mu1", mu1), ("mu2", mu2), ("pi", pion)):
        out[f"{key}_pt"], out[f"{key}_eta"], out[f"{key}_phi"] = _ptetaphi(*vec[:3])
    _, out["dimuon_eta"], out["dimuon_phi"] = _ptetaphi(*dimuon[:3])
    # random pairs: the second muon from elsewhere in the event, at any angle
    rnd = np.flatnonzero(~signal & (rng.random(n, dtype=F32) < t.random_pair_fraction))
    k = len(rnd)
    out["mu2_pt"][rnd] = F32(t.skim_min_pt) + F32(3) * _expo(rng, k)
    out["mu2_eta"][rnd] = np.clip(out["mu1_eta"][rnd] + F32(0.9) * _normal(rng, k), -2.38, 2.38)
    out["mu2_phi"][rnd] = _wrap(out["mu1_phi"][rnd] + F32(0.9) * _normal(rng, k))
    # lifetime: transverse flight length of the D meson (cm)
    ctau = np.where(kind == TRUTH_DS, F32(DS_CTAU), F32(DPLUS_CTAU))
    out["flight"] = np.where(signal, pt / m_parent * ctau * _expo(rng, n), F32(0))
    return {key: np.asarray(value, dtype=F32) for key, value in out.items()}


def _muon_pool(rng, n_mu, lead, signal, t):
    ev, local, offsets = _local_index(n_mu)
    total = len(ev)
    first = offsets[:-1]
    # extra muons: soft, near the leading dimuon
    true_pt = F32(t.skim_min_pt) + F32(2.5) * _expo(rng, total)
    true_eta = np.clip(lead["dimuon_eta"][ev] + F32(0.9) * _normal(rng, total), -2.39, 2.39)
    true_phi = _wrap(lead["dimuon_phi"][ev] + F32(0.9) * _normal(rng, total))
    for slot, key in ((0, "mu1"), (1, "mu2")):
        true_pt[first + slot] = lead[f"{key}_pt"]
        true_eta[first + slot] = lead[f"{key}_eta"]
        true_phi[first + slot] = lead[f"{key}_phi"]
    # detector: the leading pair measured with resolution, extras as drawn
    lead_idx = np.concatenate([first, first + 1])
    k = len(lead_idx)
    pt, eta, phi = true_pt.copy(), true_eta.copy(), true_phi.copy()
    pt[lead_idx] *= 1 + F32(t.pt_resolution) * _normal(rng, k)
    eta[lead_idx] += F32(t.angle_resolution) * _normal(rng, k)
    phi[lead_idx] = _wrap(phi[lead_idx] + F32(t.angle_resolution) * _normal(rng, k))
    # the skim: muons above 2 GeV inside the tracker (smearing may cross the edge)
    pt = np.maximum(pt, F32(t.skim_min_pt + 0.001))
    eta = np.clip(eta, F32(-t.skim_muon_abseta + 0.001), F32(t.skim_muon_abseta - 0.001))
    charge = np.where(rng.random(total, dtype=F32) < 0.5, 1, -1).astype(np.int32)
    charge[first + 1] = -charge[first]
    leading = local < 2
    sig = np.zeros(total, dtype=bool)
    sig[lead_idx] = np.concatenate([signal, signal])
    u = rng.random((3, total), dtype=F32)
    is_global = u[0] < np.where(sig, F32(0.975), F32(0.93))
    is_pf = u[1] < np.where(sig, F32(0.99), F32(0.97))
    matched = u[2] < np.where(sig, F32(0.94), np.where(leading, F32(0.85), F32(0.45)))
    trig_dr = np.where(
        matched,
        np.abs(F32(0.007) * _normal(rng, total)),
        _uniform(rng, total, 0.03, 1.0),
    )
    return Collection(
        counts=n_mu.astype(np.int64),
        columns={
            "pt": pt,
            "eta": eta,
            "phi": phi,
            "charge": charge,
            "is_global": is_global,
            "is_pf": is_pf,
            "true_pt": true_pt,
            "true_eta": true_eta,
            "true_phi": true_phi,
            "trig_dr": np.minimum(trig_dr, F32(1.0)),
        },
    )


def _track_pool(rng, n_trk, lead, signal, muons, t):
    n = len(n_trk)
    ev, _, offsets = _local_index(n_trk)
    total = len(ev)
    first = offsets[:-1]
    # background tracks: for a track momentum drawn from a falling spectrum, the opening
    # angle to the leading mu mu that puts (mu mu track) at a mass drawn from a linearly
    # falling spectrum, the shape of the real combinatorial background (azimuth around the
    # dimuon at random; a new momentum where no angle does it)
    target = _falling_mass(rng, total, *t.skim_mass, t.background_slope).astype(F32)
    m = muons.columns
    mo = muons.offsets[:-1]
    mu = [
        _p4(m["true_pt"][mo + s], m["true_eta"][mo + s], m["true_phi"][mo + s], F32(MUON_MASS))
        for s in (0, 1)
    ]
    dimuon = tuple(a + b for a, b in zip(*mu, strict=True))
    pt = np.full(total, np.nan, dtype=F32)
    eta = np.zeros(total, dtype=F32)
    phi = np.zeros(total, dtype=F32)
    m_dimuon = _mass(*dimuon)[ev]
    todo = np.flatnonzero(target > m_dimuon + F32(PION_MASS + 0.005))
    cosh_eta = np.cosh(lead["dimuon_eta"])
    for _ in range(3):
        pt_try = F32(t.skim_min_pt + 0.1) + F32(2.5) * _expo(rng, len(todo))
        p_try = pt_try * cosh_eta[ev[todo]]
        sys = tuple(c[ev[todo]] for c in dimuon)
        x, y, z = _direction_for_mass(rng, sys, p_try, PION_MASS, target[todo])
        with np.errstate(invalid="ignore", divide="ignore"):
            pt_try, e_try, f_try = _ptetaphi(p_try * x, p_try * y, p_try * z)
            ok = (pt_try > t.skim_min_pt) & (np.abs(e_try) < t.skim_track_abseta - 0.05)
        pt[todo[ok]], eta[todo[ok]], phi[todo[ok]] = pt_try[ok], e_try[ok], f_try[ok]
        todo = todo[~ok]
    # the rest: soft tracks around the dimuon, whatever mass they make
    k = len(todo)
    pt[todo] = F32(t.skim_min_pt) + F32(2.0) * _expo(rng, k)
    eta[todo] = np.clip(lead["dimuon_eta"][ev[todo]] + F32(0.5) * _normal(rng, k), -2.45, 2.45)
    phi[todo] = _wrap(lead["dimuon_phi"][ev[todo]] + F32(0.5) * _normal(rng, k))
    true_pt, true_eta, true_phi = pt.copy(), eta.copy(), phi.copy()
    # signal: track 0 is the pion, measured with resolution
    s = first[signal]
    k = len(s)
    for key, arr in (("pi_pt", true_pt), ("pi_eta", true_eta), ("pi_phi", true_phi)):
        arr[s] = lead[key][signal]
    pt[s] = true_pt[s] * (1 + F32(t.pt_resolution) * _normal(rng, k))
    eta[s] = true_eta[s] + F32(t.angle_resolution) * _normal(rng, k)
    phi[s] = _wrap(true_phi[s] + F32(t.angle_resolution) * _normal(rng, k))
    pt = np.maximum(pt, F32(t.skim_min_pt + 0.001))
    # the muons' own tracks sometimes sit in the track collection too: candidates built
    # with them have dR(mu, track) = 0, which the delta_r step's lower bound removes
    copy = (n_trk >= 2) & (rng.random(n, dtype=F32) < t.muon_track_copy)
    last = offsets[:-1][copy] + 1 + rng.integers(0, 1 << 30, int(copy.sum())) % (n_trk[copy] - 1)
    source = muons.offsets[:-1][copy] + rng.integers(0, 2, int(copy.sum()))
    for key, arr in (("pt", pt), ("eta", eta), ("phi", phi)):
        arr[last] = m[key][source]
    for key, arr in (("true_pt", true_pt), ("true_eta", true_eta), ("true_phi", true_phi)):
        arr[last] = m[key][source]
    # impact parameters (cm): prompt core and tails; displaced by the decay for pions
    u = rng.random((4, total), dtype=F32)
    dz = F32(4.5) * _normal(rng, total)
    tail = u[0] < 0.015
    dz[tail] = np.copysign(F32(20) + F32(10) * u[1][tail], dz[tail])
    dxy = F32(0.03) * _normal(rng, total)
    tail = u[2] < 0.05
    dxy[tail] = np.copysign(F32(0.3) + F32(1.2) * u[1][tail], dxy[tail])
    dxy[s] = F32(0.01) * _normal(rng, k) + F32(0.3) * lead["flight"][signal]
    charge = np.where(u[3] < 0.5, 1, -1).astype(np.int32)
    charge[s] = 1
    return Collection(
        counts=n_trk.astype(np.int64),
        columns={
            "pt": pt,
            "eta": eta,
            "phi": phi,
            "charge": charge,
            "dz": dz,
            "dxy": dxy,
            "true_pt": true_pt,
            "true_eta": true_eta,
            "true_phi": true_phi,
        },
    )


def _candidates(rng, n, ev, i1, i2, it, is_true, kind, muons, tracks, lead, t):
    """Candidate fields; the skim (mass windows) is applied before the costly ones."""
    mo, to = muons.offsets, tracks.offsets
    g1, g2, gt = mo[ev] + i1, mo[ev] + i2, to[ev] + it
    m, tr = muons.columns, tracks.columns
    mu_m, mu_t = F32(MUON_MASS), F32(PION_MASS)
    meas_mu = _p4(m["pt"], m["eta"], m["phi"], mu_m)
    meas_tr = _p4(tr["pt"], tr["eta"], tr["phi"], mu_t)
    true_mu = _p4(m["true_pt"], m["true_eta"], m["true_phi"], mu_m)
    true_tr = _p4(tr["true_pt"], tr["true_eta"], tr["true_phi"], mu_t)
    dimu = [a[g1] + a[g2] for a in meas_mu]
    triplet = [d + b[gt] for d, b in zip(dimu, meas_tr, strict=True)]
    m_meas = _mass(*triplet)
    m_true = _mass(*[a[g1] + a[g2] + b[gt] for a, b in zip(true_mu, true_tr, strict=True)])
    mass = (
        m_true
        + F32(t.vertex_fit_keep) * (m_meas - m_true)
        + F32(t.vertex_fit_noise) * _normal(rng, len(ev))
    )
    dimuon_mass = _mass(*dimu)
    # -- the skim on the candidate ----------------------------------------------------------
    keep = (
        (mass > t.skim_mass[0])
        & (mass < t.skim_mass[1])
        & (dimuon_mass > t.skim_dimuon[0])
        & (dimuon_mass < t.skim_dimuon[1])
    )
    ev, i1, i2, it, g1, g2, gt, is_true, mass = (
        a[keep] for a in (ev, i1, i2, it, g1, g2, gt, is_true, mass)
    )
    triplet = [c[keep] for c in triplet]
    n_c = len(ev)
    tpt, teta, tphi = _ptetaphi(*triplet[:3])
    # -- refitted muon tracks: the truth with a fraction of the detector resolution -----------
    refit = {}
    for key, g in (("mu1", g1), ("mu2", g2)):
        res = F32(t.refit_fraction)
        rp = m["true_pt"][g] * (1 + res * F32(t.pt_resolution) * _normal(rng, n_c))
        re = m["true_eta"][g] + res * F32(t.angle_resolution) * _normal(rng, n_c)
        rf = _wrap(m["true_phi"][g] + res * F32(t.angle_resolution) * _normal(rng, n_c))
        refit[key] = (rp, re, rf)
    u = rng.random((5, n_c), dtype=F32)
    failed = u[0] < t.refit_failure
    for key in ("mu1", "mu2"):
        for arr in refit[key]:
            arr[failed] = -99.0
    # -- vertex quality, refitted PV, displacement ---------------------------------------------
    e1, e2 = _expo(rng, n_c), _expo(rng, n_c)
    vtx_chi2 = np.where(is_true, F32(1.2) * e1, F32(3.2) * e1 + F32(1.5) * e2)
    pv_event = np.rint(F32(22) + F32(4.7) * _normal(rng, n)).clip(2, None)
    pv_ntracks = (pv_event[ev] - np.floor(F32(3) * u[1])).astype(F32)
    low = u[2] < 0.03
    pv_ntracks[low] = np.floor(F32(2) * u[3][low])
    err = F32(0.0025) + F32(0.0035) * rng.random(n_c, dtype=F32)
    flight = np.where(is_true, lead["flight"][ev], F32(0))
    displaced = ~is_true & (u[4] < 0.60)
    flight = np.where(displaced, F32(0.02) * e2, flight)
    flight_sig = np.abs(flight + _normal(rng, n_c) * err) / err
    truth = np.where(is_true, kind[ev], TRUTH_BACKGROUND).astype(np.int32)
    charge = (m["charge"][g1] + m["charge"][g2] + tr["charge"][gt]).astype(np.int32)
    return Collection(
        counts=np.bincount(ev, minlength=n).astype(np.int64),
        columns={
            "mass": mass.astype(F32),
            "vtx_chi2": vtx_chi2,
            "pv_ntracks": pv_ntracks,
            "flight_sig": flight_sig.astype(F32),
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
            "mu1_refit_pt": refit["mu1"][0],
            "mu1_refit_eta": refit["mu1"][1],
            "mu1_refit_phi": refit["mu1"][2],
            "mu2_refit_pt": refit["mu2"][0],
            "mu2_refit_eta": refit["mu2"][1],
            "mu2_refit_phi": refit["mu2"][2],
            "mu1_trig_dr": m["trig_dr"][g1],
            "mu2_trig_dr": m["trig_dr"][g2],
            "pt": tpt.astype(F32),
            "eta": teta.astype(F32),
            "phi": tphi.astype(F32),
            "charge": charge,
            "truth": truth,
        },
    )
