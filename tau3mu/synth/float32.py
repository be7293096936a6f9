"""Float32 arithmetic for the generator's numba kernels: compile options, constants and
the kinematics of one particle.

Arithmetic is in float32 (scalar float32 exp/log/... are cheaper than the double ones);
every constant is a float32 so that numba does not promote the arithmetic to float64.
atan2, asinh, sin and cos are short polynomials or a single log, cheaper than libm's
float32 versions. The helpers are inlined into the kernels by numba
(``inline="always"``): left to LLVM they stay calls, which cost more than their work. ``error_model="numpy"``: IEEE results (inf/NaN) instead
of Python's ZeroDivisionError.
"""

from __future__ import annotations

import math
from typing import Any

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
)

#: decorator of the kernels: numba, cached on disk, no GIL, IEEE division (typed Any:
#: the kernels take numpy arrays and scalars that numba, not mypy, checks)
jit_kernel: Any = numba.njit(cache=True, nogil=True, error_model="numpy")
#: decorator of the small helpers, inlined into the kernels at numba's IR level
jit_inline: Any = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
PI = math.pi
TWO_PI = 2 * math.pi

F = np.float32
F0, F1, F2, HALF = F(0), F(1), F(2), F(0.5)
F_PI, F_2PI = F(PI), F(TWO_PI)
F_MU, F_PION = F(MUON_MASS), F(PION_MASS)
F_DS, F_DPLUS, F_DS_CTAU, F_DPLUS_CTAU = F(DS_MASS), F(DPLUS_MASS), F(DS_CTAU), F(DPLUS_CTAU)
F_PHI, F_PHI_HALF_WIDTH = F(PHI_MASS), F(0.5 * PHI_WIDTH)

# -- kinematics of one particle (float32 in, float32 out) ----------------------------------
#: sin and cos on [-pi/4, pi/4] (Cephes' sinf/cosf minimax polynomials)
_S1, _S2, _S3 = F(-1.6666654611e-1), F(8.3321608736e-3), F(-1.9515295891e-4)
_C1, _C2, _C3 = F(4.166664568298827e-2), F(-1.388731625493765e-3), F(2.443315711809948e-5)


@jit_inline
def sincos(x):
    """(sin x, cos x) in float32 for moderate |x| (angles here are within [-pi, pi]): one
    reduction by pi/2 in double precision, two short polynomials; |error| < 1e-7."""
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
#: reweighted towards minimax, on Chebyshev nodes)
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


@jit_inline
def atan2(y, x):
    """atan2 in float32 by a polynomial on the octant (instead of libm's atan2f)."""
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


@jit_inline
def wrap_phi(phi):
    """phi in [-pi, pi) (a loop instead of fmod: the argument is rarely far outside)."""
    while phi >= F_PI:
        phi -= F_2PI
    while phi < -F_PI:
        phi += F_2PI
    return phi


@jit_inline
def clip(x, lo, hi):
    """x limited to [lo, hi]."""
    return min(max(x, lo), hi)


@jit_inline
def p4(pt, eta, phi, m):
    """(px, py, pz, E) from (pt, eta, phi, m), sinh/cosh through one exp."""
    ex = math.exp(eta)
    inv = F1 / ex
    p = pt * (ex + inv) * HALF
    sn, cs = sincos(phi)
    return pt * cs, pt * sn, pt * (ex - inv) * HALF, math.sqrt(p * p + m * m)


@jit_inline
def pt_eta_phi(px, py, pz):
    """(pt, eta, phi); eta = asinh(pz / pt) = sign(pz) log((|pz| + p) / pt), no cancellation
    (one logf instead of asinhf); absolute error ~1e-7."""
    pt2 = px * px + py * py
    pt = math.sqrt(pt2)
    eta = math.log((abs(pz) + math.sqrt(pt2 + pz * pz)) / pt)
    return pt, math.copysign(eta, pz), atan2(py, px)


@jit_inline
def invariant_mass(px, py, pz, e):
    """Invariant mass of (px, py, pz, e), 0 where the square is negative."""
    return math.sqrt(max(e * e - px * px - py * py - pz * pz, F0))


__all__ = [
    "F0",
    "F1",
    "F2",
    "F_2PI",
    "F_DPLUS",
    "F_DPLUS_CTAU",
    "F_DS",
    "F_DS_CTAU",
    "F_HALF_PI",
    "F_MU",
    "F_PHI",
    "F_PHI_HALF_WIDTH",
    "F_PI",
    "F_PION",
    "HALF",
    "PI",
    "TWO_PI",
    "F",
    "atan2",
    "clip",
    "invariant_mass",
    "jit_inline",
    "jit_kernel",
    "p4",
    "pt_eta_phi",
    "sincos",
    "wrap_phi",
]
