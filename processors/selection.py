"""The per-candidate cuts of SPEC section 3, and the cumulative selection per event.

:func:`step_masks` judges each candidate on flat numpy arrays; :func:`select` applies
the steps in order to jagged candidates, eagerly (the coffea Runner) or per partition
(dask-awkward). NaN, from a missing link or a failed refit, compares False and so fails
every cut that reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

from tau3mu import kernels
from tau3mu.config import SelectionConfig
from tau3mu.kernels._buffers import is_typetracer, on_typetracer, wrap
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


def pair_mass(pt1: Any, eta1: Any, phi1: Any, pt2: Any, eta2: Any, phi2: Any, mass: float) -> Any:
    """Invariant mass of two tracks with one mass hypothesis; NaN for a failed refit (pt <= 0)."""
    return call(kernels.pair_mass, pt1, eta1, phi1, pt2, eta2, phi2, mass=mass)


#: steps 2-10 in SPEC order, with the candidate fields each reads
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "mass_window": ("mass",),
    "pv_tracks": ("pv_ntracks",),
    "flight_significance": ("flight_sig",),
    "acceptance": ("mu1_pt", "mu1_eta", "mu2_pt", "mu2_eta", "trk_pt"),
    "delta_r": ("mu1_eta", "mu1_phi", "mu2_eta", "mu2_phi", "trk_eta", "trk_phi"),
    "muon_id": ("mu1_is_global", "mu1_is_pf", "mu2_is_global", "mu2_is_pf"),
    "track_ip": ("trk_dz", "trk_dxy"),
    "phi_mass": ("phi_mass",),
    "trigger_match": ("mu1_trig_dr", "mu2_trig_dr"),
}


def step_masks(c: Mapping[str, np.ndarray], config: SelectionConfig) -> dict[str, np.ndarray]:
    """Per-candidate masks of steps 2-10 on flat arrays (one entry per candidate), in order.

    ``c`` maps the fields of :data:`STEP_FIELDS` (analysis names of :mod:`tau3mu.layouts`
    plus what the links provide) to flat arrays; each step is judged on its own.
    """
    lo_dr = config.delta_r_window

    def dr_ok(a: str, b: str) -> np.ndarray:
        dr = kernels.delta_r_values(c[f"{a}_eta"], c[f"{a}_phi"], c[f"{b}_eta"], c[f"{b}_phi"])
        return in_open_interval(dr, lo_dr)

    return {
        "mass_window": in_open_interval(c["mass"], config.mass_window),
        "pv_tracks": c["pv_ntracks"] > config.min_pv_tracks,
        "flight_significance": c["flight_sig"] > config.min_flight_significance,
        "acceptance": muon_acceptance(c["mu1_pt"], c["mu1_eta"], config)
        & muon_acceptance(c["mu2_pt"], c["mu2_eta"], config)
        & (c["trk_pt"] > config.track_min_pt),
        "delta_r": dr_ok("mu1", "mu2") & dr_ok("mu1", "trk") & dr_ok("mu2", "trk"),
        "muon_id": (c["mu1_is_global"] > 0)
        & (c["mu1_is_pf"] > 0)
        & (c["mu2_is_global"] > 0)
        & (c["mu2_is_pf"] > 0),
        "track_ip": (np.abs(c["trk_dz"]) < config.max_track_abs_dz)
        & (np.abs(c["trk_dxy"]) < config.max_track_abs_dxy),
        "phi_mass": in_open_interval(c["phi_mass"], config.phi_mass_window),
        "trigger_match": (c["mu1_trig_dr"] < config.max_trigger_dr)
        & (c["mu2_trig_dr"] < config.max_trigger_dr),
    }


def select(cand: Any, trigger: Any, config: SelectionConfig) -> Any:
    """Steps 1-10 per event: a record with, for each step label of :data:`STEP_FIELDS`,
    the number of candidates passing the trigger and every step up to it, and
    ``passing``, the per-candidate mask after all of them.

    Computed on the candidates' flat buffers (eagerly, or per partition for dask-awkward
    arrays): a jagged awkward operation costs a few ms of fixed overhead, and the ~40 of
    them that the cuts and the cutflow took were most of the selection's time.
    """
    fields = sorted({name for names in STEP_FIELDS.values() for name in names})
    return call(_select, cand[fields], trigger, config=config)


def _select(cand: Any, trigger: Any, config: SelectionConfig) -> ak.Array:
    if is_typetracer(cand, trigger):
        return on_typetracer(_select, (cand, trigger), config=config)
    offsets, columns = _flat_fields(cand)
    fired = np.asarray(ak.to_numpy(trigger), dtype=bool)
    passing = np.repeat(fired, np.diff(offsets))
    out: dict[str, Any] = {}
    for label, mask in step_masks(columns, config).items():
        passing &= mask
        ahead = np.concatenate(([0], np.cumsum(passing, dtype=np.int64)))
        out[label] = ahead[offsets[1:]] - ahead[offsets[:-1]]
    out["passing"] = wrap(offsets, passing)
    return ak.zip(out, depth_limit=1)


def _flat_fields(cand: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(offsets from 0, field -> flat values) of a jagged record array of candidates."""
    layout = ak.to_layout(cand)
    if not isinstance(layout, ak.contents.ListOffsetArray):
        layout = ak.to_layout(ak.to_packed(cand))
        if not isinstance(layout, ak.contents.ListOffsetArray):
            layout = layout.to_ListOffsetArray64(True)
    offsets = np.asarray(layout.offsets.data, dtype=np.int64)
    start, stop = int(offsets[0]), int(offsets[-1])
    record = layout.content
    columns = {
        name: ak.to_numpy(ak.Array(record.content(name))[start:stop]) for name in record.fields
    }
    return offsets - start, columns
