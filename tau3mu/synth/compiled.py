"""Compiled (numba) per-event loops of the simulation in :mod:`tau3mu.synth.physics`.

The physics is that of the vectorised numpy version this replaced (same distributions,
same order of operations per particle); the loops fuse the dozens of array passes each
particle's kinematics took in numpy into one pass over the events. Redraws (the skim on
the leading decay, tracks that cannot reach the target mass) loop per event instead of
re-running whole-array passes on the shrinking remainder.

Speed: random numbers come from an inline xoshiro256++ generator seeded from the file's
``numpy.random.Generator`` (so a file still depends only on its seed), normals from a
ziggurat; atan2, asinh, sin and cos, whose libm float32 versions cost 10-30 ns a call
here, are short polynomials or a single log. The small helpers are inlined by numba
(``inline="always"``): left to LLVM they stayed calls, which cost more than their work.

Arithmetic is in float32, as in the numpy version (scalar float32 exp/log/... cost a
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
#: the candidate columns, in the order of :class:`~tau3mu.synth.physics.SyntheticEvents`'
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


# -- random numbers: xoshiro256++ inline ---------------------------------------------------
# numba's Generator methods cost 7-10 ns a draw (a call through the bit generator's function
# pointer each time); the kernels draw ~110 numbers per raw event. xoshiro256++ (Blackman &
# Vigna), its state a uint64[4] seeded from the file's numpy Generator, inlines into the
# loops: ~1.3 ns a uniform, ~4 ns a normal (ziggurat), so a file still depends only on
# its seed. ``inline="always"`` (numba IR inlining) on the draws and small helpers: left
# to LLVM, they stay calls, and each call costs more than the arithmetic.
_INLINE = {**_JIT, "inline": "always"}
U64 = np.uint64


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """A xoshiro256++ state (uint64[4], never all zero) drawn from ``rng``."""
    state = rng.bit_generator.random_raw(4).astype(np.uint64)
    state[0] |= np.uint64(1)
    return state


@numba.njit(**_INLINE)
def _next(s):
    """The next 64 random bits; advances the state ``s`` in place."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    x = s0 + s3
    out = ((x << U64(23)) | (x >> U64(41))) + s0
    t = s1 << U64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s[0], s[1], s[2], s[3] = s0, s1, s2, (s3 << U64(45)) | (s3 >> U64(19))
    return out


@numba.njit(**_INLINE)
def _u(s):
    """Uniform in [0, 1), float32 (24 random bits)."""
    return np.float32(_next(s) >> U64(40)) * np.float32(2.0**-24)


@numba.njit(**_INLINE)
def _u2(s):
    """Two independent uniforms in [0, 1), float32, from one draw's 48 random bits."""
    x = _next(s)
    scale = np.float32(2.0**-24)
    return np.float32(x >> U64(40)) * scale, np.float32((x >> U64(16)) & U64(0xFFFFFF)) * scale


@numba.njit(**_INLINE)
def _e(s):
    """Standard exponential, float32: -log of a uniform in (0, 1) of 32 bits (max 22.9)."""
    u = np.float32((np.int64(_next(s) >> U64(32)) + 0.5) * 2.0**-32)
    return -math.log(u)


def _ziggurat(layers: int = 256, r: float = 3.6541528853610088, v: float = 0.00492867323399):
    """Tables of the normal ziggurat (Marsaglia & Tsang 2000) with ``layers`` layers.

    x[0] = v / f(r) is the base layer's virtual width, x[1] = r, x[layers] = 0, each layer
    of area v under f(x) = exp(-x^2 / 2). Returns (int64 acceptance thresholds of a 24-bit
    |j|: j < x[i+1] / x[i] 2^24, float32 x[i] 2^-24, float32 f(x[i])).
    """
    x = np.zeros(layers + 1)
    x[0], x[1] = v / math.exp(-0.5 * r * r), r
    for i in range(1, layers - 1):
        x[i + 1] = math.sqrt(-2 * math.log(math.exp(-0.5 * x[i] ** 2) + v / x[i]))
    threshold = np.floor(x[1:] / x[:-1] * 2**24).astype(np.int64)
    return threshold, (x[:-1] * 2.0**-24).astype(np.float32), np.exp(-0.5 * x * x).astype(F)


