"""What differs between the layouts, behind one interface: trigger bits and candidate links.

Run 2 candidates link to their muons and track by exact value equality (SPEC 2.1), Run 3
candidates by index (SPEC 2.2). Both end as the same per-candidate fields: indices
``mu1_idx``, ``mu2_idx``, ``trk_idx`` (-1 for none) and the linked objects' kinematics,
ID flags and impact parameters. The numba kernels do the jagged work; on dask-awkward
arrays they run per partition through :func:`dask_awkward.map_partitions`.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from tau3mu import kernels
from tau3mu.config import SelectionConfig
from tau3mu.processors.arrays import call, is_dask, lib


class InputError(ValueError):
    """An inconsistency in the input, reported with the file, branch and entry range."""


def is_run2(events: Any) -> bool:
    return "HLTPath" in events.fields


# -- trigger -------------------------------------------------------------------------
def trigger_fired(events: Any, config: SelectionConfig) -> Any:
    """Step 1: an HLT path matching ``hlt_pattern`` and an L1 seed matching ``l1_patterns``."""
    if is_run2(events):
        hlt = call(
            kernels.trigger_fired,
            events.HLTPath["name"],
            events.HLTPath["decision"],
            patterns=(config.hlt_pattern,),
        )
        l1 = call(
            kernels.trigger_fired,
            events.L1Seed["name"],
            events.L1Seed["decision"],
            patterns=tuple(config.l1_patterns),
        )
        return hlt & l1
    # Run 3: one bool per path; versions are not in the branch names
    # the Run 2 rule (pattern inside the versioned name) on the unversioned bit names
    hlt_bits = [f for f in events.HLT.fields if config.hlt_pattern in f"HLT_{f}_v"]
    l1_bits = [f for f in events.L1.fields if any(p in f"L1_{f}" for p in config.l1_patterns)]
    for prefix, bits, patterns, fields in (
        ("HLT", hlt_bits, (config.hlt_pattern,), events.HLT.fields),
        ("L1", l1_bits, config.l1_patterns, events.L1.fields),
    ):
        if not bits:  # the trigger could never fire: a file without the path, not 0 events
            raise InputError(
                f"no {prefix}_* trigger bit matches {list(patterns)} (the file has "
                f"{[f'{prefix}_{f}' for f in fields][:8]})"
            )
    return _any_of(events.HLT, hlt_bits) & _any_of(events.L1, l1_bits)


def _any_of(record: Any, fields: list[str]) -> Any:
    if not fields:
        return record[record.fields[0]] & False
    fired = record[fields[0]]
    for name in fields[1:]:
        fired = fired | record[name]
    return fired


# -- consistency of Run 2 std::vector lengths ------------------------------------------
def _check_lengths(
    branches: Any, *, collection: str, context: str = "", first_entry: int | None = None
) -> Any:
    """All-True per event if every branch of a collection has the same length per event.
    ``first_entry``: the chunk's first entry in its file, to name the entry that is wrong."""
    counts = {name: ak.num(branches[name], axis=1) for name in branches.fields}
    names = list(counts)
    if ak.backend(counts[names[0]]) == "typetracer":
        return counts[names[0]] >= 0
    reference = ak.to_numpy(counts[names[0]])
    for name in names[1:]:
        other = ak.to_numpy(counts[name])
        bad = np.flatnonzero(other != reference)
        if bad.size:
            entry = int(bad[0])
            where = (
                f"entry {first_entry + entry}"
                if first_entry is not None
                else (f"event {entry} of the chunk")
            )
            raise InputError(
                f"{context}branch {name!r} has {int(other[entry])} entries but "
                f"{names[0]!r} has {int(reference[entry])} in {where} "
                f"({bad.size} events affected): the {collection} vectors of one event "
                "must have equal lengths"
            )
    return counts[names[0]] >= 0


def consistent(events: Any) -> Any:
    """All-True per event, or an :class:`InputError` naming file, branch and entries."""
    if not is_run2(events):
        return ak.ones_like(events.run, dtype=bool) if not is_dask(events) else events.run >= 0
    meta = getattr(events, "metadata", None) or {}
    context = ""
    if "filename" in meta:
        context = f"{meta['filename']} entries {meta.get('entrystart')}-{meta.get('entrystop')}: "
    ok = None
    for collection in ("Candidate", "Muon", "Track"):
        branches = events[f"_{collection}Branches"]
        check = call(
            _check_lengths,
            branches,
            collection=collection,
            context=context,
            first_entry=meta.get("entrystart"),
        )
        ok = check if ok is None else ok & check
    return ok


