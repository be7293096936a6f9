"""Candidates of each raw event: distinct (muon pair, track) combinations, the true one
first, with a vertex-fit-like mass, skimmed on the mass windows, then their fields.

:data:`CANDIDATE_COLUMNS` is the one home of the candidate columns' names, order and
types; the kernels' output rows are derived from it.
"""

from __future__ import annotations

import numpy as np

from tau3mu.config import TRUTH_BACKGROUND
from tau3mu.synth.float32 import (
    F0,
    F1,
    F2,
    F_MU,
    F_PION,
    HALF,
    F,
    invariant_mass,
    jit_inline,
    jit_kernel,
    p4,
    pt_eta_phi,
    wrap_phi,
)
from tau3mu.synth.rng import exponential, normal, uniform_pair

#: the candidate columns, in the order of :class:`~tau3mu.synth.events.SyntheticEvents`'
#: description, with their type: the one place for both (the kernels' output rows, the
#: events' column order and the row numbers below are derived from it)
CANDIDATE_COLUMNS = (
    ("mass", np.float32),
    ("vtx_chi2", np.float32),
    ("pv_ntracks", np.float32),
    ("flight_sig", np.float32),
    ("mu1_idx", np.int32),
    ("mu2_idx", np.int32),
    ("trk_idx", np.int32),
    ("mu1_pt", np.float32),
    ("mu1_eta", np.float32),
    ("mu1_phi", np.float32),
    ("mu2_pt", np.float32),
    ("mu2_eta", np.float32),
    ("mu2_phi", np.float32),
    ("trk_pt", np.float32),
    ("trk_eta", np.float32),
    ("trk_phi", np.float32),
    ("mu1_refit_pt", np.float32),
    ("mu1_refit_eta", np.float32),
    ("mu1_refit_phi", np.float32),
    ("mu2_refit_pt", np.float32),
    ("mu2_refit_eta", np.float32),
    ("mu2_refit_phi", np.float32),
    ("mu1_trig_dr", np.float32),
    ("mu2_trig_dr", np.float32),
    ("pt", np.float32),
    ("eta", np.float32),
    ("phi", np.float32),
    ("charge", np.int32),
    ("truth", np.int32),
)
#: rows of :func:`candidates`' float32 and int32 outputs
CANDIDATE_FLOATS = tuple(name for name, t in CANDIDATE_COLUMNS if t is np.float32)
CANDIDATE_INTS = tuple(name for name, t in CANDIDATE_COLUMNS if t is np.int32)
if len(CANDIDATE_FLOATS) + len(CANDIDATE_INTS) != len(CANDIDATE_COLUMNS):
    raise TypeError("candidate columns are float32 or int32")


def _rows(block: tuple[str, ...], *names: str) -> int:
    """Row of ``names[0]`` in ``block``, checking that ``names`` are consecutive rows."""
    first = block.index(names[0])
    if block[first : first + len(names)] != names:
        raise AssertionError(f"{names} are not consecutive rows of {block}")
    return first


# row numbers of the kernels' candidate output (globals: numba compiles them as constants)
_R_MASS = _rows(CANDIDATE_FLOATS, "mass", "vtx_chi2", "pv_ntracks", "flight_sig")
_R_MU1 = _rows(CANDIDATE_FLOATS, "mu1_pt", "mu1_eta", "mu1_phi")
_R_MU2 = _rows(CANDIDATE_FLOATS, "mu2_pt", "mu2_eta", "mu2_phi")
_R_TRK = _rows(CANDIDATE_FLOATS, "trk_pt", "trk_eta", "trk_phi")
_R_REFIT = _rows(
    CANDIDATE_FLOATS, *(f"mu{k}_refit_{v}" for k in (1, 2) for v in ("pt", "eta", "phi"))
)
_R_TRIG = _rows(CANDIDATE_FLOATS, "mu1_trig_dr", "mu2_trig_dr")
_R_P3 = _rows(CANDIDATE_FLOATS, "pt", "eta", "phi")
_R_LINKS = _rows(CANDIDATE_INTS, "mu1_idx", "mu2_idx", "trk_idx")
_R_CHARGE = _rows(CANDIDATE_INTS, "charge")
_R_TRUTH = _rows(CANDIDATE_INTS, "truth")