_ZIG_K, _ZIG_W, _ZIG_F = _ziggurat()
_ZIG_R = F(3.6541528853610088)


@numba.njit(**_INLINE)
def _n(s):
    """Standard normal, float32: ziggurat of 256 layers on one 64-bit draw (layer from the
    low 8 bits, a signed 25-bit abscissa from the high bits), ~98.5 % in the fast path."""
    while True:
        x = _next(s)
        i = np.int64(x & U64(0xFF))
        j = np.int64(x >> U64(39)) - 16777216
        z = F(j) * _ZIG_W[i]
        if abs(j) < _ZIG_K[i]:
            return z
        if i == 0:  # the tail beyond r (Marsaglia 1964)
            while True:
                a = _e(s) / _ZIG_R
                if a * a < F2 * _e(s):
                    return -(_ZIG_R + a) if j < 0 else _ZIG_R + a
        if _ZIG_F[i] + _u(s) * (_ZIG_F[i + 1] - _ZIG_F[i]) < math.exp(-HALF * z * z):
            return z


# -- kinematics of one particle (float32 in, float32 out) ----------------------------------
#: sin and cos on [-pi/4, pi/4] (Cephes' sinf/cosf minimax polynomials)
_S1, _S2, _S3 = F(-1.6666654611e-1), F(8.3321608736e-3), F(-1.9515295891e-4)
_C1, _C2, _C3 = F(4.166664568298827e-2), F(-1.388731625493765e-3), F(2.443315711809948e-5)


@numba.njit(**_INLINE)
def _sincos(x):
    """(sin x, cos x) in float32 for moderate |x| (angles here are within [-pi, pi]): one
    reduction by pi/2 in double precision, two short polynomials; ~4 ns for both instead
    of ~20 for sinf and cosf, |error| < 1e-7."""
    k = round(x * (2 / PI))
    r = F(np.float64(x) - k * (PI / 2))
    z = r * r
    s = r + r * z * ((_S3 * z + _S2) * z + _S1)
    c = F1 - HALF * z + z * z * ((_C3 * z + _C2) * z + _C1)
    q = int(k) & 3
    if q == 0:
        return s, c
    if q == 1:
        return c, -s
    if q == 2:
        return -s, -c
    return -c, s


#: atan(a) = a P(a^2) on [0, 1], |error| < 1.3e-7 in float32 (a least-squares fit
#: reweighted towards minimax, on Chebyshev nodes); glibc's atan2f costs ~28 ns here
_A0, _A1, _A2, _A3, _A4, _A5, _A6, _A7 = (
    F(c)
    for c in (
        0.9999993355721545,
        -0.3332986075920127,
        0.1994656535915976,
        -0.1390862806451878,
        0.0964219347415585,
        -0.055912273478258986,
        0.021862920492800156,
        -0.004054556758302019,
    )
)
F_HALF_PI = F(0.5 * PI)


@numba.njit(**_INLINE)
def _atan2(y, x):
    """atan2 in float32 by a polynomial on the octant (~5 ns instead of ~28 for atan2f)."""
    ax, ay = abs(x), abs(y)
    hi = max(ax, ay)
    a = min(ax, ay) / hi if hi > F0 else F0
    s = a * a
    p = ((((((_A7 * s + _A6) * s + _A5) * s + _A4) * s + _A3) * s + _A2) * s + _A1) * s + _A0
    r = p * a
    if ay > ax:
        r = F_HALF_PI - r
    if x < F0:
        r = F_PI - r
    return -r if y < F0 else r


@numba.njit(**_INLINE)
def _wrap(phi):
    """phi in [-pi, pi) (a loop instead of fmod: the argument is rarely far outside)."""
    while phi >= F_PI:
        phi -= F_2PI
    while phi < -F_PI:
        phi += F_2PI
    return phi


@numba.njit(**_INLINE)
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


@numba.njit(**_INLINE)
def _p4(pt, eta, phi, m):
    """(px, py, pz, E) from (pt, eta, phi, m), sinh/cosh through one exp."""
    ex = math.exp(eta)
    inv = F1 / ex
    p = pt * (ex + inv) * HALF
    sn, cs = _sincos(phi)
    return pt * cs, pt * sn, pt * (ex - inv) * HALF, math.sqrt(p * p + m * m)


