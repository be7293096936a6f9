"""The per-candidate cuts of each run period, and the cumulative selection per event.

:func:`select` applies the period's steps in order (``docs/physics.md``, "Selection") on
flat numpy buffers, eagerly (the coffea Runner) or per partition (dask-awkward). NaN,
from a missing link or a failed refit, compares False and so fails every cut that reads
it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import awkward as ak
import numpy as np

from tau3mu import kernels
from tau3mu.config import PeriodSelection, Run2Selection, Run3Selection
from tau3mu.kernels.buffers import is_typetracer, on_typetracer, wrap
from tau3mu.processors.arrays import call, lib
from tau3mu.processors.links import TRACK_FIELDS, candidate_links, candidate_record, muon_record

__all__ = ["in_closed_interval", "in_open_interval", "select", "steps"]


def in_open_interval(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """``low < values < high``."""
    return (values > window[0]) & (values < window[1])


def in_closed_interval(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """``low <= values <= high``."""
    return (values >= window[0]) & (values <= window[1])


Get = Callable[[str], np.ndarray]
Judge = Callable[[Get], np.ndarray]


def _run2_acceptance(get: Get, prefix: str, cut: Run2Selection) -> np.ndarray:
    """Barrel ``|eta| < 1.2`` above ``barrel_min_pt``, endcap ``1.2 <= |eta| < 2.4`` above
    ``endcap_min_pt`` (the original's boundaries)."""
    pt, abseta = get(f"{prefix}_pt"), np.abs(get(f"{prefix}_eta"))
    barrel = (abseta < cut.barrel_max_abseta) & (pt > cut.barrel_min_pt)
    endcap = (abseta >= cut.barrel_max_abseta) & (abseta < cut.endcap_max_abseta)
    return barrel | (endcap & (pt > cut.endcap_min_pt))


def _run3_acceptance(get: Get, prefix: str, cut: Run3Selection) -> np.ndarray:
    """Barrel ``|eta| <= 1.2`` above ``barrel_min_pt``, endcap ``1.2 < |eta| < 2.4`` above
    ``endcap_min_pt`` (the group's Run 3 boundaries)."""
    pt, abseta = get(f"{prefix}_pt"), np.abs(get(f"{prefix}_eta"))
    barrel = (abseta <= cut.barrel_max_abseta) & (pt > cut.barrel_min_pt)
    endcap = (abseta > cut.barrel_max_abseta) & (abseta < cut.endcap_max_abseta)
    return barrel | (endcap & (pt > cut.endcap_min_pt))


def _run2_steps(cut: Run2Selection) -> dict[str, Judge]:
    """Steps 2-10 of Run 2. Each judges the candidates still in the running through
    ``get(name)``: their values of a candidate field or of a linked muon or track field
    (``mu1_is_global``, ``trk_dz``, ...), in float64 (flags as stored)."""

    def dr_ok(get: Get, a: str, b: str) -> np.ndarray:
        dr = kernels.delta_r_values(
            get(f"{a}_eta"), get(f"{a}_phi"), get(f"{b}_eta"), get(f"{b}_phi")
        )
        return in_open_interval(dr, cut.delta_r_window)

    def phi_mass(get: Get) -> np.ndarray:
        refit = (get(f"{p}_refit_{k}") for p in ("mu1", "mu2") for k in ("pt", "eta", "phi"))
        return kernels.pair_mass_values(*refit, mass=cut.muon_mass)

    def both(get: Get, flag: str) -> np.ndarray:
        return (get(f"mu1_{flag}") > 0) & (get(f"mu2_{flag}") > 0)

    return {
        "mass_window": lambda get: in_open_interval(get("mass"), cut.mass_window),
        "pv_tracks": lambda get: get("pv_ntracks") > cut.min_pv_tracks,
        "flight_significance": lambda get: get("flight_sig") > cut.min_flight_significance,
        "acceptance": lambda get: (
            _run2_acceptance(get, "mu1", cut)
            & _run2_acceptance(get, "mu2", cut)
            & (get("trk_pt") > cut.track_min_pt)
        ),
        "delta_r": lambda get: (
            dr_ok(get, "mu1", "mu2") & dr_ok(get, "mu1", "trk") & dr_ok(get, "mu2", "trk")
        ),
        "muon_id": lambda get: both(get, "is_global") & both(get, "is_pf"),
        "track_ip": lambda get: (
            (np.abs(get("trk_dz")) < cut.max_track_abs_dz)
            & (np.abs(get("trk_dxy")) < cut.max_track_abs_dxy)
        ),
        "phi_mass": lambda get: in_open_interval(phi_mass(get), cut.phi_mass_window),
        "trigger_match": lambda get: (
            (get("mu1_trig_dr") < cut.max_trigger_dr) & (get("mu2_trig_dr") < cut.max_trigger_dr)
        ),
    }


def _run3_steps(cut: Run3Selection) -> dict[str, Judge]:
    """The Run 3 steps after the trigger, as :func:`_run2_steps` judges them."""

    def phi_mass(get: Get) -> np.ndarray:
        muons = (get(f"{p}_{k}") for p in ("mu1", "mu2") for k in ("pt", "eta", "phi", "energy"))
        opposite: np.ndarray = (get("mu1_charge") + get("mu2_charge")) == 0
        window = in_closed_interval(kernels.dimuon_mass_values(*muons), cut.phi_mass_window)
        passed: np.ndarray = opposite & window
        return passed

    def matched(get: Get, prefix: str) -> np.ndarray:
        return (
            (get(f"{prefix}_hlt_matched") > 0)
            & (np.abs(get(f"{prefix}_trg_dr")) < cut.max_trigger_dr)
            & (np.abs(get(f"{prefix}_trg_dpt")) < cut.max_trigger_dpt)
        )

    return {
        "acceptance": lambda get: (
            _run3_acceptance(get, "mu1", cut)
            & _run3_acceptance(get, "mu2", cut)
            & _run3_acceptance(get, "trk", cut)
        ),
        "flight_significance": lambda get: get("flight_sig") >= cut.min_flight_significance,
        "muon_id": lambda get: (
            (get("mu1_is_global") > 0)
            & (get("mu1_is_medium") > 0)
            & (get("mu2_is_global") > 0)
            & (get("mu2_is_medium") > 0)
        ),
        "track_ip": lambda get: (
            (np.abs(get("trk_dz")) < cut.max_track_abs_dz)
            & (np.abs(get("trk_dxy")) < cut.max_track_abs_dxy)
        ),
        "phi_mass": phi_mass,
        "mass_window": lambda get: in_closed_interval(get("mass"), cut.mass_window),
        "trigger_match": lambda get: matched(get, "mu1") & matched(get, "mu2"),
    }


def steps(selection: PeriodSelection) -> dict[str, Judge]:
    """The per-candidate steps of ``selection``'s period after the trigger, in order."""
    if isinstance(selection, Run2Selection):
        return _run2_steps(selection)
    return _run3_steps(selection)


def select(events: Any, trigger: Any, selection: PeriodSelection, year: str | None) -> Any:
    """The period's steps per event: a record with, for each label after ``trigger``, the
    number of candidates passing the trigger and every step up to it, and ``passing``,
    the per-candidate mask after all of them (Run 2 reads the trigger-match branches of
    ``year``).

    Computed on flat buffers (eagerly, or per partition for dask-awkward arrays), one
    step at a time, each on the candidates that passed the steps before: a jagged
    awkward operation costs a few ms of fixed overhead, and the phi mass, delta R and the
    Run 3 links are worth computing only for the ~20 % of candidates that reach them.
    """
    cand = candidate_record(events, year)
    links = lib(cand).zip(candidate_links(events))
    muon = muon_record(events, selection)
    track = events.Track[list(TRACK_FIELDS)]
    return call(_select, cand, links, muon, track, trigger, selection=selection)


def _check_links(
    link: dict[str, np.ndarray], sizes: dict[str, np.ndarray], event: np.ndarray
) -> None:
    """Raise IndexError for a link beyond its event's collection (a corrupt file)."""
    for name, index in link.items():
        size = sizes["trk" if name == "trk_idx" else "mu"][event]
        bad = np.flatnonzero(index >= size)
        if bad.size:
            raise IndexError(
                f"candidate link {name} beyond the collection's size in event "
                f"{int(event[bad[0]])} of the chunk (a corrupt input: indices must be -1 or "
                "below the number of entries)"
            )


def _select(
    cand: Any, links: Any, muon: Any, track: Any, trigger: Any, selection: PeriodSelection
) -> ak.Array:
    arrays = (cand, links, muon, track, trigger)
    if is_typetracer(*arrays):
        return on_typetracer(_select, arrays, selection=selection)
    c_off, c = _flat_fields(cand)
    _, link = _flat_fields(links)
    collections = {"mu": _flat_fields(muon), "trk": _flat_fields(track)}
    counts = np.diff(c_off)
    event = np.repeat(np.arange(len(counts)), counts)
    _check_links(link, {k: np.diff(v[0]) for k, v in collections.items()}, event)
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
        flag = field.startswith("is_") or field == "hlt_matched"
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
    for label, judge in steps(selection).items():
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
