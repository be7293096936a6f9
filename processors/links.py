"""What differs between the layouts, behind one interface: trigger bits and candidate links.

Run 2 candidates link to their muons and track by exact value equality (docs/physics.md, "Input layouts"), Run 3
candidates by index (docs/physics.md, "Input layouts"). Both end as the same per-candidate fields: indices
``mu1_idx``, ``mu2_idx``, ``trk_idx`` (-1 for none) and the linked objects' kinematics,
ID flags and impact parameters. The numba kernels do the jagged work; on dask-awkward
arrays they run per partition through :func:`dask_awkward.map_partitions`.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from tau3mu import kernels
from tau3mu.config import PeriodSelection, Run2Selection, Run3Selection
from tau3mu.processors.arrays import call, is_dask, lib


class InputError(ValueError):
    """An inconsistency in the input, reported with the file, branch and entry range."""


def is_run2(events: Any) -> bool:
    return "HLTPath" in events.fields


# -- trigger -------------------------------------------------------------------------
def trigger_fired(events: Any, selection: PeriodSelection) -> Any:
    """Step 1 of the period's selection, per event.

    Run 2: an HLT path whose versioned name contains ``hlt_pattern`` and an L1 seed whose
    name contains one of ``l1_patterns`` fired. Run 3: one of the ``hlt_paths`` bits and
    one of the ``l1_seeds`` bits is 1 (the bits the file has; none of them at all is an
    :class:`InputError`, a file that could never pass, not a run of 0 events).
    """
    if isinstance(selection, Run2Selection):
        hlt = call(
            kernels.trigger_fired,
            events.HLTPath["name"],
            events.HLTPath["decision"],
            patterns=(selection.hlt_pattern,),
        )
        l1 = call(
            kernels.trigger_fired,
            events.L1Seed["name"],
            events.L1Seed["decision"],
            patterns=tuple(selection.l1_patterns),
        )
        return hlt & l1
    trigger = events.Trigger
    fired = None
    for wanted in (selection.hlt_paths, selection.l1_seeds):
        bits = [name for name in wanted if name in trigger.fields]
        if not bits:
            have = [f"Trigger_{f}" for f in trigger.fields]
            raise InputError(
                f"none of the trigger bits {[f'Trigger_{b}' for b in wanted]} is in the file "
                f"(it has {have[:10]}{' ...' if len(have) > 10 else ''})"
            )
        any_bit = _any_of(trigger, bits)
        fired = any_bit if fired is None else fired & any_bit
    return fired


def _any_of(record: Any, fields: list[str]) -> Any:
    fired = record[fields[0]] == 1
    for name in fields[1:]:
        fired = fired | (record[name] == 1)
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


def consistent(events: Any, year: str | None = None) -> Any:
    """All-True per event, or an :class:`InputError` naming file, branch and entries.

    Run 2: every candidate, muon and track vector of an event has its collection's
    length, the trigger-match vectors of ``year`` included."""
    if not is_run2(events):
        return ak.ones_like(events.run, dtype=bool) if not is_dask(events) else events.run >= 0
    meta = getattr(events, "metadata", None) or {}
    context = ""
    if "filename" in meta:
        context = f"{meta['filename']} entries {meta.get('entrystart')}-{meta.get('entrystop')}: "
    checks = [("Candidate", events["_CandidateBranches"])]
    if year is not None:
        candidate = events["_CandidateBranches"]
        match = events[f"_TriggerMatch{year}Branches"]
        joined = {name: candidate[name] for name in candidate.fields}
        joined |= {name: match[name] for name in match.fields}
        checks = [("Candidate", lib(candidate).zip(joined, depth_limit=1))]
    checks += [(c, events[f"_{c}Branches"]) for c in ("Muon", "Track")]
    ok = None
    for collection, branches in checks:
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
#: Run 2 candidate fields the selection reads (besides the era's trigger match): its
#: candidates carry copies of their muons' and track's kinematics
RUN2_CANDIDATE_FIELDS: tuple[str, ...] = (
    "mass",
    "vtx_chi2",
    "pv_ntracks",
    "flight_sig",
    *(f"{p}_refit_{k}" for p in ("mu1", "mu2") for k in _KINEMATICS),
    *(f"{p}_{k}" for p in ("mu1", "mu2", "trk") for k in _KINEMATICS),
)
RUN3_CANDIDATE_FIELDS: tuple[str, ...] = ("mass", "vtx_chi2", "flight_sig")
RUN2_MUON_FIELDS: tuple[str, ...] = ("pt", "eta", "phi", "is_global", "is_pf")
RUN3_MUON_FIELDS: tuple[str, ...] = (
    "pt",
    "eta",
    "phi",
    "energy",
    "charge",
    "is_global",
    "is_medium",
    "trg_dr",
    "trg_dpt",
)
TRACK_FIELDS: tuple[str, ...] = ("pt", "eta", "phi", "dz", "dxy")


def trigger_match_branch(events: Any, year: str) -> None:
    """Raise :class:`InputError` unless the Run 2 file has the trigger-match branches of
    ``year`` (never a silent fall-back to another year)."""
    wanted = f"mu1_trig_dr_{year}"
    if wanted not in events.Candidate.fields:
        have = sorted({f.rsplit("_", 1)[1] for f in events.Candidate.fields if "_trig_dr_" in f})
        raise InputError(
            f"the file has no trigger-match branch Mu1_dRtriggerMatch_{year} for this era "
            f"(years it has: {have or 'none'})"
        )


def candidate_record(events: Any, year: str | None, keep: Any = None) -> Any:
    """The candidate fields the period's selection reads, under analysis names (Run 2:
    ``mu1_trig_dr``/``mu2_trig_dr`` of ``year``; with the jagged mask ``keep``, only those
    candidates)."""
    cand = events.Candidate if keep is None else events.Candidate[keep]
    if not is_run2(events):
        names = [*RUN3_CANDIDATE_FIELDS, *(["truth"] if "truth" in cand.fields else [])]
        return cand[names]
    trigger_match_branch(events, str(year))
    fields = {name: cand[name] for name in RUN2_CANDIDATE_FIELDS}
    fields |= {f"{m}_trig_dr": cand[f"{m}_trig_dr_{year}"] for m in ("mu1", "mu2")}
    if "truth" in cand.fields:
        fields["truth"] = cand.truth
    return lib(cand).zip(fields)


def muon_record(events: Any, selection: PeriodSelection) -> Any:
    """The muon fields the period's selection reads. Run 3 adds ``hlt_matched``: the
    muon's match flag of one of ``selection.matched_paths`` is set (the flags the file
    has; none of them is an :class:`InputError`)."""
    muon = events.Muon
    if isinstance(selection, Run2Selection):
        return muon[list(RUN2_MUON_FIELDS)]
    flags = [path for path in selection.matched_paths if path in muon.fields]
    if not flags:
        raise InputError(
            f"none of the muon trigger-match flags {[f'Muon_{p}' for p in selection.matched_paths]} "
            "is in the file"
        )
    matched = muon[flags[0]] > 0
    for path in flags[1:]:
        matched = matched | (muon[path] > 0)
    fields = {name: muon[name] for name in RUN3_MUON_FIELDS}
    fields["hlt_matched"] = matched
    return lib(muon).zip(fields)


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


def candidate_view(
    events: Any, selection: PeriodSelection, year: str | None, keep: Any = None
) -> Any:
    """The candidates with links, linked kinematics, ID flags, impact parameters, trigger
    match and phi mass, under one set of names for both periods (for histograms and the
    snapshot; with the jagged mask ``keep``, only those candidates: the processor keeps
    the best one per event, the selection itself works on flat buffers,
    :func:`tau3mu.processors.selection.select`).

    Linked values are NaN (flags 0) where a link is -1. Run 3 has no PV track count
    (``pv_ntracks`` NaN); its ``mu{1,2}_trig_dr`` are the muons' ``trgDR`` and its
    ``phi_mass`` the opposite-sign muons' mass from their energies (NaN for same sign);
    Run 2's ``phi_mass`` is the refitted tracks' mass with the muon hypothesis.
    """
    cand = candidate_record(events, year, keep)
    links = candidate_links(events, keep)
    xp = lib(cand)
    # one precision for both layouts (Run 3 stores float32): derived quantities and cut
    # comparisons then agree to the last bit with the Run 2 doubles
    fields = {
        name: cand[name] if name == "truth" else xp.values_astype(cand[name], np.float64)
        for name in cand.fields
    }
    fields.update(links)
    muon = muon_record(events, selection)

    def linked(collection: Any, index: Any, name: str) -> Any:
        values = collection[name]
        if name.startswith("is_"):  # flags as stored, 0 where there is no link
            return call(kernels.gather, values, index, fill=0)
        return call(kernels.gather, xp.values_astype(values, np.float64), index, fill=np.nan)

    owners = (("mu1", muon), ("mu2", muon), ("trk", events.Track))
    for prefix, collection in owners:
        for k in _KINEMATICS:
            if f"{prefix}_{k}" not in fields:
                fields[f"{prefix}_{k}"] = linked(collection, links[f"{prefix}_idx"], k)
    for prefix in ("mu1", "mu2"):
        index = links[f"{prefix}_idx"]
        for flag in ("is_global", "is_pf") if is_run2(events) else ("is_global", "is_medium"):
            fields[f"{prefix}_{flag}"] = linked(muon, index, flag)
    fields["trk_dz"] = linked(events.Track, links["trk_idx"], "dz")
    fields["trk_dxy"] = linked(events.Track, links["trk_idx"], "dxy")
    if isinstance(selection, Run3Selection):
        _run3_view(fields, muon, links, linked)
    else:
        fields["phi_mass"] = call(
            kernels.pair_mass,
            *(fields[f"mu1_refit_{k}"] for k in _KINEMATICS),
            *(fields[f"mu2_refit_{k}"] for k in _KINEMATICS),
            mass=selection.muon_mass,
        )
    return xp.zip(fields)


def _run3_view(fields: dict[str, Any], muon: Any, links: dict[str, Any], linked: Any) -> None:
    """Run 3 additions to :func:`candidate_view`: trigger match, phi mass, no PV tracks."""
    per_muon = {
        prefix: {
            name: linked(muon, links[f"{prefix}_idx"], name)
            for name in ("energy", "charge", "trg_dr")
        }
        for prefix in ("mu1", "mu2")
    }
    for prefix in ("mu1", "mu2"):
        fields[f"{prefix}_trig_dr"] = per_muon[prefix]["trg_dr"]
    mass = call(
        kernels.dimuon_mass,
        *(fields[f"mu1_{k}"] for k in _KINEMATICS),
        per_muon["mu1"]["energy"],
        *(fields[f"mu2_{k}"] for k in _KINEMATICS),
        per_muon["mu2"]["energy"],
    )
    opposite = (per_muon["mu1"]["charge"] + per_muon["mu2"]["charge"]) == 0
    xp = lib(mass)
    fields["phi_mass"] = xp.where(opposite, mass, np.nan)
    fields["pv_ntracks"] = fields["mass"] * np.nan


__all__ = [
    "RUN2_CANDIDATE_FIELDS",
    "RUN2_MUON_FIELDS",
    "RUN3_CANDIDATE_FIELDS",
    "RUN3_MUON_FIELDS",
    "TRACK_FIELDS",
    "InputError",
    "candidate_links",
    "candidate_record",
    "candidate_view",
    "consistent",
    "is_run2",
    "muon_record",
    "trigger_fired",
    "trigger_match_branch",
]