@numba.njit(**_INLINE)
def _ptetaphi(px, py, pz):
    """(pt, eta, phi); eta = asinh(pz / pt) = sign(pz) log((|pz| + p) / pt), no cancellation
    (asinhf costs ~32 ns here, log1pf ~25, logf ~7); absolute error ~1e-7."""
    pt2 = px * px + py * py
    pt = math.sqrt(pt2)
    eta = math.log((abs(pz) + math.sqrt(pt2 + pz * pz)) / pt)
    return pt, math.copysign(eta, pz), _atan2(py, px)


@numba.njit(**_INLINE)
def _mass(px, py, pz, e):
    return math.sqrt(max(e * e - px * px - py * py - pz * pz, F0))


@numba.njit(**_INLINE)
def _two_body(s, px, py, pz, e, mp, m1, m2):
    """Isotropic two-body decay of (px, py, pz, e) of mass mp, boosted to the lab."""
    m_sum, m_diff = m1 + m2, m1 - m2
    p_star = math.sqrt(max((mp * mp - m_sum * m_sum) * (mp * mp - m_diff * m_diff), F0)) / (F2 * mp)
    u0, u1 = _u2(s)
    cos_t = F2 * u0 - F1
    sin_t = math.sqrt(F1 - cos_t * cos_t)
    ang = F_2PI * u1 - F_PI
    sn, cs = _sincos(ang)
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


# -- the leading mu mu (and pion) ------------------------------------------------------------
def leading(state, kind, *tuning):
    """True kinematics of the leading mu mu (and pion): rows LEADING_KEYS (see _leading)."""
    out = np.empty((len(LEADING_KEYS), len(kind)), dtype=np.float32)
    _leading(state, kind, *tuning, out)
    return out


@numba.njit(**_JIT)
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
            e = _e(state)
            pt = F(7) + F(5) * e if signal else F(5) + F(4) * e
            ue, up = _u2(state)
            eta = F(4.2) * ue - F(2.1)
            phi = F_2PI * up - F_PI
            # dimuon mass: phi Breit-Wigner (signal, a share of background), continuum else
            u0, u1 = _u2(state)
            u2, u3 = _u2(state)
            if signal or u2 < phi_bkg:
                bw = F_PHI + F_PHI_HALF_WIDTH * math.tan(F_PI * (u0 - HALF))
                m_mumu = _clip(bw, F(0.85), F(1.15))
            else:
                m_mumu = min(dimuon_lo - F(0.3) * math.log(F1 - u1), F(1.95))  # 1 - u1 exact
            sx, sy, sz, se = _p4(pt, eta, phi, m_parent if signal else m_mumu)
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
            pt1, eta1, phi1 = _ptetaphi(ax, ay, az)
            pt2, eta2, phi2 = _ptetaphi(bx, by, bz)
            pt3, eta3, phi3 = _ptetaphi(qx, qy, qz)
            if random_pair:
                pt2 = min_pt0 + F(3) * _e(state)
                eta2 = _clip(eta1 + F(0.9) * _n(state), F(-2.38), F(2.38))
                phi2 = _wrap(phi1 + F(0.9) * _n(state))
                if not ((pt2 > min_pt and abs(eta2) < mu_eta) or last):
                    continue
            _, deta, dphi = _ptetaphi(dx, dy, dz)
            # lifetime: transverse flight length of the D meson (cm)
            flight = pt / m_parent * ctau * _e(state) if signal else F0
            out[0, i], out[1, i], out[2, i] = pt1, eta1, phi1
            out[3, i], out[4, i], out[5, i] = pt2, eta2, phi2
            out[6, i], out[7, i], out[8, i] = pt3, eta3, phi3
            out[9, i], out[10, i], out[11, i] = flight, deta, dphi
            break


# -- muon collection --------------------------------------------------------------------------
def muons(state, n_mu, lead, signal, *tuning):
    """Muon collection (see _muons): float32 rows, charge, is_global, is_pf."""
    total = int(n_mu.sum())
    out = (
        np.empty((7, total), dtype=np.float32),
        np.empty(total, dtype=np.int32),
        np.empty(total, dtype=np.bool_),
        np.empty(total, dtype=np.bool_),
    )
    _muons(state, n_mu, lead, signal, *tuning, *out)
    return out


