"""The per-candidate cuts of SPEC section 3, and the cumulative selection per event.

:func:`select` applies steps 1-10 in order on flat numpy buffers, eagerly (the coffea
Runner) or per partition (dask-awkward). NaN, from a missing link or a failed refit,
compares False and so fails every cut that reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import awkward as ak
import numpy as np

from tau3mu import kernels
from tau3mu.config import SelectionConfig
from tau3mu.kernels._buffers import is_typetracer, on_typetracer, wrap
from tau3mu.processors.arrays import call, lib
from tau3mu.processors.links import _KINEMATICS, candidate_links


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


#: candidate fields the selection reads when the file has them (Run 2 candidates carry
#: copies of their muons' and track's kinematics; Run 3 ones are linked to them)
_CANDIDATE_FIELDS = (
    "mass",
    "pv_ntracks",
    "flight_sig",
    "mu1_trig_dr",
    "mu2_trig_dr",
    *(f"{p}_refit_{k}" for p in ("mu1", "mu2") for k in _KINEMATICS),
    *(f"{p}_{k}" for p in ("mu1", "mu2", "trk") for k in _KINEMATICS),
)
_MUON_FIELDS = ("pt", "eta", "phi", "is_global", "is_pf")
_TRACK_FIELDS = ("pt", "eta", "phi", "dz", "dxy")

Judge = Callable[[Callable[[str], np.ndarray]], np.ndarray]


def _judges(config: SelectionConfig) -> dict[str, Judge]:
    """Steps 2-10 in SPEC order. Each judges the candidates still in the running through
    ``get(name)``: their values of a candidate field (or a linked muon or track field,
    ``mu1_is_global``, ``trk_dz``, ...), in float64 (flags as stored)."""
    lo_dr = config.delta_r_window

    def dr_ok(get: Callable[[str], np.ndarray], a: str, b: str) -> np.ndarray:
        dr = kernels.delta_r_values(
            get(f"{a}_eta"), get(f"{a}_phi"), get(f"{b}_eta"), get(f"{b}_phi")
        )
        return in_open_interval(dr, lo_dr)

    def phi_mass(get: Callable[[str], np.ndarray]) -> np.ndarray:
        refit = (get(f"{p}_refit_{k}") for p in ("mu1", "mu2") for k in _KINEMATICS)
        return kernels.pair_mass_values(*refit, mass=config.muon_mass)

    return {
        "mass_window": lambda get: in_open_interval(get("mass"), config.mass_window),
        "pv_tracks": lambda get: get("pv_ntracks") > config.min_pv_tracks,
        "flight_significance": lambda get: get("flight_sig") > config.min_flight_significance,
        "acceptance": lambda get: (
            muon_acceptance(get("mu1_pt"), get("mu1_eta"), config)
            & muon_acceptance(get("mu2_pt"), get("mu2_eta"), config)
            & (get("trk_pt") > config.track_min_pt)
        ),
        "delta_r": lambda get: (
            dr_ok(get, "mu1", "mu2") & dr_ok(get, "mu1", "trk") & dr_ok(get, "mu2", "trk")
        ),
        "muon_id": lambda get: (
            (get("mu1_is_global") > 0)
            & (get("mu1_is_pf") > 0)
            & (get("mu2_is_global") > 0)
            & (get("mu2_is_pf") > 0)
        ),
        "track_ip": lambda get: (
            (np.abs(get("trk_dz")) < config.max_track_abs_dz)
            & (np.abs(get("trk_dxy")) < config.max_track_abs_dxy)
        ),
        "phi_mass": lambda get: in_open_interval(phi_mass(get), config.phi_mass_window),
        "trigger_match": lambda get: (
            (get("mu1_trig_dr") < config.max_trigger_dr)
            & (get("mu2_trig_dr") < config.max_trigger_dr)
        ),
    }


#: the cutflow labels of steps 2-10, in order
STEP_LABELS: tuple[str, ...] = tuple(_judges(SelectionConfig()))


def select(events: Any, trigger: Any, config: SelectionConfig) -> Any:
    """Steps 1-10 per event: a record with, for each label of :data:`STEP_LABELS`, the
    number of candidates passing the trigger and every step up to it, and ``passing``,
    the per-candidate mask after all of them.

    Computed on flat buffers (eagerly, or per partition for dask-awkward arrays), one
    step at a time, each on the candidates that passed the steps before: a jagged
    awkward operation costs a few ms of fixed overhead, and the phi mass, delta R and the
    Run 3 links are worth computing only for the ~20 % of candidates that reach them.
    """
    cand = events.Candidate
    fields = [name for name in _CANDIDATE_FIELDS if name in cand.fields]
    links = lib(cand).zip(candidate_links(events))
    muon = events.Muon[list(_MUON_FIELDS)]
    track = events.Track[list(_TRACK_FIELDS)]
    return call(_select, cand[fields], links, muon, track, trigger, config=config)


def _select(
    cand: Any, links: Any, muon: Any, track: Any, trigger: Any, config: SelectionConfig
) -> ak.Array:
    arrays = (cand, links, muon, track, trigger)
    if is_typetracer(*arrays):
        return on_typetracer(_select, arrays, config=config)
    c_off, c = _flat_fields(cand)
    _, link = _flat_fields(links)
    collections = {"mu": _flat_fields(muon), "trk": _flat_fields(track)}
    counts = np.diff(c_off)
    event = np.repeat(np.arange(len(counts)), counts)
    for name, index in link.items():
        # a link beyond its event's collection is a corrupt file, whichever the candidate
        size = np.diff(collections["trk" if name == "trk_idx" else "mu"][0])[event]
        bad = np.flatnonzero(index >= size)
        if bad.size:
            raise IndexError(
                f"candidate link {name} beyond the collection's size in event "
                f"{int(event[bad[0]])} of the chunk (a corrupt input: indices must be -1 or "
                "below the number of entries)"
            )
    passing = np.repeat(np.asarray(ak.to_numpy(trigger), dtype=bool), counts)
    alive = np.flatnonzero(passing)

    # values of the candidates still in the running, fetched once per step: a step may
    # read a field twice (delta R reads each eta and phi in two pairs)
    fetched: dict[str, np.ndarray] = {}

    def fetch(name: str) -> np.ndarray:
        if name in c:
            return c[name][alive].astype(np.float64)
        if "i_off" not in fetched:  # the alive candidates' offsets, per event
            per_event = np.bincount(event[alive], minlength=len(counts))
            fetched["i_off"] = np.concatenate(([0], np.cumsum(per_event)))
        owner, field = name.split("_", 1)
        v_off, values = collections["trk" if owner == "trk" else "mu"]
        flag = field in ("is_global", "is_pf")
        out = kernels.gather_values(
            v_off,
            values[field],
            fetched["i_off"],
            link[f"{owner}_idx"][alive],
            0 if flag else np.nan,
        )
        return out if flag else out.astype(np.float64)

    def get(name: str) -> np.ndarray:
        if name not in fetched:
            fetched[name] = fetch(name)
        return fetched[name]

    out: dict[str, Any] = {}
    for label, judge in _judges(config).items():
        mask = np.asarray(judge(get), dtype=bool)
        passing[alive[~mask]] = False
        alive = alive[mask]
        fetched.clear()
        ahead = np.concatenate(([0], np.cumsum(passing, dtype=np.int64)))
        out[label] = ahead[c_off[1:]] - ahead[c_off[:-1]]
    out["passing"] = wrap(c_off, passing)
    return ak.zip(out, depth_limit=1)


def _flat_fields(record: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(offsets from 0, field -> flat values) of a jagged record array."""
    layout = ak.to_layout(record)
    if not isinstance(layout, ak.contents.ListOffsetArray):
        layout = ak.to_layout(ak.to_packed(record))
        if not isinstance(layout, ak.contents.ListOffsetArray):
            layout = layout.to_ListOffsetArray64(True)
    offsets = np.asarray(layout.offsets.data, dtype=np.int64)
    start, stop = int(offsets[0]), int(offsets[-1])
    content = layout.content
    columns = {
        name: ak.to_numpy(ak.Array(content.content(name))[start:stop]) for name in content.fields
    }
    return offsets - start, columns
