"""The per-candidate cuts of SPEC section 3 as functions of plain (jagged) arrays.

They use numpy ufuncs and operators only, so the same code runs on awkward arrays
(the coffea Runner) and on dask-awkward arrays (the graph path). NaN, from a missing
link or a failed refit, compares False and so fails every cut that reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tau3mu import kernels
from tau3mu.config import SelectionConfig
from tau3mu.processors.arrays import call


def in_open_interval(values: Any, window: tuple[float, float]) -> Any:
    """``low < values < high``."""
    return (values > window[0]) & (values < window[1])


def muon_acceptance(pt: Any, eta: Any, config: SelectionConfig) -> Any:
    """Barrel muons above ``barrel_min_pt``, endcap muons above ``endcap_min_pt``."""
    abseta = np.abs(eta)
    barrel = (abseta < config.barrel_max_abseta) & (pt > config.barrel_min_pt)
    endcap = (
        (abseta >= config.barrel_max_abseta)
        & (abseta < config.endcap_max_abseta)
        & (pt > config.endcap_min_pt)
    )
    return barrel | endcap


def delta_r(eta1: Any, phi1: Any, eta2: Any, phi2: Any) -> Any:
    """dR with dphi wrapped into [-pi, pi] (numba kernel; per partition on dask arrays)."""
    return call(kernels.delta_r, eta1, phi1, eta2, phi2)


def pair_mass(pt1: Any, eta1: Any, phi1: Any, pt2: Any, eta2: Any, phi2: Any, mass: float) -> Any:
    """Invariant mass of two tracks with one mass hypothesis; NaN for a failed refit (pt <= 0)."""
    return call(kernels.pair_mass, pt1, eta1, phi1, pt2, eta2, phi2, mass=mass)


def candidate_steps(cand: Any, config: SelectionConfig) -> dict[str, Any]:
    """Per-candidate masks of steps 2-10, keyed by cutflow label, in SPEC order.

    ``cand`` holds the analysis names of :mod:`tau3mu.layouts` plus what the links
    provide: ``mu{1,2}_is_global``, ``mu{1,2}_is_pf``, ``trk_dz``, ``trk_dxy`` and the
    muon / track kinematics ``mu{1,2}_{pt,eta,phi}``, ``trk_{pt,eta,phi}``.
    """
    lo_dr = config.delta_r_window
    dr12 = delta_r(cand.mu1_eta, cand.mu1_phi, cand.mu2_eta, cand.mu2_phi)
    dr1t = delta_r(cand.mu1_eta, cand.mu1_phi, cand.trk_eta, cand.trk_phi)
    dr2t = delta_r(cand.mu2_eta, cand.mu2_phi, cand.trk_eta, cand.trk_phi)
    return {
        "mass_window": in_open_interval(cand.mass, config.mass_window),
        "pv_tracks": cand.pv_ntracks > config.min_pv_tracks,
        "flight_significance": cand.flight_sig > config.min_flight_significance,
        "acceptance": muon_acceptance(cand.mu1_pt, cand.mu1_eta, config)
        & muon_acceptance(cand.mu2_pt, cand.mu2_eta, config)
        & (cand.trk_pt > config.track_min_pt),
        "delta_r": in_open_interval(dr12, lo_dr)
        & in_open_interval(dr1t, lo_dr)
        & in_open_interval(dr2t, lo_dr),
        "muon_id": (cand.mu1_is_global > 0)
        & (cand.mu1_is_pf > 0)
        & (cand.mu2_is_global > 0)
        & (cand.mu2_is_pf > 0),
        "track_ip": (np.abs(cand.trk_dz) < config.max_track_abs_dz)
        & (np.abs(cand.trk_dxy) < config.max_track_abs_dxy),
        "phi_mass": in_open_interval(cand.phi_mass, config.phi_mass_window),
        "trigger_match": (cand.mu1_trig_dr < config.max_trigger_dr)
        & (cand.mu2_trig_dr < config.max_trigger_dr),
    }