def candidates(
    state,
    n_cand,
    combo_offset,
    n_mu,
    n_trk,
    mu_offsets,
    trk_offsets,
    signal,
    kind,
    mu,
    mu_charge,
    trk,
    trk_charge,
    flight_of_event,
    pairs,
    vertex_fit_keep,
    vertex_fit_noise,
    skim_mass_lo,
    skim_mass_hi,
    skim_dimuon_lo,
    skim_dimuon_hi,
    refit_fraction,
    pt_resolution,
    angle_resolution,
    refit_failure,
):
    """Candidates: distinct (pair, track) combinations, the true one first; skimmed.

    Event i holds ``n_cand[i]`` combinations from ``combo_offset[i]`` on (muon pairs
    ``pairs``, local indices). The mass is the vertex-fit-like mass (truth +
    ``vertex_fit_keep`` of the measurement's error + fit noise); the skim (mass windows)
    drops a candidate before its costly fields are drawn. ``mu``, ``trk``: the float rows
    of the muon and track collections; ``flight_of_event``: the decay's transverse flight.
    Returns (float32 rows CANDIDATE_FLOATS, int32 rows CANDIDATE_INTS, counts per event).

    Two passes (the skim, then the fields of the survivors), so that every large array
    is allocated by numpy at its final size (numpy asks the kernel for transparent huge
    pages, which spares first-touch page faults of 4 kB pages).
    """
    events = (n_cand, combo_offset, n_mu, n_trk, mu_offsets, trk_offsets, pairs)
    windows = (skim_mass_lo, skim_mass_hi, skim_dimuon_lo, skim_dimuon_hi)
    momenta = _four_momenta(mu, trk)
    combo_mass, combo_p3, combo_keep, counts = _skim(
        state, events, momenta, vertex_fit_keep, vertex_fit_noise, windows
    )
    w = int(counts.sum())
    fo = np.empty((len(CANDIDATE_FLOATS), w), dtype=np.float32)
    io = np.empty((len(CANDIDATE_INTS), w), dtype=np.int32)
    _candidate_fields(
        state,
        *events,
        signal,
        kind,
        mu,
        mu_charge,
        trk,
        trk_charge,
        flight_of_event,
        combo_mass,
        combo_p3,
        combo_keep,
        F(refit_fraction * pt_resolution),
        F(refit_fraction * angle_resolution),
        F(refit_failure),
        fo,
        io,
    )
    return fo, io, counts


def _four_momenta(mu, trk):
    """(measured muons, true muons, measured tracks, true tracks): (4, n) float32 each."""
    out = []
    for block, m in ((mu, F_MU), (trk, F_PION)):
        meas = np.empty((4, block.shape[1]), dtype=np.float32)
        true = np.empty((4, block.shape[1]), dtype=np.float32)
        _collection_p4(block[0], block[1], block[2], m, meas)
        _true_p4(block, m, meas, true)
        out += [meas, true]
    meas_mu, true_mu, meas_trk, true_trk = out
    return meas_mu, true_mu, meas_trk, true_trk


def _skim(state, events, momenta, vertex_fit_keep, vertex_fit_noise, windows):
    """Pass 1 over every combination: (mass, momentum rows, kept, kept per event)."""
    n_combos_total = int(events[0].sum())
    combo_mass = np.empty(n_combos_total, dtype=np.float32)
    combo_p3 = np.empty((3, n_combos_total), dtype=np.float32)
    combo_keep = np.empty(n_combos_total, dtype=np.bool_)
    counts = np.zeros(len(events[0]), dtype=np.int64)
    _candidate_skim(
        state,
        *events,
        *momenta,
        F(vertex_fit_keep),
        F(vertex_fit_noise),
        *(F(x) for x in windows),
        combo_mass,
        combo_p3,
        combo_keep,
        counts,
    )
    return combo_mass, combo_p3, combo_keep, counts


