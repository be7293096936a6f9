"""The leading mu+ mu- of each raw event (and the pion of a signal decay): true
kinematics, drawn until they pass the skim."""

from __future__ import annotations

import math

import numpy as np

from tau3mu.config import TRUTH_BACKGROUND, TRUTH_DS
from tau3mu.synth.float32 import (
    F0,
    F1,
    F2,
    F_2PI,
    F_DPLUS,
    F_DPLUS_CTAU,
    F_DS,
    F_DS_CTAU,
    F_MU,
    F_PHI,
    F_PHI_HALF_WIDTH,
    F_PI,
    F_PION,
    HALF,
    F,
    clip,
    jit_inline,
    jit_kernel,
    p4,
    pt_eta_phi,
    sincos,
    wrap_phi,
)
from tau3mu.synth.rng import exponential, normal, uniform_pair

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


def leading(state, kind, *tuning):
    """True kinematics of the leading mu mu (and pion) of events of ``kind`` (TRUTH_*).

    ``state``: the kernels' generator (:func:`~tau3mu.synth.rng.rng_state`), advanced;
    ``tuning``: phi_fraction_background, random_pair_fraction, skim_min_pt,
    skim_muon_abseta, skim_track_abseta, skim_dimuon_lo of
    :class:`~tau3mu.synth.physics.Tuning`. Returns float32 rows LEADING_KEYS, one column
    per event.
    """
    out = np.empty((len(LEADING_KEYS), len(kind)), dtype=np.float32)
    _leading(state, kind, *tuning, out)
    return out


@jit_inline
def _two_body(s, px, py, pz, e, mp, m1, m2):
    """Isotropic two-body decay of (px, py, pz, e) of mass mp, boosted to the lab."""
    m_sum, m_diff = m1 + m2, m1 - m2
    p_star = math.sqrt(max((mp * mp - m_sum * m_sum) * (mp * mp - m_diff * m_diff), F0)) / (F2 * mp)
    u0, u1 = uniform_pair(s)
    cos_t = F2 * u0 - F1
    sin_t = math.sqrt(F1 - cos_t * cos_t)
    ang = F_2PI * u1 - F_PI
    sn, cs = sincos(ang)
    dx = p_star * sin_t * cs
    dy = p_star * sin_t * sn
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


@jit_inline
def _source(state, signal, m_parent, phi_bkg, dimuon_lo):
    """The source of the muons, a D meson for signal, the dimuon itself for background.

    Returns (pt, dimuon mass, px, py, pz, E, a uniform for the random-pair choice); the
    dimuon mass is a phi Breit-Wigner (signal, a share of background), else a continuum.
    """
    e = exponential(state)
    pt = F(7) + F(5) * e if signal else F(5) + F(4) * e
    ue, up = uniform_pair(state)
    eta = F(4.2) * ue - F(2.1)
    phi = F_2PI * up - F_PI
    u0, u1 = uniform_pair(state)
    u2, u3 = uniform_pair(state)
    if signal or u2 < phi_bkg:
        bw = F_PHI + F_PHI_HALF_WIDTH * math.tan(F_PI * (u0 - HALF))
        m_mumu = clip(bw, F(0.85), F(1.15))
    else:
        m_mumu = min(dimuon_lo - F(0.3) * math.log(F1 - u1), F(1.95))  # 1 - u1 exact
    sx, sy, sz, se = p4(pt, eta, phi, m_parent if signal else m_mumu)
    return pt, m_mumu, sx, sy, sz, se, u3


@jit_kernel
def _leading(
    state,
    kind,
    phi_fraction_background,
    random_pair_fraction,
    skim_min_pt,
    skim_muon_abseta,
    skim_track_abseta,
    skim_dimuon_lo,
    out,
):
    """True kinematics of the leading mu+ mu- (and pion for signal) into ``out``.

    A decay whose muons or pion fail the skim (pt > 2 GeV, |eta| < 2.4) is drawn again
    (up to 200 times, then the last draw is kept), so the kept sample is what a skim keeps.
    """
    phi_bkg, pair_f = F(phi_fraction_background), F(random_pair_fraction)
    min_pt0 = F(skim_min_pt)
    min_pt = F(1.02 * skim_min_pt)
    mu_eta = F(skim_muon_abseta - 0.01)
    sinh_mu_eta = F(math.sinh(skim_muon_abseta - 0.01))  # |eta| < x <=> |pz| < pt sinh(x)
    sinh_trk_eta = F(math.sinh(skim_track_abseta - 0.01))
    dimuon_lo = F(skim_dimuon_lo)
    for i in range(len(kind)):
        signal = kind[i] != TRUTH_BACKGROUND
        is_ds = kind[i] == TRUTH_DS
        m_parent = F_DS if is_ds else F_DPLUS
        ctau = F_DS_CTAU if is_ds else F_DPLUS_CTAU
        for attempt in range(200):
            pt, m_mumu, sx, sy, sz, se, u3 = _source(state, signal, m_parent, phi_bkg, dimuon_lo)
            if signal:
                dx, dy, dz, de, qx, qy, qz, _ = _two_body(
                    state, sx, sy, sz, se, m_parent, m_mumu, F_PION
                )
            else:
                dx, dy, dz, de = sx, sy, sz, se
                qx, qy, qz = F0, F1, F0
            ax, ay, az, _, bx, by, bz, _ = _two_body(state, dx, dy, dz, de, m_mumu, F_MU, F_MU)
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
            pt1, eta1, phi1 = pt_eta_phi(ax, ay, az)
            pt2, eta2, phi2 = pt_eta_phi(bx, by, bz)
            pt3, eta3, phi3 = pt_eta_phi(qx, qy, qz)
            if random_pair:
                pt2 = min_pt0 + F(3) * exponential(state)
                eta2 = clip(eta1 + F(0.9) * normal(state), F(-2.38), F(2.38))
                phi2 = wrap_phi(phi1 + F(0.9) * normal(state))
                if not ((pt2 > min_pt and abs(eta2) < mu_eta) or last):
                    continue
            _, deta, dphi = pt_eta_phi(dx, dy, dz)
            # lifetime: transverse flight length of the D meson (cm)
            flight = pt / m_parent * ctau * exponential(state) if signal else F0
            out[0, i], out[1, i], out[2, i] = pt1, eta1, phi1
            out[3, i], out[4, i], out[5, i] = pt2, eta2, phi2
            out[6, i], out[7, i], out[8, i] = pt3, eta3, phi3
            out[9, i], out[10, i], out[11, i] = flight, deta, dphi
            break


__all__ = ["LEADING_KEYS", "leading"]
