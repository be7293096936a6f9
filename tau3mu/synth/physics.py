"""Layout-independent simulation of skimmed 2 mu + track events (docs/physics.md, "Synthetic data").

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

Speed: the per-particle work runs in compiled per-event loops (:mod:`tau3mu.synth.compiled`,
numba, float32 arithmetic, an inline random generator seeded from the file's), which
fuse what were dozens of whole-array numpy passes and redraw rejected decays per event;
raw events are simulated in chunks of ``RAW_CHUNK`` so that their temporaries reuse
memory; discrete distributions come from lookup tables. The skim is applied to
candidates before their expensive fields are drawn, the trigger drawn for kept events
only. Values are
float32 (or int/bool), so the same events written in both layouts hold identical
numbers. A file depends only on ``(seed, file_index)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from tau3mu.config import (
    TRUTH_BACKGROUND,
    TRUTH_DPLUS,
    TRUTH_DS,
)
from tau3mu.synth import compiled

F32 = np.float32
#: all muon pairs (i < j) of up to MAX_MUONS muons, ordered so that the first
#: n (n - 1) / 2 pairs use only the first n muons; pair 0 is the leading (0, 1)
MAX_MUONS = 6
MAX_TRACKS = 9
#: raw events simulated at a time: the temporaries of a chunk (~20 MB) stay below glibc's
#: mmap threshold, so the next chunk reuses their memory instead of faulting in (and the
#: kernel zeroing) fresh pages, which cost more than the arithmetic
RAW_CHUNK = 1 << 16
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
#: the Run 3 producer's trigger bits (its names, :data:`tau3mu.layouts.RUN3`): probability
#: to fire in (signal, background) events
RUN3_TRIGGER_RATES = {
    "HLT_DoubleMu3_Trk_Tau3mu": (0.60, 0.50),
    "HLT_DoubleMu3_TkMu_DsTau3Mu_v": (0.30, 0.20),
    "HLT_DoubleMu3_Trk_Tau3mu_NoL1Mass_v": (0.50, 0.45),
    "HLT_DoubleMu4_3_LowMass_v": (0.85, 0.75),
    "HLT_DoubleMu4_LowMass_Displaced_v": (0.35, 0.25),
    "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4": (0.80, 0.78),
    "L1_DoubleMu0er1p4_SQ_OS_dR_Max1p4": (0.30, 0.30),
    "L1_DoubleMu4_SQ_OS_dR_Max1p2": (0.45, 0.40),
    "L1_DoubleMu4p5_SQ_OS_dR_Max1p2": (0.30, 0.30),
    "L1_DoubleMu0er2p0_SQ_OS_dEta_Max1p6": (0.30, 0.30),
    "L1_DoubleMu0er2p0_SQ_OS_dEta_Max1p5": (0.30, 0.30),
    "L1_TripleMu_5SQ_3SQ_0_DoubleMu_5_3_SQ_OS_Mass_Max9": (0.30, 0.30),
    "L1_TripleMu_5SQ_3SQ_0OQ_DoubleMu_5_3_SQ_OS_Mass_Max9": (0.30, 0.30),
    "L1_TripleMu_2SQ_1p5SQ_0OQ_Mass_Max12": (0.30, 0.30),
    "L1_TripleMu_3SQ_2p5SQ_0OQ_Mass_Max12": (0.30, 0.30),
}


@dataclass(frozen=True)
class Tuning:
    """Knobs of the simulation; defaults reproduce docs/physics.md, "Synthetic data", after the selection."""

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
    #: skim on single particles (docs/physics.md, "Synthetic data"): muons pt > 2, |eta| < 2.4; tracks pt > 2
    skim_min_pt: float = 2.0
    skim_muon_abseta: float = 2.4
    skim_track_abseta: float = 2.5


@dataclass
class Collection:
    """A jagged collection: per-event counts and flat per-entry columns.

    ``blocks`` (optional): 2D arrays whose rows are columns of the given names (the
    compiled generator's output), so that selecting entries is one gather per block.
    """

    counts: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    blocks: list[tuple[np.ndarray, tuple[str, ...]]] = field(default_factory=list, repr=False)

    @classmethod
    def from_blocks(
        cls,
        counts: np.ndarray,
        blocks: list[tuple[np.ndarray, tuple[str, ...]]],
        columns: dict[str, np.ndarray],
        order: tuple[str, ...],
    ) -> Collection:
        """Columns of ``order`` from rows of ``blocks`` and from ``columns``."""
        named = dict(columns)
        for block, names in blocks:
            named.update(zip(names, block, strict=True))
        return cls(counts, {k: named[k] for k in order}, blocks)

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
    #: the Run 3 producer's trigger bits (HLT paths and L1 seeds, its names), per event
    trigger3: dict[str, np.ndarray] = field(default_factory=dict)
    #: raw events simulated before the skim kept these (simulation's ``ngen``)
    raw_events: int = 0
    #: per event: ORIGIN_* of its signal decay (:mod:`tau3mu.synth.truth`), None if not drawn
    origin: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.run)


# -- cheap random numbers and kinematics ---------------------------------------------------
def _rng(seed: int, file_index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(file_index), 0x7A3]))


@functools.cache
def _poisson_table(mean: float, cap: int, size: int = 4096) -> np.ndarray:
    """Quantile function of a Poisson(mean) capped at ``cap``, on a grid of ``size``
    (computed once per process: read-only)."""
    k = np.arange(cap + 1)
    pmf = np.exp(-mean) * mean**k / np.cumprod(np.r_[1, k[1:]])
    cdf = np.cumsum(pmf)
    cdf[-1] = 1.0
    table = np.searchsorted(cdf, (np.arange(size) + 0.5) / size).astype(np.int32)
    table.flags.writeable = False
    return table


def _poisson(rng: np.random.Generator, n: int, mean: float, cap: int) -> np.ndarray:
    """Poisson(mean) draws capped at ``cap`` by table lookup (numpy's poisson is slow)."""
    table = _poisson_table(mean, cap)
    return table[rng.integers(0, len(table), n)]


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
    state = compiled.rng_state(rng)  # the compiled kernels' generator, seeded by the file's
    n = int(n_events)
    # raw events in chunks; the kept entries of each are copied once, straight into the
    # file's arrays. About 69 % of raw events keep a candidate after the skim (data;
    # the estimate is updated chunk by chunk)
    collections = {name: _Gathered(n) for name in ("muons", "tracks", "candidates")}
    per_event: list[np.ndarray] = []
    have, survival, raw_events = 0, 0.69, 0
    while have < n or not per_event:
        want = n - have
        n_raw = min(max(int(want / survival * 1.01) + 16, 64), RAW_CHUNK)
        raw = _simulate_raw(rng, state, n_raw, mc, tuning)
        keep = (raw.candidates.counts > 0) | (rng.random(n_raw) < tuning.empty_fraction)
        survival = max(float(keep.mean()), 0.05)
        keep &= np.cumsum(keep) <= want
        # the raw events this file used: up to its last kept one in the final chunk
        last = np.flatnonzero(keep)
        complete = have + len(last) >= n
        raw_events += int(last[-1]) + 1 if complete and len(last) else n_raw
        for name, gathered in collections.items():
            gathered.add(getattr(raw, name), keep)
        per_event.append(raw.kind[keep])
        have += int(keep.sum())
    kind = np.concatenate(per_event)
    # the trigger depends only on the event's kind: drawn for the kept events only
    signal = kind != TRUTH_BACKGROUND
    if first_event is None:
        first_event = file_index * 10_000_000
    return SyntheticEvents(
        run=np.full(n, run_number, dtype=np.uint32),
        lumi=(1 + file_index * 97 + np.arange(n) // 500).astype(np.uint32),
        event=(first_event + np.arange(n)).astype(np.uint64),
        muons=collections["muons"].collection(),
        tracks=collections["tracks"].collection(),
        candidates=collections["candidates"].collection(),
        hlt=_fired(rng, signal, HLT_RATES),
        l1=_fired(rng, signal, L1_RATES),
        hlt_version=np.full(n, 8 + file_index % 5, dtype=np.int64),
        kind=kind,
        # drawn last: the draws above, and so the Run 2 files, do not depend on them
        trigger3=_fired(rng, signal, RUN3_TRIGGER_RATES),
        raw_events=raw_events,
    )


@functools.cache
def skim_survival(mc: bool = False, n_raw: int = 1 << 18, seed: int = 0x5EED) -> float:
    """The share of raw events the skim keeps (events with a candidate, plus the few kept
    empty), measured on ``n_raw`` raw events of a fixed seed: the factor between the
    events a file holds and the raw events (luminosity, ``ngen``) they stand for."""
    tuning = Tuning()
    rng = _rng(seed, 0)
    state = compiled.rng_state(rng)
    with_candidate = 0
    for start in range(0, n_raw, RAW_CHUNK):
        raw = _simulate_raw(rng, state, min(RAW_CHUNK, n_raw - start), mc, tuning)
        with_candidate += int(np.count_nonzero(raw.candidates.counts > 0))
    share = with_candidate / n_raw
    return share + (1.0 - share) * tuning.empty_fraction


def _fired(
    rng: np.random.Generator, signal: np.ndarray, rates: dict[str, tuple[float, float]]
) -> dict[str, np.ndarray]:
    """Per path or seed: whether it fired, with the rate of (signal, background) events."""
    return {
        name: rng.random(len(signal), dtype=F32) < np.where(signal, F32(r_sig), F32(r_bkg))
        for name, (r_sig, r_bkg) in rates.items()
    }


class _Gathered:
    """A collection's arrays for the whole file, filled with the kept entries chunk by chunk.

    The arrays are allocated once (size estimated from the first chunk, grown if needed)
    and trimmed by views at the end: each kept value is copied once, by a compiled gather.
    """

    def __init__(self, n_events: int):
        self.n_events = n_events
        self.size = 0
        self.counts: list[np.ndarray] = []
        self.blocks: list[tuple[np.ndarray, tuple[str, ...]]] = []
        self.order: tuple[str, ...] = ()

    def add(self, c: Collection, keep: np.ndarray) -> None:
        index = np.flatnonzero(np.repeat(keep, c.counts))
        sources = list(c.blocks)
        in_blocks = {name for _, names in sources for name in names}
        sources += [(v[None, :], (k,)) for k, v in c.columns.items() if k not in in_blocks]
        kept_events = int(keep.sum())
        if not self.blocks:
            self.order = tuple(c.columns)
            per_event = len(index) / max(kept_events, 1)
            capacity = int(per_event * self.n_events * 1.05) + 1024
            self.blocks = [
                (np.empty((b.shape[0], capacity), dtype=b.dtype), names) for b, names in sources
            ]
        capacity = self.blocks[0][0].shape[1]
        if self.size + len(index) > capacity:  # rare: grow, keeping what is filled
            capacity = max(2 * capacity, self.size + len(index))
            grown = []
            for block, names in self.blocks:
                new = np.empty((block.shape[0], capacity), dtype=block.dtype)
                new[:, : self.size] = block[:, : self.size]
                grown.append((new, names))
            self.blocks = grown
        for (target, _), (source, _) in zip(self.blocks, sources, strict=True):
            compiled.gather(source, index, target, self.size)
        self.size += len(index)
        self.counts.append(c.counts[keep])

    def collection(self) -> Collection:
        counts = np.concatenate(self.counts)
        blocks = [(block[:, : self.size], names) for block, names in self.blocks]
        return Collection.from_blocks(counts, blocks, {}, self.order)


def _simulate_raw(
    rng: np.random.Generator, state: np.ndarray, n: int, mc: bool, t: Tuning
) -> SyntheticEvents:
    """Events before the skim's at-least-one-candidate requirement.

    ``rng`` draws the per-event numbers in bulk (numpy), ``state`` is the compiled
    kernels' generator (:func:`compiled.rng_state`).
    """
    # -- event kinds: Ds+, D+ or background only; simulation is mostly Ds+ ---------------
    ds_f, dp_f = (
        (t.mc_ds_fraction, t.mc_dplus_fraction) if mc else (t.ds_fraction, t.dplus_fraction)
    )
    u = rng.random(n, dtype=F32)
    kind = np.where(u < ds_f, TRUTH_DS, np.where(u < ds_f + dp_f, TRUTH_DPLUS, TRUTH_BACKGROUND))
    kind = kind.astype(np.int32)
    signal = kind != TRUTH_BACKGROUND

    # -- the leading mu mu (and pion) per event, true kinematics, skim-clean ---------------
    lead = compiled.leading(
        state,
        kind,
        t.phi_fraction_background,
        t.random_pair_fraction,
        t.skim_min_pt,
        t.skim_muon_abseta,
        t.skim_track_abseta,
        t.skim_dimuon[0],
    )

    # -- collections: the leading pair (and pion) plus extra muons and tracks nearby -------
    n_mu = 2 + _poisson(rng, n, t.extra_muons, MAX_MUONS - 2).astype(np.int64)
    n_trk = 1 + _poisson(rng, n, t.extra_tracks, MAX_TRACKS - 1).astype(np.int64)
    mu, mu_charge, is_global, is_pf = compiled.muons(
        state,
        n_mu,
        lead,
        signal,
        t.skim_min_pt,
        t.skim_muon_abseta,
        t.pt_resolution,
        t.angle_resolution,
    )
    mu_offsets = _offsets(n_mu)
    trk, trk_charge = compiled.tracks(
        state,
        n_trk,
        mu_offsets,
        mu,
        lead,
        signal,
        t.skim_mass[0],
        t.skim_mass[1],
        t.background_slope,
        t.skim_min_pt,
        t.skim_track_abseta,
        t.pt_resolution,
        t.angle_resolution,
        t.muon_track_copy,
    )
    muons = Collection.from_blocks(
        n_mu,
        [(mu, ("pt", "eta", "phi", "true_pt", "true_eta", "true_phi", "trig_dr"))],
        {"charge": mu_charge, "is_global": is_global, "is_pf": is_pf},
        _MUON_ORDER,
    )
    tracks = Collection.from_blocks(
        n_trk,
        [(trk, ("pt", "eta", "phi", "true_pt", "true_eta", "true_phi", "dz", "dxy"))],
        {"charge": trk_charge},
        _TRACK_ORDER,
    )

    # -- candidates: distinct (pair, track) combinations, the true one first ---------------
    n_combos = (n_mu * (n_mu - 1) // 2) * n_trk
    n_cand = np.minimum(1 + _poisson(rng, n, t.extra_candidates, 12), n_combos)
    shuffled = ~signal & (rng.random(n, dtype=F32) < t.shuffled_candidates)
    offset = np.where(shuffled, rng.integers(0, 1 << 30, n) % n_combos, 0)
    floats, ints, counts = compiled.candidates(
        state,
        n_cand,
        offset,
        n_mu,
        n_trk,
        mu_offsets,
        _offsets(n_trk),
        signal,
        kind,
        mu,
        mu_charge,
        trk,
        trk_charge,
        lead[9],
        _PAIRS,
        t.vertex_fit_keep,
        t.vertex_fit_noise,
        t.skim_mass[0],
        t.skim_mass[1],
        t.skim_dimuon[0],
        t.skim_dimuon[1],
        t.refit_fraction,
        t.pt_resolution,
        t.angle_resolution,
        t.refit_failure,
    )
    candidates = Collection.from_blocks(
        counts,
        [(floats, compiled.CANDIDATE_FLOATS), (ints, compiled.CANDIDATE_INTS)],
        {},
        _CANDIDATE_ORDER,
    )

    return SyntheticEvents(
        run=np.zeros(n, dtype=np.uint32),
        lumi=np.zeros(n, dtype=np.uint32),
        event=np.zeros(n, dtype=np.uint64),
        muons=muons,
        tracks=tracks,
        candidates=candidates,
        hlt={},  # drawn for the kept events (simulate)
        l1={},
        hlt_version=np.zeros(n, dtype=np.int64),
        kind=kind,
    )


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


_MUON_ORDER = (
    "pt",
    "eta",
    "phi",
    "charge",
    "is_global",
    "is_pf",
    "true_pt",
    "true_eta",
    "true_phi",
    "trig_dr",
)
_TRACK_ORDER = ("pt", "eta", "phi", "charge", "dz", "dxy", "true_pt", "true_eta", "true_phi")
#: the candidate columns, in the order of :class:`SyntheticEvents`' description
_CANDIDATE_ORDER = tuple(name for name, _ in compiled.CANDIDATE_COLUMNS)
