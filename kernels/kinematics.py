"""Per-candidate two-body kinematics fused into one pass: pair mass and delta R.

Written with awkward ufuncs the pair mass is ~30 array operations, each a full pass
over the candidates with its own temporary; fused, it is about 2x faster (700k
candidates: 70 ms against 135 ms; the transcendental functions dominate), delta R
about 3x (8 ms against 23 ms), with bit-identical results. Both take one-level
jagged arrays of the same structure and compute in float64.
"""

from __future__ import annotations

import math
from typing import Any

import awkward as ak
import numba
import numpy as np
from numpy.typing import NDArray

from tau3mu.kernels.buffers import check_same_structure, is_typetracer, jagged, on_typetracer, wrap

#: a flat ``float64`` buffer
Floats = NDArray[np.float64]


@numba.njit(cache=True, nogil=True)
def _pair_mass_kernel(
    pt1: Floats,
    eta1: Floats,
    phi1: Floats,
    pt2: Floats,
    eta2: Floats,
    phi2: Floats,
    mass: float,
    out: Floats,
) -> None:
    m2 = mass * mass
    for i in range(len(out)):
        a = np.float64(pt1[i])
        b = np.float64(pt2[i])
        if not (a > 0.0 and b > 0.0):  # refit placeholder (-99) or NaN
            out[i] = np.nan
            continue
        px = a * math.cos(phi1[i]) + b * math.cos(phi2[i])
        py = a * math.sin(phi1[i]) + b * math.sin(phi2[i])
        pz1 = a * math.sinh(eta1[i])
        pz2 = b * math.sinh(eta2[i])
        e1 = math.sqrt(a * a + pz1 * pz1 + m2)
        e2 = math.sqrt(b * b + pz2 * pz2 + m2)
        s = (e1 + e2) ** 2 - px * px - py * py - (pz1 + pz2) ** 2
        out[i] = math.sqrt(s) if s > 0.0 else (0.0 if s <= 0.0 else np.nan)


@numba.njit(cache=True, nogil=True)
def _delta_r_kernel(eta1: Floats, phi1: Floats, eta2: Floats, phi2: Floats, out: Floats) -> None:
    for i in range(len(out)):
        # Python/NumPy floor modulo: the difference wrapped into [-pi, pi)
        dphi = (np.float64(phi1[i]) - np.float64(phi2[i]) + np.pi) % (2.0 * np.pi) - np.pi
        deta = np.float64(eta1[i]) - np.float64(eta2[i])
        out[i] = math.sqrt(deta * deta + dphi * dphi)


def _flat_inputs(arrays: tuple[Any, ...], what: str) -> tuple[np.ndarray, list[np.ndarray]]:
    parts = [jagged(a, what) for a in arrays]
    check_same_structure([p[0] for p in parts], what)
    # float64 before any arithmetic: numba's math.cos of a float32 is a float32
    return parts[0][0], [p[1].astype(np.float64, copy=False) for p in parts]


def pair_mass(
    pt1: Any, eta1: Any, phi1: Any, pt2: Any, eta2: Any, phi2: Any, mass: float
) -> ak.Array:
    """Invariant mass of two tracks with a common mass hypothesis (GeV), per candidate.

    Six ``var * float`` arrays of one structure; returns ``var * float64``. A pair with a
    non-positive or NaN pt (the producer's -99 where a refit failed) gives NaN, never a
    mass; a slightly negative mass squared from rounding gives 0.

    On typetracers: touches all six inputs and returns a ``var * float64`` typetracer.
    """
    arrays = (pt1, eta1, phi1, pt2, eta2, phi2)
    if is_typetracer(*arrays):
        return on_typetracer(pair_mass, arrays, mass=mass)
    offsets, flat = _flat_inputs(arrays, "pair_mass")
    return wrap(offsets, pair_mass_values(*flat, mass=mass))


def pair_mass_values(*arrays: np.ndarray, mass: float) -> np.ndarray:
    """:func:`pair_mass` on six flat arrays (pt1, eta1, phi1, pt2, eta2, phi2): ``float64``."""
    flat = [np.asarray(a, dtype=np.float64) for a in arrays]
    if len(flat) != 6 or len({len(a) for a in flat}) != 1:
        raise ValueError("pair_mass_values: six flat arrays of one length are needed")
    out = np.empty(len(flat[0]), dtype=np.float64)
    pt1, eta1, phi1, pt2, eta2, phi2 = flat
    _pair_mass_kernel(pt1, eta1, phi1, pt2, eta2, phi2, float(mass), out)
    return out


def delta_r_values(
    eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray
) -> np.ndarray:
    """:func:`delta_r` on flat arrays (one entry per candidate): ``float64`` out."""
    flat = [np.asarray(a, dtype=np.float64) for a in (eta1, phi1, eta2, phi2)]
    if len({len(a) for a in flat}) != 1:
        raise ValueError(f"delta_r_values: inputs of different lengths {[len(a) for a in flat]}")
    out = np.empty(len(flat[0]), dtype=np.float64)
    _delta_r_kernel(flat[0], flat[1], flat[2], flat[3], out)
    return out


def delta_r(eta1: Any, phi1: Any, eta2: Any, phi2: Any) -> ak.Array:
    """sqrt(deta^2 + dphi^2) per entry, dphi wrapped into [-pi, pi).

    Four ``var * float`` arrays of one structure; returns ``var * float64``; NaN in,
    NaN out. On typetracers: touches the inputs, returns a ``var * float64`` typetracer.
    """
    arrays = (eta1, phi1, eta2, phi2)
    if is_typetracer(*arrays):
        return on_typetracer(delta_r, arrays)
    offsets, flat = _flat_inputs(arrays, "delta_r")
    out = np.empty(len(flat[0]), dtype=np.float64)
    _delta_r_kernel(flat[0], flat[1], flat[2], flat[3], out)
    return wrap(offsets, out)
