"""Events counted once: the same (run, lumi, event) selected twice in one dataset.

Real grid outputs hold some events twice (CRAB's ``Tree_PhiPi_1-10.root`` beside
``Tree_PhiPi_10.root``: one job's output written again by a resubmission). The files
differ, so only the events tell. :func:`duplicate_events` counts, per dataset, the extra
copies among the selected events (the snapshot's best candidates, one per event);
:func:`drop_duplicate_events` keeps the first copy of each event and removes the others'
contributions from the snapshot, the truth counts and every histogram filled from
best-candidate quantities (:data:`FILLED_FROM`). What is not corrected, because the
snapshot does not carry what it was filled from: ``h_ncand`` (the number of passing
candidates per event) and the cutflow (events and candidates read at each step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import awkward as ak
import numpy as np

#: histogram -> the snapshot columns it was filled from (one fill per column, each event)
FILLED_FROM: Mapping[str, tuple[str, ...]] = {
    "h_mass": ("BestTriplet_mass",),
    "h_mu_pt": ("BestTriplet_mu1_pt", "BestTriplet_mu2_pt"),
    "h_mu_eta": ("BestTriplet_mu1_eta", "BestTriplet_mu2_eta"),
    "h_trk_pt": ("BestTriplet_trk_pt",),
    "h_trk_eta": ("BestTriplet_trk_eta",),
    "h_phi_mass": ("BestTriplet_phi_mass",),
    "h_flight_sig": ("BestTriplet_flight_sig",),
    "h_vtx_chi2": ("BestTriplet_vtx_chi2",),
    "h_ct": ("BestTriplet_ct",),
}
#: histograms a drop leaves as they are (their input is not in the snapshot)
NOT_CORRECTED: tuple[str, ...] = ("h_ncand",)
#: the truth codes of ``BestTriplet_truth`` counted in the truth summary
_TRUTH = {"background": 0, "ds": 1, "dplus": 2}


def first_copies(snapshot: ak.Array) -> np.ndarray:
    """Mask of the rows to keep: the first of each (run, lumi, event), in the array's order."""
    if len(snapshot) == 0:
        return np.zeros(0, dtype=bool)
    columns = [ak.to_numpy(snapshot[name]) for name in ("run", "lumi", "event")]
    keys = np.rec.fromarrays(
        columns,
        dtype=[
            (name, column.dtype)
            for name, column in zip(("run", "lumi", "event"), columns, strict=True)
        ],
    )
    _, first = np.unique(keys, return_index=True)
    keep = np.zeros(len(keys), dtype=bool)
    keep[first] = True
    return keep


def duplicate_events(snapshot: Mapping[str, ak.Array]) -> dict[str, int]:
    """Per dataset, how many selected events are extra copies of another (0 when none)."""
    return {name: int(np.count_nonzero(~first_copies(rows))) for name, rows in snapshot.items()}


def _weight_columns(rows: ak.Array) -> dict[str, str]:
    """systematic -> the snapshot column holding its weight (``weight``, ``weight_sf_up`` ...)."""
    out = {}
    for field in rows.fields:
        if field == "weight":
            out["nominal"] = field
        elif field.startswith("weight_"):
            out[field.removeprefix("weight_")] = field
    return out


def _subtract(h: Any, dataset: str, rows: ak.Array, columns: tuple[str, ...], name: str) -> None:
    """Take the fills of ``rows`` out of ``h`` (values and variances of weighted storage)."""
    del name  # every histogram is filled with every weight, at the event's mass
    delta = h.copy()
    delta.reset()
    axis = h.axes[-1].name
    at: dict[str, np.ndarray] = {}
    if axis != "mass" and "mass" in h.axes.name:
        at["mass"] = ak.to_numpy(rows["BestTriplet_mass"])
    if "origin" in h.axes.name:
        origin = rows["BestTriplet_origin"] if "BestTriplet_origin" in rows.fields else None
        at["origin"] = np.zeros(len(rows), np.int32) if origin is None else ak.to_numpy(origin)
    for systematic, weight in _weight_columns(rows).items():
        for column in columns:
            delta.fill(
                dataset=dataset,
                systematic=systematic,
                **at,
                **{axis: ak.to_numpy(rows[column])},
                weight=ak.to_numpy(rows[weight]),
            )
    view, removed = h.view(flow=True), delta.view(flow=True)
    view.value -= removed.value
    view.variance -= removed.variance


def _truth_counts(rows: ak.Array, window: tuple[float, float]) -> dict[str, int]:
    if "BestTriplet_truth" not in rows.fields:
        return {}
    mass = ak.to_numpy(rows["BestTriplet_mass"])
    truth = ak.to_numpy(rows["BestTriplet_truth"])
    inside = (mass >= window[0]) & (mass < window[1])
    return {key: int(np.count_nonzero(inside & (truth == code))) for key, code in _TRUTH.items()}


def drop_duplicate_events(result: Any) -> tuple[Any, dict[str, int]]:
    """``result`` (:class:`tau3mu.execution.AnalysisOutput`) with each event's first copy only.

    Returns the corrected result and, per dataset, the number of copies removed. The
    snapshot, the truth counts and the histograms of :data:`FILLED_FROM` are corrected;
    :data:`NOT_CORRECTED` histograms and the cutflow are left as they were.
    """
    hists = {name: h.copy() for name, h in result.hists.items()}
    snapshot = dict(result.snapshot)
    truth = {name: dict(counts) for name, counts in result.truth.items()}
    dropped: dict[str, int] = {}
    for dataset, rows in result.snapshot.items():
        keep = first_copies(rows)
        extra = rows[~keep]
        dropped[dataset] = len(extra)
        if not len(extra):
            continue
        for name, columns in FILLED_FROM.items():
            if name in hists:
                _subtract(hists[name], dataset, extra, columns, name)
        if dataset in truth and "h_mass" in hists:
            edges = hists["h_mass"].axes[-1].edges
            for key, n in _truth_counts(extra, (edges[0], edges[-1])).items():
                truth[dataset][key] -= n
        snapshot[dataset] = rows[keep]
    return replace(result, hists=hists, snapshot=snapshot, truth=truth), dropped


def duplicates_line(duplicates: Mapping[str, int], *, dropped: bool) -> str | None:
    """One line for the summary: the extra copies per dataset, and what was done; None
    when every selected event occurs once."""
    found = {name: n for name, n in duplicates.items() if n}
    if not found:
        return None
    counts = ", ".join(f"{name}: {n:,}" for name, n in found.items())
    action = (
        "dropped from the snapshot and histograms (not from the cutflow or h_ncand)"
        if dropped
        else "kept; --drop-duplicate-events keeps one copy"
    )
    return f"duplicate events (same run, lumi, event; extra copies) {counts}: {action}"