# -- links and linked quantities -------------------------------------------------------
_KINEMATICS = ("pt", "eta", "phi")
#: the candidate's own kinematics (Run 3 stores them): neither cut on nor written, so the
#: view leaves them out (the dask-awkward graph would otherwise read their branches)
_OWN_KINEMATICS = ("pt", "eta", "phi", "charge")


def _as_float32(array: Any) -> Any:
    return lib(array).values_astype(array, np.float32)


def candidate_links(events: Any, keep: Any = None) -> dict[str, Any]:
    """Indices of each candidate's muons and track in the collections, -1 for none
    (of the candidates where the jagged mask ``keep`` is True, if given)."""
    cand = events.Candidate if keep is None else events.Candidate[keep]
    if "mu1_idx" in cand.fields:  # Run 3: explicit links
        return {"mu1_idx": cand.mu1_idx, "mu2_idx": cand.mu2_idx, "trk_idx": cand.trk_idx}
    muon = [events.Muon[k] for k in _KINEMATICS]
    track = [events.Track[k] for k in _KINEMATICS]
    links = {}
    for prefix in ("mu1", "mu2"):
        # the candidate's doubles are copies of float muon values: compare as float32
        copy = [_as_float32(cand[f"{prefix}_{k}"]) for k in _KINEMATICS]
        links[f"{prefix}_idx"] = call(kernels.match_to_collection, *copy, *muon)
    copy = [cand[f"trk_{k}"] for k in _KINEMATICS]
    links["trk_idx"] = call(kernels.match_to_collection, *copy, *track)
    return links


def candidate_view(events: Any, config: SelectionConfig, keep: Any = None) -> Any:
    """The candidates with links, linked kinematics, ID flags, impact parameters and phi mass.

    Run 2 candidates carry copies of their muons' and track's kinematics; Run 3
    candidates are given them from the collections through the links (NaN where a
    link is -1, which then fails every cut). With the jagged mask ``keep``, only those
    candidates (the processor keeps the best one per event: the selection itself works
    on flat buffers, :func:`tau3mu.processors.selection.select`).
    """
    from tau3mu.processors.selection import pair_mass

    cand = events.Candidate if keep is None else events.Candidate[keep]
    links = candidate_links(events, keep)
    xp = lib(cand)
    # one precision for both layouts (Run 3 stores float32): derived quantities and cut
    # comparisons then agree to the last bit with the Run 2 doubles
    fields = {
        name: xp.values_astype(cand[name], np.float64)
        if name not in ("mu1_idx", "mu2_idx", "trk_idx", "truth", "charge")
        else cand[name]
        for name in cand.fields
        if name not in _OWN_KINEMATICS
    }
    fields.update(links)

    def linked(collection: Any, index: Any, name: str, fill: float) -> Any:
        values = collection[name]
        if name in _KINEMATICS or name in ("dz", "dxy"):
            values = xp.values_astype(values, np.float64)
        return call(kernels.gather, values, index, fill=fill)

    for prefix, collection in (("mu1", events.Muon), ("mu2", events.Muon), ("trk", events.Track)):
        index = links[f"{prefix}_idx"]
        for k in _KINEMATICS:
            if f"{prefix}_{k}" not in fields:
                fields[f"{prefix}_{k}"] = linked(collection, index, k, np.nan)
    for prefix in ("mu1", "mu2"):
        index = links[f"{prefix}_idx"]
        fields[f"{prefix}_is_global"] = linked(events.Muon, index, "is_global", 0)
        fields[f"{prefix}_is_pf"] = linked(events.Muon, index, "is_pf", 0)
    fields["trk_dz"] = linked(events.Track, links["trk_idx"], "dz", np.nan)
    fields["trk_dxy"] = linked(events.Track, links["trk_idx"], "dxy", np.nan)
    fields["phi_mass"] = pair_mass(
        *(fields[f"mu1_refit_{k}"] for k in _KINEMATICS),
        *(fields[f"mu2_refit_{k}"] for k in _KINEMATICS),
        mass=config.muon_mass,
    )
    return xp.zip(fields)