@numba.njit(**_JIT)
def _muons(
    state,
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
                pt = tpt * (F1 + pt_res * _n(state))
                eta = teta + ang_res * _n(state)
                phi = _wrap(tphi + ang_res * _n(state))
            else:  # extra muons: soft, near the leading dimuon
                tpt = pt0 + F(2.5) * _e(state)
                teta = _clip(lead[10, i] + F(0.9) * _n(state), F(-2.39), F(2.39))
                tphi = _wrap(lead[11, i] + F(0.9) * _n(state))
                pt, eta, phi = tpt, teta, tphi
            # the skim: above 2 GeV inside the tracker (smearing may cross the edge)
            f[0, j] = max(pt, min_pt)
            f[1, j] = _clip(eta, -max_eta, max_eta)
            f[2, j] = phi
            f[3, j], f[4, j], f[5, j] = tpt, teta, tphi
            u0, u1 = _u2(state)
            u2, u3 = _u2(state)
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
            dr = abs(F(0.007) * _n(state)) if matched else F(0.03) + F(0.97) * _u(state)
            f[6, j] = min(dr, F1)
            j += 1


# -- track collection -------------------------------------------------------------------------
def tracks(state, n_trk, *args):
    """Track collection (see _tracks): float32 rows and charge."""
    total = int(n_trk.sum())
    out = np.empty((8, total), dtype=np.float32), np.empty(total, dtype=np.int32)
    _tracks(state, n_trk, *args, *out)
    return out


@numba.njit(**_JIT)
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
            c = -_u(state) * (F1 + a_slope)
            x = -c if a_slope == F0 else (math.sqrt(F1 - F(4) * a_slope * c) - F1) / (F2 * a_slope)
            target = lo + width * x
            done = False
            if target > m_dimuon + min_excess:
                a = (target * target - m_s2 - mpi2) * HALF
                for _ in range(3):
                    p = (pt_try0 + F(2.5) * _e(state)) * cosh_eta
                    cos_t = (e * math.sqrt(p * p + mpi2) - a) / (p_s * p)
                    ang = F_2PI * _u(state) - F_PI
                    if abs(cos_t) <= F1:
                        sin_t = math.sqrt(F1 - cos_t * cos_t)
                        sn, cs = _sincos(ang)
                        tx = p * (cos_t * nx + sin_t * (cs * ux + sn * vx))
                        ty = p * (cos_t * ny + sin_t * (cs * uy + sn * vy))
                        tz = p * (cos_t * nz + sin_t * sn * vz)
                        pt = math.sqrt(tx * tx + ty * ty)
                        if pt > pt0 and abs(tz) < pt * sinh_max_eta:
                            _, eta, phi = _ptetaphi(tx, ty, tz)
                            done = True
                            break
            if not done:  # a soft track around the dimuon, whatever mass it makes
                pt = pt0 + F2 * _e(state)
                eta = _clip(lead[10, i] + HALF * _n(state), F(-2.45), F(2.45))
                phi = _wrap(lead[11, i] + HALF * _n(state))
            tpt, teta, tphi = pt, eta, phi
            pion = signal[i] and s == 0
            if pion:
                tpt, teta, tphi = lead[6, i], lead[7, i], lead[8, i]
                pt = tpt * (F1 + pt_res * _n(state))
                eta = teta + ang_res * _n(state)
                phi = _wrap(tphi + ang_res * _n(state))
            f[0, j], f[1, j], f[2, j] = max(pt, min_pt), eta, phi
            f[3, j], f[4, j], f[5, j] = tpt, teta, tphi
            # impact parameters (cm): prompt core and tails; displaced by the decay for pions
            u0, u1 = _u2(state)
            u2, u3 = _u2(state)
            dz = F(4.5) * _n(state)
            if u0 < F(0.015):
                dz = math.copysign(F(20) + F(10) * u1, dz)
            dxy = F(0.03) * _n(state)
            if u2 < F(0.05):
                dxy = math.copysign(F(0.3) + F(1.2) * u1, dxy)
            if pion:
                dxy = F(0.01) * _n(state) + F(0.3) * lead[9, i]
            f[6, j], f[7, j] = dz, dxy
            charge[j] = 1 if (pion or u3 < HALF) else -1
            j += 1
        # the muons' own tracks sometimes sit in the track collection too: candidates built
        # with them have dR(mu, track) = 0, which the delta_r step's lower bound removes
        k = n_trk[i]
        if k >= 2 and _u(state) < copy_f:
            last = first + 1 + min(int(_u(state) * F(k - 1)), k - 2)
            source = m0 + (1 if _u(state) < HALF else 0)
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
        state,
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
        F(refit_fraction * pt_resolution),
        F(refit_fraction * angle_resolution),
        F(refit_failure),
        fo,
        io,
    )
    return fo, io, counts


