"""The best candidate's proper decay length and, in simulation, its truth origin
(docs/physics.md, "Proper decay length" and "Truth origin").

- ct = L_xy x m / pT, with L_xy the beamspot-to-SV transverse flight distance (cm), m
  the vertex-fitted mass and pT the candidate's (Run 2: ``FlightDistBS_SV`` x
  ``Triplet2_Mass`` / ``Triplet2_Pt``; Run 3: ``Cand2MuTrk_flightDistBS`` x ``mass`` /
  ``pt``). NaN where the file lacks those branches.
- origin, from the generated particles as real simulation carries them, not from a
  per-candidate flag: a true Ds when a generated particle with |pdgId| = 431 lies within
  dR < 0.03 of the candidate's direction; then, Run 2: from a b hadron when the closest
  such particle has ``GenParticle_isBdecay`` 1, prompt otherwise; Run 3: from the
  producer's ``Muon_decayType`` of the candidate's two muons, both generator-matched
  (1 or 2), from a b hadron when either is 2, prompt when both are 1, not a true Ds
  otherwise. :data:`tau3mu.config.ORIGIN_OTHER` for data and for simulation without
  generated particles.

The functions take one value (or one list) per event and work eagerly or per partition
of dask-awkward arrays (:func:`tau3mu.processors.arrays.call`).
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from tau3mu.config import ORIGIN_FROM_B, ORIGIN_OTHER, ORIGIN_PROMPT

__all__ = [
    "DS_PDG_ID",
    "MATCH_DR",
    "muon_value",
    "origin_run2",
    "origin_run3",
    "proper_decay_length",
]

#: |pdgId| of the Ds+ and the cone of the generator match
DS_PDG_ID = 431
MATCH_DR = 0.03


def proper_decay_length(flight_dist: Any, mass: Any, pt: Any) -> ak.Array:
    """ct = flight_dist x mass / pt in cm, in float64 (one value per event)."""

    def f64(values: Any) -> Any:
        return ak.values_astype(ak.fill_none(values, np.nan), np.float64)

    return f64(flight_dist) * f64(mass) / f64(pt)


def _ds_match(eta: Any, phi: Any, gen_pdg: Any, gen_eta: Any, gen_phi: Any) -> tuple[Any, Any]:
    """(per generated particle: a Ds within the cone, its dR squared)."""
    eta = ak.values_astype(ak.fill_none(eta, np.nan), np.float64)
    phi = ak.values_astype(ak.fill_none(phi, np.nan), np.float64)
    d_eta = ak.values_astype(gen_eta, np.float64) - eta
    d_phi = (ak.values_astype(gen_phi, np.float64) - phi + np.pi) % (2 * np.pi) - np.pi
    dr2 = d_eta * d_eta + d_phi * d_phi
    return (abs(gen_pdg) == DS_PDG_ID) & (dr2 < MATCH_DR * MATCH_DR), dr2


def origin_run2(
    eta: Any, phi: Any, gen_pdg: Any, gen_eta: Any, gen_phi: Any, gen_is_b: Any
) -> ak.Array:
    """Run 2 origin per event: the closest generated Ds within the cone decides by its
    ``isBdecay``."""
    match, dr2 = _ds_match(eta, phi, gen_pdg, gen_eta, gen_phi)
    closest = ak.argmin(ak.where(match, dr2, np.inf), axis=1, keepdims=True)
    from_b = ak.fill_none(ak.firsts(gen_is_b[closest]), 0) == 1
    matched = ak.any(match, axis=1)
    code = ak.where(from_b, ORIGIN_FROM_B, ORIGIN_PROMPT)
    return ak.values_astype(ak.where(matched, code, ORIGIN_OTHER), np.int32)


def origin_run3(
    eta: Any,
    phi: Any,
    gen_pdg: Any,
    gen_eta: Any,
    gen_phi: Any,
    mu1_decay: Any,
    mu2_decay: Any,
) -> ak.Array:
    """Run 3 origin per event: a Ds within the cone, and the two muons' ``decayType``."""
    match, _ = _ds_match(eta, phi, gen_pdg, gen_eta, gen_phi)
    d1 = ak.fill_none(mu1_decay, 0)
    d2 = ak.fill_none(mu2_decay, 0)
    matched = ak.any(match, axis=1) & (d1 >= 1) & (d1 <= 2) & (d2 >= 1) & (d2 <= 2)
    code = ak.where((d1 == 2) | (d2 == 2), ORIGIN_FROM_B, ORIGIN_PROMPT)
    return ak.values_astype(ak.where(matched, code, ORIGIN_OTHER), np.int32)


def muon_value(values: Any, index: Any) -> ak.Array:
    """``values[index]`` per event (a jagged muon field, one index per event; 0 where the
    index is missing or out of range)."""
    index = ak.fill_none(index, -1)
    inside = (index >= 0) & (index < ak.num(values, axis=1))
    safe = ak.where(inside, index, 0)
    padded = ak.pad_none(values, 1, axis=1)
    picked = ak.firsts(padded[ak.singletons(safe)])
    return ak.where(inside, ak.fill_none(picked, 0), 0)
