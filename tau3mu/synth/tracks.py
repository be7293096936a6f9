"""The track collection of each raw event: background tracks that make (mu mu track)
masses of a falling spectrum, the pion of a signal decay, and copies of muon tracks."""

from __future__ import annotations

import math

import numpy as np

from tau3mu.synth.float32 import (
    F0,
    F1,
    F2,
    F_2PI,
    F_MU,
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
from tau3mu.synth.rng import exponential, normal, uniform, uniform_pair

#: float rows of :func:`tracks`' first output
TRACK_ROWS = ("pt", "eta", "phi", "true_pt", "true_eta", "true_phi", "dz", "dxy")


def tracks(state, n_trk, *args):
    """Track collection of events with ``n_trk`` tracks around their leading dimuon.

    ``state``: the kernels' generator, advanced; ``args``: mu_offsets, mu (the float rows
    of :func:`~tau3mu.synth.muons.muons`), lead (:func:`~tau3mu.synth.leading.leading`),
    signal (per event), then skim_mass_lo, skim_mass_hi, background_slope, skim_min_pt,
    skim_track_abseta, pt_resolution, angle_resolution, muon_track_copy of
    :class:`~tau3mu.synth.physics.Tuning`. Returns (float32 rows TRACK_ROWS, int32
    charge), one column per track, events one after the other.
    """
    total = int(n_trk.sum())
    out = np.empty((len(TRACK_ROWS), total), dtype=np.float32), np.empty(total, dtype=np.int32)
    _tracks(state, n_trk, *args, *out)
    return out


@jit_inline
def _dimuon_frame(mu, m0):
    """The event's measured leading dimuon (muons ``m0``, ``m0 + 1``): (E, |p|, m^2, m)
    and the frame (n along it, u = n x z with z the beam, never parallel here, v = n x u)
    as (nx, ny, nz, ux, uy, vx, vy, vz)."""
    ax, ay, az, ae = p4(mu[3, m0], mu[4, m0], mu[5, m0], F_MU)
    bx, by, bz, be = p4(mu[3, m0 + 1], mu[4, m0 + 1], mu[5, m0 + 1], F_MU)
    px, py, pz, e = ax + bx, ay + by, az + bz, ae + be
    p_s = math.sqrt(px * px + py * py + pz * pz)
    m_s2 = e * e - p_s * p_s
    m_dimuon = math.sqrt(max(m_s2, F0))
    nx, ny, nz = px / p_s, py / p_s, pz / p_s
    norm = math.sqrt(nx * nx + ny * ny)
    ux, uy = ny / norm, -nx / norm
    vx, vy, vz = -nz * uy, nz * ux, nx * uy - ny * ux
    return (e, p_s, m_s2, m_dimuon), (nx, ny, nz, ux, uy, vx, vy, vz)


@jit_inline
def _target_mass(state, lo, width, a_slope):
    """A mass on [lo, lo + width] with density 1 + 2 a_slope (m - lo) / width."""
    c = -uniform(state) * (F1 + a_slope)
    x = -c if a_slope == F0 else (math.sqrt(F1 - F(4) * a_slope * c) - F1) / (F2 * a_slope)
    return lo + width * x


@jit_inline
def _background_track(state, dimuon, frame, near, spectrum, cuts):
    """(pt, eta, phi) of a background track around the dimuon.

    For a momentum drawn from a falling spectrum, the opening angle to the dimuon that
    puts (mu mu track) at a mass drawn by :func:`_target_mass`, the azimuth around the
    dimuon at random; up to three momenta, then a soft track whatever mass it makes.
    ``dimuon``, ``frame``: of :func:`_dimuon_frame`; ``near``: (eta, phi, cosh eta) of
    the leading true dimuon; ``spectrum``: (lo, width, a_slope); ``cuts``: (skim pt,
    first pt of the spectrum, sinh of the largest |eta|).
    """
    e, p_s, m_s2, m_dimuon = dimuon
    nx, ny, nz, ux, uy, vx, vy, vz = frame
    near_eta, near_phi, cosh_eta = near
    pt0, pt_try0, sinh_max_eta = cuts
    mpi2 = F_PION * F_PION
    target = _target_mass(state, spectrum[0], spectrum[1], spectrum[2])
    if target > m_dimuon + (F_PION + F(0.005)):
        a = (target * target - m_s2 - mpi2) * HALF
        for _ in range(3):
            p = (pt_try0 + F(2.5) * exponential(state)) * cosh_eta
            cos_t = (e * math.sqrt(p * p + mpi2) - a) / (p_s * p)
            ang = F_2PI * uniform(state) - F_PI
            if abs(cos_t) <= F1:
                sin_t = math.sqrt(F1 - cos_t * cos_t)
                sn, cs = sincos(ang)
                tx = p * (cos_t * nx + sin_t * (cs * ux + sn * vx))
                ty = p * (cos_t * ny + sin_t * (cs * uy + sn * vy))
                tz = p * (cos_t * nz + sin_t * sn * vz)
                pt = math.sqrt(tx * tx + ty * ty)
                if pt > pt0 and abs(tz) < pt * sinh_max_eta:
                    _, eta, phi = pt_eta_phi(tx, ty, tz)
                    return pt, eta, phi
    pt = pt0 + F2 * exponential(state)
    eta = clip(near_eta + HALF * normal(state), F(-2.45), F(2.45))
    phi = wrap_phi(near_phi + HALF * normal(state))
    return pt, eta, phi


@jit_inline
def _impact_parameters(state, pion, flight):
    """(dz, dxy) in cm, a prompt core with tails, dxy displaced by the decay's transverse
    ``flight`` for the pion; and a uniform for the charge."""
    u0, u1 = uniform_pair(state)
    u2, u3 = uniform_pair(state)
    dz = F(4.5) * normal(state)
    if u0 < F(0.015):
        dz = math.copysign(F(20) + F(10) * u1, dz)
    dxy = F(0.03) * normal(state)
    if u2 < F(0.05):
        dxy = math.copysign(F(0.3) + F(1.2) * u1, dxy)
    if pion:
        dxy = F(0.01) * normal(state) + F(0.3) * flight
    return dz, dxy, u3


@jit_inline
def _copy_muon_track(state, f, first, k, m0, mu, copy_f):
    """With probability ``copy_f`` (events of ``k`` >= 2 tracks from column ``first``), one
    of the leading muons' tracks replaces a track other than the first: candidates built
    with it have dR(mu, track) = 0, which the delta_r step's lower bound removes."""
    if k >= 2 and uniform(state) < copy_f:
        last = first + 1 + min(int(uniform(state) * F(k - 1)), k - 2)
        source = m0 + (1 if uniform(state) < HALF else 0)
        for r in range(3):
            f[r, last] = mu[r, source]
            f[r + 3, last] = mu[r, source]


@jit_kernel
def _tracks(
    state,
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
    """Track collection into ``f`` (rows TRACK_ROWS) and ``charge``: background tracks
    (:func:`_background_track`); for signal, track 0 is the pion, measured with
    resolution; sometimes a muon's own track (:func:`_copy_muon_track`)."""
    cuts = (F(skim_min_pt), F(skim_min_pt + 0.1), F(math.sinh(skim_track_abseta - 0.05)))
    min_pt = F(skim_min_pt + 0.001)
    pt_res, ang_res = F(pt_resolution), F(angle_resolution)
    spectrum = (F(skim_mass_lo), F(skim_mass_hi - skim_mass_lo), F(background_slope / 2))
    j = 0
    for i in range(len(n_trk)):
        m0 = mu_offsets[i]
        dimuon, frame = _dimuon_frame(mu, m0)
        near = (lead[10, i], lead[11, i], math.cosh(lead[10, i]))
        first = j
        for s in range(n_trk[i]):
            pt, eta, phi = _background_track(state, dimuon, frame, near, spectrum, cuts)
            tpt, teta, tphi = pt, eta, phi
            pion = signal[i] and s == 0
            if pion:
                tpt, teta, tphi = lead[6, i], lead[7, i], lead[8, i]
                pt = tpt * (F1 + pt_res * normal(state))
                eta = teta + ang_res * normal(state)
                phi = wrap_phi(tphi + ang_res * normal(state))
            f[0, j], f[1, j], f[2, j] = max(pt, min_pt), eta, phi
            f[3, j], f[4, j], f[5, j] = tpt, teta, tphi
            dz, dxy, u_charge = _impact_parameters(state, pion, lead[9, i])
            f[6, j], f[7, j] = dz, dxy
            charge[j] = 1 if (pion or u_charge < HALF) else -1
            j += 1
        _copy_muon_track(state, f, first, n_trk[i], m0, mu, F(muon_track_copy))


__all__ = ["TRACK_ROWS", "tracks"]
