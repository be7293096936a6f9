"""Vectorised relativistic kinematics for the generator: four-vectors as (px, py, pz, E) arrays."""

from __future__ import annotations

import numpy as np

FourVector = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def from_ptetaphim(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass) -> FourVector:
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + np.asarray(mass) ** 2)


def to_ptetaphi(p: FourVector) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    px, py, pz, _ = p
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / pt), np.arctan2(py, px)


def add(*vectors: FourVector) -> FourVector:
    return tuple(sum(v[i] for v in vectors) for i in range(4))  # type: ignore[return-value]


def mass(p: FourVector) -> np.ndarray:
    px, py, pz, e = p
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def two_body_decay(
    rng: np.random.Generator, parent: FourVector, m_parent: np.ndarray, m1: float, m2: float
) -> tuple[FourVector, FourVector]:
    """Isotropic two-body decay in the parent rest frame, boosted to the lab."""
    n = len(m_parent)
    m_parent = np.asarray(m_parent, dtype=np.float64)
    p_star = np.sqrt(
        np.maximum((m_parent**2 - (m1 + m2) ** 2) * (m_parent**2 - (m1 - m2) ** 2), 0.0)
    ) / (2 * m_parent)
    cos_t = rng.uniform(-1, 1, n)
    sin_t = np.sqrt(1 - cos_t**2)
    phi = rng.uniform(-np.pi, np.pi, n)
    dx, dy, dz = sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t
    d1 = (p_star * dx, p_star * dy, p_star * dz, np.sqrt(p_star**2 + m1**2))
    d2 = (-p_star * dx, -p_star * dy, -p_star * dz, np.sqrt(p_star**2 + m2**2))
    px, py, pz, e = parent
    bx, by, bz = px / e, py / e, pz / e
    return _boost(d1, bx, by, bz), _boost(d2, bx, by, bz)


def _boost(p: FourVector, bx, by, bz) -> FourVector:
    b2 = bx**2 + by**2 + bz**2
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = bx * p[0] + by * p[1] + bz * p[2]
    gamma2 = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0)
    factor = gamma2 * bp + gamma * p[3]
    return (
        p[0] + factor * bx,
        p[1] + factor * by,
        p[2] + factor * bz,
        gamma * (p[3] + bp),
    )


def momentum_for_mass(
    system: FourVector, direction: tuple[np.ndarray, np.ndarray, np.ndarray], m_track: float, target
) -> np.ndarray:
    """|p| of a track along unit ``direction`` such that system + track has mass ``target``.

    Solves E_s sqrt(p^2 + m^2) - (P_s . n) p = A with A = (M^2 - m_s^2 - m^2) / 2; NaN where
    no physical solution exists (the caller redraws those).
    """
    px, py, pz, e = system
    m_s2 = e**2 - px**2 - py**2 - pz**2
    a = (np.asarray(target) ** 2 - m_s2 - m_track**2) / 2
    b = px * direction[0] + py * direction[1] + pz * direction[2]
    qa = e**2 - b**2
    qb = -2 * a * b
    qc = e**2 * m_track**2 - a**2
    disc = qb**2 - 4 * qa * qc
    with np.errstate(invalid="ignore", divide="ignore"):
        root = (-qb + np.sqrt(disc)) / (2 * qa)
        ok = (disc >= 0) & (root > 0) & (a + b * root > 0)
    return np.where(ok, root, np.nan)