@jit_kernel
def _collection_p4(pt, eta, phi, m, out):
    """(4, n) float32 four-momenta of float32 (pt, eta, phi) into ``out``."""
    for j in range(len(pt)):
        out[0, j], out[1, j], out[2, j], out[3, j] = p4(pt[j], eta[j], phi[j], m)


@jit_kernel
def _true_p4(block, m, meas, out):
    """Four-momenta of the true (rows 3-5) kinematics; the measured ones where equal."""
    for j in range(block.shape[1]):
        if block[3, j] == block[0, j] and block[4, j] == block[1, j] and block[5, j] == block[2, j]:
            for r in range(4):
                out[r, j] = meas[r, j]
        else:
            out[0, j], out[1, j], out[2, j], out[3, j] = p4(
                block[3, j], block[4, j], block[5, j], m
            )


@jit_inline
def _first_combo(offset, nm, nt):
    """(combination, pair, track, number of combinations) of an event's first candidate.

    Combination k of an event is (pair k // nt, track k % nt); an event's candidates are
    the consecutive combinations from ``offset`` on, wrapping around (see _next_combo).
    """
    n_combos = nm * (nm - 1) // 2 * nt
    combo = offset % n_combos
    pair = combo // nt
    return combo, pair, combo - pair * nt, n_combos


@jit_inline
def _next_combo(combo, pair, track, nt, n_combos):
    """The combination after ``combo``, without integer divisions (each costs more than this whole step)."""
    combo += 1
    track += 1
    if track == nt:
        track = 0
        pair += 1
    if combo == n_combos:
        combo, pair, track = 0, 0, 0
    return combo, pair, track


@jit_kernel
def _candidate_skim(
    state,
    n_cand,
    combo_offset,
    n_mu,
    n_trk,
    mu_offsets,
    trk_offsets,
    pairs,
    meas_mu,
    true_mu,
    meas_tr,
    true_tr,
    keep,
    noise,
    mass_lo,
    mass_hi,
    dimuon_lo,
    dimuon_hi,
    combo_mass,
    combo_p3,
    combo_keep,
    counts,
):
    """Pass 1: each combination's vertex-fit-like mass, momentum and the skim's verdict."""
    c = 0
    for i in range(len(n_cand)):
        nt = n_trk[i]
        combo, pair, it, n_combos = _first_combo(combo_offset[i], n_mu[i], nt)
        for local in range(n_cand[i]):
            if local > 0:
                combo, pair, it = _next_combo(combo, pair, it, nt, n_combos)
            i1, i2 = pairs[pair, 0], pairs[pair, 1]
            g1, g2, gt = mu_offsets[i] + i1, mu_offsets[i] + i2, trk_offsets[i] + it
            dmx = meas_mu[0, g1] + meas_mu[0, g2]
            dmy = meas_mu[1, g1] + meas_mu[1, g2]
            dmz = meas_mu[2, g1] + meas_mu[2, g2]
            dme = meas_mu[3, g1] + meas_mu[3, g2]
            tx, ty = dmx + meas_tr[0, gt], dmy + meas_tr[1, gt]
            tz, te = dmz + meas_tr[2, gt], dme + meas_tr[3, gt]
            m_meas = invariant_mass(tx, ty, tz, te)
            m_true = invariant_mass(
                true_mu[0, g1] + true_mu[0, g2] + true_tr[0, gt],
                true_mu[1, g1] + true_mu[1, g2] + true_tr[1, gt],
                true_mu[2, g1] + true_mu[2, g2] + true_tr[2, gt],
                true_mu[3, g1] + true_mu[3, g2] + true_tr[3, gt],
            )
            mass = m_true + keep * (m_meas - m_true) + noise * normal(state)
            m_dimuon = invariant_mass(dmx, dmy, dmz, dme)
            ok = mass > mass_lo and mass < mass_hi and m_dimuon > dimuon_lo and m_dimuon < dimuon_hi
            combo_mass[c] = mass
            combo_p3[0, c], combo_p3[1, c], combo_p3[2, c] = tx, ty, tz
            combo_keep[c] = ok
            counts[i] += ok
            c += 1


