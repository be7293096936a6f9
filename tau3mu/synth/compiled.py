"""Compiled (numba) per-event loops of the simulation in :mod:`tau3mu.synth.physics`.

The physics is that of the vectorised numpy version this replaced (same distributions,
same order of operations per particle); the loops fuse the dozens of array passes each
particle's kinematics took in numpy into one pass over the events, and draw their random
numbers one at a time from the file's ``numpy.random.Generator`` (numba implements its
methods on the same bit generator, so a file still depends only on its seed). Redraws
(the skim on the leading decay, tracks that cannot reach the target mass) loop per event
instead of re-running whole-array passes on the shrinking remainder.

Arithmetic is in float32, as in the numpy version (scalar float32 exp/sin/... cost a
third of the double ones); the columns are float32 (Run 3's types; the Run 2 writer
stores the same values as doubles). ``error_model="numpy"``: IEEE
results (inf/NaN) instead of Python's ZeroDivisionError, as in the numpy version.
"""

from __future__ import annotations

import math

import numba
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
    TRUTH_DS,
)

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
PI = math.pi
TWO_PI = 2 * math.pi

#: rows of :func:`leading`'s output
LEADING_KEYS = (
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
#: rows of :func:`candidates`' float32 and int32 outputs
CANDIDATE_FLOATS = (
    "mass",
    "vtx_chi2",
    "pv_ntracks",
    "flight_sig",
    "mu1_pt",
    "mu1_eta",
    "mu1_phi",
    "mu2_pt",
    "mu2_eta",
    "mu2_phi",
    "trk_pt",
    "trk_eta",
    "trk_phi",
    "mu1_refit_pt",
    "mu1_refit_eta",
    "mu1_refit_phi",
    "mu2_refit_pt",
    "mu2_refit_eta",
    "mu2_refit_phi",
    "mu1_trig_dr",
    "mu2_trig_dr",
    "pt",
    "eta",
    "phi",
)
CANDIDATE_INTS = ("mu1_idx", "mu2_idx", "trk_idx", "charge", "truth")


# -- float32 arithmetic ----------------------------------------------------------------------
# Scalar float32 exp/sin/cos/... cost a third of the double ones (no vector math library
# here); the numpy version computed in float32 too. Every constant is a float32 so that
# numba does not promote the arithmetic to float64.
F = np.float32
F0, F1, F2, HALF = F(0), F(1), F(2), F(0.5)
F_PI, F_2PI = F(PI), F(TWO_PI)
F_MU, F_PION = F(MUON_MASS), F(PION_MASS)
F_DS, F_DPLUS, F_DS_CTAU, F_DPLUS_CTAU = F(DS_MASS), F(DPLUS_MASS), F(DS_CTAU), F(DPLUS_CTAU)
F_PHI, F_PHI_HALF_WIDTH = F(PHI_MASS), F(0.5 * PHI_WIDTH)


@numba.njit(**_JIT)
def _u(rng):
    """Uniform in [0, 1), float32."""
    return F(rng.random())


@numba.njit(**_JIT)
def _u2(rng):
    """Two independent uniforms in [0, 1), float32, from one draw's 53 random bits."""
    x = rng.random() * 16777216.0  # 2^24
    high = math.floor(x)
    return F(high * 5.9604644775390625e-08), F(x - high)  # 2^-24


@numba.njit(**_JIT)
def _n(rng):
    """Standard normal, float32."""
    return F(rng.standard_normal())


@numba.njit(**_JIT)
def _e(rng):
    """Standard exponential, float32."""
    return F(rng.standard_exponential())


# -- kinematics of one particle (float32 in, float32 out) ----------------------------------
@numba.njit(**_JIT)
def _wrap(phi):
    """phi in [-pi, pi) (a loop instead of fmod: the argument is rarely far outside)."""
    while phi >= F_PI:
        phi -= F_2PI
    while phi < -F_PI:
        phi += F_2PI
    return phi


@numba.njit(**_JIT)
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


@numba.njit(**_JIT)
def _p4(pt, eta, phi, m):
    """(px, py, pz, E) from (pt, eta, phi, m), sinh/cosh through one exp."""
    ex = math.exp(eta)
    inv = F1 / ex
    p = pt * (ex + inv) * HALF
    return pt * math.cos(phi), pt * math.sin(phi), pt * (ex - inv) * HALF, math.sqrt(p * p + m * m)


@numba.njit(**_JIT)
def _ptetaphi(px, py, pz):
    pt = math.sqrt(px * px + py * py)
    return pt, math.asinh(pz / pt), math.atan2(py, px)


@numba.njit(**_JIT)
def _mass(px, py, pz, e):
    return math.sqrt(max(e * e - px * px - py * py - pz * pz, F0))


@numba.njit(**_JIT)
def _two_body(rng, px, py, pz, e, mp, m1, m2):
    """Isotropic two-body decay of (px, py, pz, e) of mass mp, boosted to the lab."""
    s, d = m1 + m2, m1 - m2
    p_star = math.sqrt(max((mp * mp - s * s) * (mp * mp - d * d), F0)) / (F2 * mp)
    cos_t = F2 * _u(rng) - F1
    sin_t = math.sqrt(F1 - cos_t * cos_t)
    ang = F_2PI * _u(rng) - F_PI
    dx = p_star * sin_t * math.cos(ang)
    dy = p_star * sin_t * math.sin(ang)
    dz = p_star * cos_t
    e1 = math.sqrt(p_star * p_star + m1 * m1)
    e2 = math.sqrt(p_star * p_star + m2 * m2)
    bx, by, bz = px / e, py / e, pz / e
    gamma = F1 / math.sqrt(F1 - (bx * bx + by * by + bz * bz))
    g2 = gamma * gamma / (F1 + gamma)  # (gamma - 1) / beta^2, stable
    bp = bx * dx + by * dy + bz * dz
    f1 = g2 * bp + gamma * e1
    f2 = gamma * e2 - g2 * bp
    return (
        dx + f1 * bx,
        dy + f1 * by,
        dz + f1 * bz,
        gamma * (e1 + bp),
        f2 * bx - dx,
        f2 * by - dy,
        f2 * bz - dz,
        gamma * (e2 - bp),
    )


# -- the leading mu mu (and pion) ------------------------------------------------------------
def leading(rng, kind, *tuning):
    """True kinematics of the leading mu mu (and pion): rows LEADING_KEYS (see _leading)."""
    out = np.empty((len(LEADING_KEYS), len(kind)), dtype=np.float32)
    _leading(rng, kind, *tuning, out)
    return out


@numba.njit(**_JIT)
def _leading(
    rng,
    kind,
    phi_fraction_background,
    random_pair_fraction,
    skim_min_pt,
    skim_muon_abseta,
    skim_track_abseta,
    skim_dimuon_lo,
    out,
):
    """True kinematics of the leading mu+ mu- (and pion for signal): rows LEADING_KEYS.

    A decay whose muons or pion fail the skim (pt > 2 GeV, |eta| < 2.4) is drawn again
    (up to 200 times, then the last draw is kept), so the kept sample is what a skim keeps.
    """
    n = len(kind)
    phi_bkg, pair_f = F(phi_fraction_background), F(random_pair_fraction)
    min_pt0 = F(skim_min_pt)
    min_pt = F(1.02 * skim_min_pt)
    mu_eta = F(skim_muon_abseta - 0.01)
    sinh_mu_eta = F(math.sinh(skim_muon_abseta - 0.01))  # |eta| < x <=> |pz| < pt sinh(x)
    sinh_trk_eta = F(math.sinh(skim_track_abseta - 0.01))
    dimuon_lo = F(skim_dimuon_lo)
    for i in range(n):
        signal = kind[i] != TRUTH_BACKGROUND
        is_ds = kind[i] == TRUTH_DS
        m_parent = F_DS if is_ds else F_DPLUS
        ctau = F_DS_CTAU if is_ds else F_DPLUS_CTAU
        for attempt in range(200):
            # the source: a D meson for signal, the dimuon itself for background
            e = _e(rng)
            pt = F(7) + F(5) * e if signal else F(5) + F(4) * e
            ue, up = _u2(rng)
            eta = F(4.2) * ue - F(2.1)
            phi = F_2PI * up - F_PI
            # dimuon mass: phi Breit-Wigner (signal, a share of background), continuum else
            u0, u1 = _u2(rng)
            u2, u3 = _u2(rng)
            if signal or u2 < phi_bkg:
                bw = F_PHI + F_PHI_HALF_WIDTH * math.tan(F_PI * (u0 - HALF))
                m_mumu = _clip(bw, F(0.85), F(1.15))
            else:
                m_mumu = min(dimuon_lo - F(0.3) * math.log1p(-u1), F(1.95))
            sx, sy, sz, se = _p4(pt, eta, phi, m_parent if signal else m_mumu)
            if signal:
                dx, dy, dz, de, qx, qy, qz, _ = _two_body(
                    rng, sx, sy, sz, se, m_parent, m_mumu, F_PION
                )
            else:
                dx, dy, dz, de = sx, sy, sz, se
                qx, qy, qz = F0, F1, F0
            ax, ay, az, _, bx, by, bz, _ = _two_body(rng, dx, dy, dz, de, m_mumu, F_MU, F_MU)
            # random pairs: the second muon from elsewhere in the event, at any angle
            random_pair = not signal and u3 < pair_f
            # the skim, first on pt and |pz| / pt (no transcendental functions), then eta
            pt1 = math.sqrt(ax * ax + ay * ay)
            pt2 = math.sqrt(bx * bx + by * by)
            pt3 = math.sqrt(qx * qx + qy * qy)
            ok = pt1 > min_pt and abs(az) < pt1 * sinh_mu_eta
            if not random_pair:
                ok = ok and pt2 > min_pt and abs(bz) < pt2 * sinh_mu_eta
            if signal:
                ok = ok and pt3 > min_pt and abs(qz) < pt3 * sinh_trk_eta
            last = attempt == 199  # practically never: keep the last draw
            if not (ok or last):
                continue
            pt1, eta1, phi1 = _ptetaphi(ax, ay, az)
            pt2, eta2, phi2 = _ptetaphi(bx, by, bz)
            pt3, eta3, phi3 = _ptetaphi(qx, qy, qz)
            if random_pair:
                pt2 = min_pt0 + F(3) * _e(rng)
                eta2 = _clip(eta1 + F(0.9) * _n(rng), F(-2.38), F(2.38))
                phi2 = _wrap(phi1 + F(0.9) * _n(rng))
                if not ((pt2 > min_pt and abs(eta2) < mu_eta) or last):
                    continue
            _, deta, dphi = _ptetaphi(dx, dy, dz)
            # lifetime: transverse flight length of the D meson (cm)
            flight = pt / m_parent * ctau * _e(rng) if signal else F0
            out[0, i], out[1, i], out[2, i] = pt1, eta1, phi1
            out[3, i], out[4, i], out[5, i] = pt2, eta2, phi2
            out[6, i], out[7, i], out[8, i] = pt3, eta3, phi3
            out[9, i], out[10, i], out[11, i] = flight, deta, dphi
            break


# -- muon collection --------------------------------------------------------------------------
def muons(rng, n_mu, lead, signal, *tuning):
    """Muon collection (see _muons): float32 rows, charge, is_global, is_pf."""
    total = int(n_mu.sum())
    out = (
        np.empty((7, total), dtype=np.float32),
        np.empty(total, dtype=np.int32),
        np.empty(total, dtype=np.bool_),
        np.empty(total, dtype=np.bool_),
    )
    _muons(rng, n_mu, lead, signal, *tuning, *out)
    return out


@numba.njit(**_JIT)
def _muons(
    rng,
    n_mu,
    lead,
    signal,
    skim_min_pt,
    skim_muon_abseta,
    pt_resolution,
    angle_resolution,
    f,
    charge,
    is_global,
    is_pf,
):
    """Muon collection: the leading pair (measured with resolution) and soft extras.

    Returns float32 rows (pt, eta, phi, true_pt, true_eta, true_phi, trig_dr), int32
    charge, bool is_global and is_pf.
    """
    pt0 = F(skim_min_pt)
    min_pt = F(skim_min_pt + 0.001)
    max_eta = F(skim_muon_abseta - 0.001)
    pt_res, ang_res = F(pt_resolution), F(angle_resolution)
    j = 0
    for i in range(len(n_mu)):
        c0 = 1
        for s in range(n_mu[i]):
            leading_muon = s < 2
            if leading_muon:
                tpt, teta, tphi = lead[3 * s, i], lead[3 * s + 1, i], lead[3 * s + 2, i]
                pt = tpt * (F1 + pt_res * _n(rng))
                eta = teta + ang_res * _n(rng)
                phi = _wrap(tphi + ang_res * _n(rng))
            else:  # extra muons: soft, near the leading dimuon
                tpt = pt0 + F(2.5) * _e(rng)
                teta = _clip(lead[10, i] + F(0.9) * _n(rng), F(-2.39), F(2.39))
                tphi = _wrap(lead[11, i] + F(0.9) * _n(rng))
                pt, eta, phi = tpt, teta, tphi
            # the skim: above 2 GeV inside the tracker (smearing may cross the edge)
            f[0, j] = max(pt, min_pt)
            f[1, j] = _clip(eta, -max_eta, max_eta)
            f[2, j] = phi
            f[3, j], f[4, j], f[5, j] = tpt, teta, tphi
            u0, u1 = _u2(rng)
            u2, u3 = _u2(rng)
            c = 1 if u0 < HALF else -1
            if s == 0:
                c0 = c
            elif s == 1:
                c = -c0
            charge[j] = c
            sig = signal[i] and leading_muon
            is_global[j] = u1 < (F(0.975) if sig else F(0.93))
            is_pf[j] = u2 < (F(0.99) if sig else F(0.97))
            matched = u3 < (F(0.94) if sig else (F(0.85) if leading_muon else F(0.45)))
            dr = abs(F(0.007) * _n(rng)) if matched else F(0.03) + F(0.97) * _u(rng)
            f[6, j] = min(dr, F1)
            j += 1


# -- track collection -------------------------------------------------------------------------
def tracks(rng, n_trk, *args):
    """Track collection (see _tracks): float32 rows and charge."""
    total = int(n_trk.sum())
    out = np.empty((8, total), dtype=np.float32), np.empty(total, dtype=np.int32)
    _tracks(rng, n_trk, *args, *out)
    return out


@numba.njit(**_JIT)
def _tracks(
    rng,
    n_trk,
    mu_offsets,
    mu,
    lead,
    signal,
    skim_mass_lo,
    skim_mass_hi,
    background_slope,
    skim_min_pt,
    skim_track_abseta,
    pt_resolution,
    angle_resolution,
    muon_track_copy,
    f,
    charge,
):
    """Track collection; ``mu`` the muons' float rows of :func:`muons`.

    Background tracks: for a momentum drawn from a falling spectrum, the opening angle to
    the leading (true) mu mu that puts (mu mu track) at a mass drawn from a linearly
    falling spectrum, the azimuth around the dimuon at random; up to three momenta, then
    a soft track around the dimuon whatever mass it makes. Signal: track 0 is the pion,
    measured with resolution. Sometimes a muon's own track sits in the collection too.
    Returns float32 rows (pt, eta, phi, true_pt, true_eta, true_phi, dz, dxy), int32 charge.
    """
    n = len(n_trk)
    pt0 = F(skim_min_pt)
    pt_try0 = F(skim_min_pt + 0.1)
    min_pt = F(skim_min_pt + 0.001)
    sinh_max_eta = F(math.sinh(skim_track_abseta - 0.05))  # |eta| < x <=> |pz| < pt sinh(x)
    pt_res, ang_res = F(pt_resolution), F(angle_resolution)
    copy_f = F(muon_track_copy)
    mpi2 = F_PION * F_PION
    a_slope = F(background_slope / 2)
    lo, width = F(skim_mass_lo), F(skim_mass_hi - skim_mass_lo)
    min_excess = F_PION + F(0.005)
    j = 0
    for i in range(n):
        m0 = mu_offsets[i]
        ax, ay, az, ae = _p4(mu[3, m0], mu[4, m0], mu[5, m0], F_MU)
        bx, by, bz, be = _p4(mu[3, m0 + 1], mu[4, m0 + 1], mu[5, m0 + 1], F_MU)
        px, py, pz, e = ax + bx, ay + by, az + bz, ae + be
        p_s = math.sqrt(px * px + py * py + pz * pz)
        m_s2 = e * e - p_s * p_s
        m_dimuon = math.sqrt(max(m_s2, F0))
        # unit vectors: n along the dimuon, u = n x z (the beam, never parallel here), v
        nx, ny, nz = px / p_s, py / p_s, pz / p_s
        norm = math.sqrt(nx * nx + ny * ny)
        ux, uy = ny / norm, -nx / norm
        vx, vy, vz = -nz * uy, nz * ux, nx * uy - ny * ux
        cosh_eta = math.cosh(lead[10, i])
        first = j
        for s in range(n_trk[i]):
            # target mass on [lo, hi] with density 1 + slope (m - lo) / (hi - lo)
            c = -_u(rng) * (F1 + a_slope)
            x = -c if a_slope == F0 else (math.sqrt(F1 - F(4) * a_slope * c) - F1) / (F2 * a_slope)
            target = lo + width * x
            done = False
            if target > m_dimuon + min_excess:
                a = (target * target - m_s2 - mpi2) * HALF
                for _ in range(3):
                    p = (pt_try0 + F(2.5) * _e(rng)) * cosh_eta
                    cos_t = (e * math.sqrt(p * p + mpi2) - a) / (p_s * p)
                    ang = F_2PI * _u(rng) - F_PI
                    if abs(cos_t) <= F1:
                        sin_t = math.sqrt(F1 - cos_t * cos_t)
                        cs, sn = math.cos(ang), math.sin(ang)
                        tx = p * (cos_t * nx + sin_t * (cs * ux + sn * vx))
                        ty = p * (cos_t * ny + sin_t * (cs * uy + sn * vy))
                        tz = p * (cos_t * nz + sin_t * sn * vz)
                        pt = math.sqrt(tx * tx + ty * ty)
                        if pt > pt0 and abs(tz) < pt * sinh_max_eta:
                            _, eta, phi = _ptetaphi(tx, ty, tz)
                            done = True
                            break
            if not done:  # a soft track around the dimuon, whatever mass it makes
                pt = pt0 + F2 * _e(rng)
                eta = _clip(lead[10, i] + HALF * _n(rng), F(-2.45), F(2.45))
                phi = _wrap(lead[11, i] + HALF * _n(rng))
            tpt, teta, tphi = pt, eta, phi
            pion = signal[i] and s == 0
            if pion:
                tpt, teta, tphi = lead[6, i], lead[7, i], lead[8, i]
                pt = tpt * (F1 + pt_res * _n(rng))
                eta = teta + ang_res * _n(rng)
                phi = _wrap(tphi + ang_res * _n(rng))
            f[0, j], f[1, j], f[2, j] = max(pt, min_pt), eta, phi
            f[3, j], f[4, j], f[5, j] = tpt, teta, tphi
            # impact parameters (cm): prompt core and tails; displaced by the decay for pions
            u0, u1 = _u2(rng)
            u2, u3 = _u2(rng)
            dz = F(4.5) * _n(rng)
            if u0 < F(0.015):
                dz = math.copysign(F(20) + F(10) * u1, dz)
            dxy = F(0.03) * _n(rng)
            if u2 < F(0.05):
                dxy = math.copysign(F(0.3) + F(1.2) * u1, dxy)
            if pion:
                dxy = F(0.01) * _n(rng) + F(0.3) * lead[9, i]
            f[6, j], f[7, j] = dz, dxy
            charge[j] = 1 if (pion or u3 < HALF) else -1
            j += 1
        # the muons' own tracks sometimes sit in the track collection too: candidates built
        # with them have dR(mu, track) = 0, which the delta_r step's lower bound removes
        k = n_trk[i]
        if k >= 2 and _u(rng) < copy_f:
            last = first + 1 + min(int(rng.random() * (k - 1)), k - 2)
            source = m0 + (1 if _u(rng) < HALF else 0)
            for r in range(3):
                f[r, last] = mu[r, source]
                f[r + 3, last] = mu[r, source]


# -- selection ---------------------------------------------------------------------------------
@numba.njit(**_JIT)
def gather(source, index, target, start):
    """target[:, start + k] = source[:, index[k]] for every row (any dtype)."""
    for r in range(source.shape[0]):
        for k in range(len(index)):
            target[r, start + k] = source[r, index[k]]


# -- candidates -------------------------------------------------------------------------------
@numba.njit(**_JIT)
def _collection_p4(pt, eta, phi, m, out):
    """(4, n) float32 four-momenta of float32 (pt, eta, phi) into ``out``."""
    for j in range(len(pt)):
        out[0, j], out[1, j], out[2, j], out[3, j] = _p4(pt[j], eta[j], phi[j], m)


@numba.njit(**_JIT)
def _true_p4(block, m, meas, out):
    """Four-momenta of the true (rows 3-5) kinematics; the measured ones where equal."""
    for j in range(block.shape[1]):
        if block[3, j] == block[0, j] and block[4, j] == block[1, j] and block[5, j] == block[2, j]:
            for r in range(4):
                out[r, j] = meas[r, j]
        else:
            out[0, j], out[1, j], out[2, j], out[3, j] = _p4(
                block[3, j], block[4, j], block[5, j], m
            )


def candidates(
    rng,
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

    Event i holds ``n_cand[i]`` combinations from ``combo_offset[i]`` on. The mass is the
    vertex-fit-like mass (truth + ``vertex_fit_keep`` of the measurement's error + fit
    noise); the skim (mass windows) drops a candidate before its costly fields are drawn.
    Returns (float32 rows CANDIDATE_FLOATS, int32 rows CANDIDATE_INTS, counts per event).

    Two passes (the skim, then the fields of the survivors), so that every large array
    is allocated by numpy at its final size: numpy asks the kernel for transparent huge
    pages, and first-touch page faults of 4 kB pages were a visible share of the time.
    """
    p4 = {}
    for key, block, m in (("mu", mu, F_MU), ("trk", trk, F_PION)):
        p4[key, "meas"] = meas = np.empty((4, block.shape[1]), dtype=np.float32)
        p4[key, "true"] = true = np.empty((4, block.shape[1]), dtype=np.float32)
        _collection_p4(block[0], block[1], block[2], m, meas)
        _true_p4(block, m, meas, true)
    n_combos_total = int(n_cand.sum())
    combo_mass = np.empty(n_combos_total, dtype=np.float32)
    combo_p3 = np.empty((3, n_combos_total), dtype=np.float32)
    combo_keep = np.empty(n_combos_total, dtype=np.bool_)
    counts = np.zeros(len(n_cand), dtype=np.int64)
    _candidate_skim(
        rng,
        n_cand,
        combo_offset,
        n_mu,
        n_trk,
        mu_offsets,
        trk_offsets,
        pairs,
        p4["mu", "meas"],
        p4["mu", "true"],
        p4["trk", "meas"],
        p4["trk", "true"],
        F(vertex_fit_keep),
        F(vertex_fit_noise),
        F(skim_mass_lo),
        F(skim_mass_hi),
        F(skim_dimuon_lo),
        F(skim_dimuon_hi),
        combo_mass,
        combo_p3,
        combo_keep,
        counts,
    )
    w = int(counts.sum())
    fo = np.empty((len(CANDIDATE_FLOATS), w), dtype=np.float32)
    io = np.empty((len(CANDIDATE_INTS), w), dtype=np.int32)
    _candidate_fields(
        rng,
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
        F(refit_fraction * pt_resolution),
        F(refit_fraction * angle_resolution),
        F(refit_failure),
        fo,
        io,
    )
    return fo, io, counts


@numba.njit(**_JIT)
def _combo(local, offset, nm, nt, pairs):
    """(combination index, muon 1, muon 2, track) of an event's ``local``-th candidate."""
    combo = (local + offset) % (nm * (nm - 1) // 2 * nt)
    pair = combo // nt
    return combo, pairs[pair, 0], pairs[pair, 1], combo - pair * nt


@numba.njit(**_JIT)
def _candidate_skim(
    rng,
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
        for local in range(n_cand[i]):
            _, i1, i2, it = _combo(local, combo_offset[i], n_mu[i], n_trk[i], pairs)
            g1, g2, gt = mu_offsets[i] + i1, mu_offsets[i] + i2, trk_offsets[i] + it
            dmx = meas_mu[0, g1] + meas_mu[0, g2]
            dmy = meas_mu[1, g1] + meas_mu[1, g2]
            dmz = meas_mu[2, g1] + meas_mu[2, g2]
            dme = meas_mu[3, g1] + meas_mu[3, g2]
            tx, ty = dmx + meas_tr[0, gt], dmy + meas_tr[1, gt]
            tz, te = dmz + meas_tr[2, gt], dme + meas_tr[3, gt]
            m_meas = _mass(tx, ty, tz, te)
            m_true = _mass(
                true_mu[0, g1] + true_mu[0, g2] + true_tr[0, gt],
                true_mu[1, g1] + true_mu[1, g2] + true_tr[1, gt],
                true_mu[2, g1] + true_mu[2, g2] + true_tr[2, gt],
                true_mu[3, g1] + true_mu[3, g2] + true_tr[3, gt],
            )
            mass = m_true + keep * (m_meas - m_true) + noise * _n(rng)
            m_dimuon = _mass(dmx, dmy, dmz, dme)
            ok = mass > mass_lo and mass < mass_hi and m_dimuon > dimuon_lo and m_dimuon < dimuon_hi
            combo_mass[c] = mass
            combo_p3[0, c], combo_p3[1, c], combo_p3[2, c] = tx, ty, tz
            combo_keep[c] = ok
            counts[i] += ok
            c += 1


@numba.njit(**_JIT)
def _candidate_fields(
    rng,
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
        pv_event = max(np.floor(F(22) + F(4.7) * _n(rng) + HALF), F2)
        for local in range(n_cand[i]):
            c += 1
            if not combo_keep[c - 1]:
                continue
            combo, i1, i2, it = _combo(local, combo_offset[i], n_mu[i], n_trk[i], pairs)
            g1, g2, gt = mu_offsets[i] + i1, mu_offsets[i] + i2, trk_offsets[i] + it
            is_true = signal[i] and combo == 0
            tpt, teta, tphi = _ptetaphi(combo_p3[0, c - 1], combo_p3[1, c - 1], combo_p3[2, c - 1])
            fo[0, w] = combo_mass[c - 1]
            # -- refitted muon tracks: the truth with a fraction of the detector resolution
            for k in range(2):
                row = 13 + 3 * k
                g = g1 if k == 0 else g2
                fo[row, w] = mu[3, g] * (F1 + refit_pt * _n(rng))
                fo[row + 1, w] = mu[4, g] + refit_angle * _n(rng)
                fo[row + 2, w] = _wrap(mu[5, g] + refit_angle * _n(rng))
            u0, u1 = _u2(rng)
            u2, u3 = _u2(rng)
            u4, u5 = _u2(rng)
            if u0 < failure:
                for row in range(13, 19):
                    fo[row, w] = -99.0
            # -- vertex quality, refitted PV, displacement --------------------------------
            e1, e2 = _e(rng), _e(rng)
            fo[1, w] = F(1.2) * e1 if is_true else F(3.2) * e1 + F(1.5) * e2
            pv = pv_event - np.floor(F(3) * u1)
            if u2 < F(0.03):
                pv = np.floor(F2 * u3)
            fo[2, w] = pv
            err = F(0.0025) + F(0.0035) * u5
            flight = flight_of_event[i] if is_true else F0
            if not is_true and u4 < F(0.60):
                flight = F(0.02) * e2
            fo[3, w] = abs(flight + _n(rng) * err) / err
            for r in range(3):
                fo[4 + r, w] = mu[r, g1]
                fo[7 + r, w] = mu[r, g2]
                fo[10 + r, w] = trk[r, gt]
            fo[19, w] = mu[6, g1]
            fo[20, w] = mu[6, g2]
            fo[21, w], fo[22, w], fo[23, w] = tpt, teta, tphi
            io[0, w], io[1, w], io[2, w] = i1, i2, it
            io[3, w] = mu_charge[g1] + mu_charge[g2] + trk_charge[gt]
            io[4, w] = kind[i] if is_true else TRUTH_BACKGROUND
            w += 1