@numba.njit(**_INLINE)
def _first_combo(offset, nm, nt):
    """(combination, pair, track, number of combinations) of an event's first candidate.

    Combination k of an event is (pair k // nt, track k % nt); an event's candidates are
    the consecutive combinations from ``offset`` on, wrapping around (see _next_combo).
    """
    n_combos = nm * (nm - 1) // 2 * nt
    combo = offset % n_combos
    pair = combo // nt
    return combo, pair, combo - pair * nt, n_combos


@numba.njit(**_INLINE)
def _next_combo(combo, pair, track, nt, n_combos):
    """The combination after ``combo``, without integer divisions (they cost ~15 ns each)."""
    combo += 1
    track += 1
    if track == nt:
        track = 0
        pair += 1
    if combo == n_combos:
        combo, pair, track = 0, 0, 0
    return combo, pair, track


@numba.njit(**_JIT)
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
            m_meas = _mass(tx, ty, tz, te)
            m_true = _mass(
                true_mu[0, g1] + true_mu[0, g2] + true_tr[0, gt],
                true_mu[1, g1] + true_mu[1, g2] + true_tr[1, gt],
                true_mu[2, g1] + true_mu[2, g2] + true_tr[2, gt],
                true_mu[3, g1] + true_mu[3, g2] + true_tr[3, gt],
            )
            mass = m_true + keep * (m_meas - m_true) + noise * _n(state)
            m_dimuon = _mass(dmx, dmy, dmz, dme)
            ok = mass > mass_lo and mass < mass_hi and m_dimuon > dimuon_lo and m_dimuon < dimuon_hi
            combo_mass[c] = mass
            combo_p3[0, c], combo_p3[1, c], combo_p3[2, c] = tx, ty, tz
            combo_keep[c] = ok
            counts[i] += ok
            c += 1


@numba.njit(**_JIT)
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
        pv_event = max(np.floor(F(22) + F(4.7) * _n(state) + HALF), F2)
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
            tpt, teta, tphi = _ptetaphi(combo_p3[0, c - 1], combo_p3[1, c - 1], combo_p3[2, c - 1])
            fo[_R_MASS, w] = combo_mass[c - 1]
            # -- refitted muon tracks: the truth with a fraction of the detector resolution
            for k in range(2):
                row = _R_REFIT + 3 * k
                g = g1 if k == 0 else g2
                fo[row, w] = mu[3, g] * (F1 + refit_pt * _n(state))
                fo[row + 1, w] = mu[4, g] + refit_angle * _n(state)
                fo[row + 2, w] = _wrap(mu[5, g] + refit_angle * _n(state))
            u0, u1 = _u2(state)
            u2, u3 = _u2(state)
            u4, u5 = _u2(state)
            if u0 < failure:
                for row in range(_R_REFIT, _R_REFIT + 6):
                    fo[row, w] = -99.0
            # -- vertex quality, refitted PV, displacement --------------------------------
            e1, e2 = _e(state), _e(state)
            fo[_R_MASS + 1, w] = F(1.2) * e1 if is_true else F(3.2) * e1 + F(1.5) * e2
            pv = pv_event - np.floor(F(3) * u1)
            if u2 < F(0.03):
                pv = np.floor(F2 * u3)
            fo[_R_MASS + 2, w] = pv
            err = F(0.0025) + F(0.0035) * u5
            flight = flight_of_event[i] if is_true else F0
            if not is_true and u4 < F(0.60):
                flight = F(0.02) * e2
            fo[_R_MASS + 3, w] = abs(flight + _n(state) * err) / err
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