@jit_kernel
def _candidate_fields(
    state,
    n_cand,
    combo_offset,
    n_mu,
    n_trk,
    mu_offsets,
    trk_offsets,
    pairs,
    signal,
    kind,
    mu,
    mu_charge,
    trk,
    trk_charge,
    flight_of_event,
    combo_mass,
    combo_p3,
    combo_keep,
    refit_pt,
    refit_angle,
    failure,
    fo,
    io,
):
    """Pass 2: the fields of the candidates that passed the skim."""
    c = 0
    w = 0
    for i in range(len(n_cand)):
        pv_event = max(np.floor(F(22) + F(4.7) * normal(state) + HALF), F2)
        nt = n_trk[i]
        combo, pair, it, n_combos = _first_combo(combo_offset[i], n_mu[i], nt)
        for local in range(n_cand[i]):
            if local > 0:
                combo, pair, it = _next_combo(combo, pair, it, nt, n_combos)
            c += 1
            if not combo_keep[c - 1]:
                continue
            i1, i2 = pairs[pair, 0], pairs[pair, 1]
            g1, g2, gt = mu_offsets[i] + i1, mu_offsets[i] + i2, trk_offsets[i] + it
            is_true = signal[i] and combo == 0
            tpt, teta, tphi = pt_eta_phi(combo_p3[0, c - 1], combo_p3[1, c - 1], combo_p3[2, c - 1])
            fo[_R_MASS, w] = combo_mass[c - 1]
            # -- refitted muon tracks: the truth with a fraction of the detector resolution
            for k in range(2):
                row = _R_REFIT + 3 * k
                g = g1 if k == 0 else g2
                fo[row, w] = mu[3, g] * (F1 + refit_pt * normal(state))
                fo[row + 1, w] = mu[4, g] + refit_angle * normal(state)
                fo[row + 2, w] = wrap_phi(mu[5, g] + refit_angle * normal(state))
            u0, u1 = uniform_pair(state)
            u2, u3 = uniform_pair(state)
            u4, u5 = uniform_pair(state)
            if u0 < failure:
                for row in range(_R_REFIT, _R_REFIT + 6):
                    fo[row, w] = -99.0
            # -- vertex quality, refitted PV, displacement --------------------------------
            e1, e2 = exponential(state), exponential(state)
            fo[_R_MASS + 1, w] = F(1.2) * e1 if is_true else F(3.2) * e1 + F(1.5) * e2
            pv = pv_event - np.floor(F(3) * u1)
            if u2 < F(0.03):
                pv = np.floor(F2 * u3)
            fo[_R_MASS + 2, w] = pv
            err = F(0.0025) + F(0.0035) * u5
            flight = flight_of_event[i] if is_true else F0
            if not is_true and u4 < F(0.60):
                flight = F(0.02) * e2
            fo[_R_MASS + 3, w] = abs(flight + normal(state) * err) / err
            for r in range(3):
                fo[_R_MU1 + r, w] = mu[r, g1]
                fo[_R_MU2 + r, w] = mu[r, g2]
                fo[_R_TRK + r, w] = trk[r, gt]
            fo[_R_TRIG, w], fo[_R_TRIG + 1, w] = mu[6, g1], mu[6, g2]
            fo[_R_P3, w], fo[_R_P3 + 1, w], fo[_R_P3 + 2, w] = tpt, teta, tphi
            io[_R_LINKS, w], io[_R_LINKS + 1, w], io[_R_LINKS + 2, w] = i1, i2, it
            io[_R_CHARGE, w] = mu_charge[g1] + mu_charge[g2] + trk_charge[gt]
            io[_R_TRUTH, w] = kind[i] if is_true else TRUTH_BACKGROUND
            w += 1


__all__ = ["CANDIDATE_COLUMNS", "CANDIDATE_FLOATS", "CANDIDATE_INTS", "candidates"]
