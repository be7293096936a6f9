"""Raw events: one chunk of simulated events before the skim's at-least-one-candidate
requirement, from the event kinds through the leading decay, the muon and track
collections to the candidates (docs/physics.md, "Synthetic data").

Two generators draw, in a fixed order: ``rng`` (numpy) the per-event numbers in bulk,
``state`` (:func:`tau3mu.synth.rng.rng_state`) the per-particle numbers in the kernels.
"""

from __future__ import annotations

import functools

import numpy as np

from tau3mu.config import TRUTH_BACKGROUND, TRUTH_DPLUS, TRUTH_DS
from tau3mu.synth.candidates import CANDIDATE_COLUMNS, CANDIDATE_FLOATS, CANDIDATE_INTS, candidates
from tau3mu.synth.events import Collection, SyntheticEvents, offsets_of
from tau3mu.synth.leading import leading
from tau3mu.synth.muons import MUON_ROWS, muons
from tau3mu.synth.tracks import TRACK_ROWS, tracks
from tau3mu.synth.tuning import Tuning

F32 = np.float32
#: all muon pairs (i < j) of up to MAX_MUONS muons, ordered so that the first
#: n (n - 1) / 2 pairs use only the first n muons; pair 0 is the leading (0, 1)
MAX_MUONS = 6
MAX_TRACKS = 9
MUON_PAIRS = np.array([(i, j) for j in range(1, MAX_MUONS) for i in range(j)], dtype=np.int32)
#: the collections' columns, in the order of :class:`SyntheticEvents`' description
MUON_COLUMNS = (
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
TRACK_COLUMNS = ("pt", "eta", "phi", "charge", "dz", "dxy", "true_pt", "true_eta", "true_phi")
CANDIDATE_ORDER = tuple(name for name, _ in CANDIDATE_COLUMNS)


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


def simulate_raw(
    rng: np.random.Generator, state: np.ndarray, n: int, mc: bool, t: Tuning
) -> SyntheticEvents:
    """``n`` events before the skim's at-least-one-candidate requirement: kinds, muons,
    tracks and candidates (run, lumi, event numbers zero, triggers empty).

    ``rng`` draws the per-event numbers in bulk (numpy), ``state`` is the kernels'
    generator (:func:`tau3mu.synth.rng.rng_state`); both are advanced; ``mc``: the event
    kinds of simulation.
    """
    kind = _event_kinds(rng, n, mc, t)
    signal = kind != TRUTH_BACKGROUND
    # the leading mu mu (and pion) per event, true kinematics, skim-clean
    lead = leading(
        state,
        kind,
        t.phi_fraction_background,
        t.random_pair_fraction,
        t.skim_min_pt,
        t.skim_muon_abseta,
        t.skim_track_abseta,
        t.skim_dimuon[0],
    )
    muon_collection, track_collection, arrays = _collections(rng, state, n, lead, signal, t)
    candidate_collection = _candidates(rng, state, n, kind, lead, arrays, t)
    return SyntheticEvents(
        run=np.zeros(n, dtype=np.uint32),
        lumi=np.zeros(n, dtype=np.uint32),
        event=np.zeros(n, dtype=np.uint64),
        muons=muon_collection,
        tracks=track_collection,
        candidates=candidate_collection,
        hlt={},  # drawn for the kept events (simulate)
        l1={},
        hlt_version=np.zeros(n, dtype=np.int64),
        kind=kind,
    )


def _event_kinds(rng: np.random.Generator, n: int, mc: bool, t: Tuning) -> np.ndarray:
    """TRUTH_* per event (int32): Ds+, D+ or background only; simulation is mostly Ds+."""
    ds_f, dp_f = (
        (t.mc_ds_fraction, t.mc_dplus_fraction) if mc else (t.ds_fraction, t.dplus_fraction)
    )
    u = rng.random(n, dtype=F32)
    kind = np.where(u < ds_f, TRUTH_DS, np.where(u < ds_f + dp_f, TRUTH_DPLUS, TRUTH_BACKGROUND))
    return kind.astype(np.int32)


def _collections(
    rng: np.random.Generator,
    state: np.ndarray,
    n: int,
    lead: np.ndarray,
    signal: np.ndarray,
    t: Tuning,
) -> tuple[Collection, Collection, dict[str, np.ndarray]]:
    """The muon and track collections: the leading pair (and pion) plus extra muons and
    tracks nearby; and their arrays that the candidates link to (by name)."""
    n_mu = 2 + _poisson(rng, n, t.extra_muons, MAX_MUONS - 2).astype(np.int64)
    n_trk = 1 + _poisson(rng, n, t.extra_tracks, MAX_TRACKS - 1).astype(np.int64)
    mu, mu_charge, is_global, is_pf = muons(
        state, n_mu, lead, signal, t.skim_min_pt, t.skim_muon_abseta, t.pt_resolution,
        t.angle_resolution,
    )  # fmt: skip
    mu_offsets = offsets_of(n_mu)
    trk, trk_charge = tracks(
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
    muon_collection = Collection.from_blocks(
        n_mu,
        [(mu, MUON_ROWS)],
        {"charge": mu_charge, "is_global": is_global, "is_pf": is_pf},
        MUON_COLUMNS,
    )
    track_collection = Collection.from_blocks(
        n_trk, [(trk, TRACK_ROWS)], {"charge": trk_charge}, TRACK_COLUMNS
    )
    arrays = {
        "n_mu": n_mu,
        "n_trk": n_trk,
        "mu_offsets": mu_offsets,
        "mu": mu,
        "mu_charge": mu_charge,
        "trk": trk,
        "trk_charge": trk_charge,
    }
    return muon_collection, track_collection, arrays


def _candidates(
    rng: np.random.Generator,
    state: np.ndarray,
    n: int,
    kind: np.ndarray,
    lead: np.ndarray,
    arrays: dict[str, np.ndarray],
    t: Tuning,
) -> Collection:
    """Candidates: distinct (pair, track) combinations, the true one first, skimmed;
    ``arrays`` those of :func:`_collections`."""
    signal = kind != TRUTH_BACKGROUND
    n_mu, n_trk = arrays["n_mu"], arrays["n_trk"]
    n_combos = (n_mu * (n_mu - 1) // 2) * n_trk
    n_cand = np.minimum(1 + _poisson(rng, n, t.extra_candidates, 12), n_combos)
    shuffled = ~signal & (rng.random(n, dtype=F32) < t.shuffled_candidates)
    offset = np.where(shuffled, rng.integers(0, 1 << 30, n) % n_combos, 0)
    floats, ints, counts = candidates(
        state,
        n_cand,
        offset,
        n_mu,
        n_trk,
        arrays["mu_offsets"],
        offsets_of(n_trk),
        signal,
        kind,
        arrays["mu"],
        arrays["mu_charge"],
        arrays["trk"],
        arrays["trk_charge"],
        lead[9],
        MUON_PAIRS,
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
    return Collection.from_blocks(
        counts, [(floats, CANDIDATE_FLOATS), (ints, CANDIDATE_INTS)], {}, CANDIDATE_ORDER
    )


__all__ = ["MAX_MUONS", "MAX_TRACKS", "MUON_PAIRS", "simulate_raw"]
