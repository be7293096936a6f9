"""coffea NanoEvents schemas that turn either input layout into the same collections.

Whatever the file, the processor sees

- ``events.Candidate``: the mu mu track candidates, fields named as in
  :mod:`tau3mu.layouts` (``mass``, ``vtx_chi2``, ``mu1_pt``, ...); Run 2's trigger-match
  branches as ``mu1_trig_dr_<year>``/``mu2_trig_dr_<year>`` for every year the file has
  (the dataset's era picks one); Run 3 adds the index links ``mu1_idx``, ``mu2_idx``,
  ``trk_idx``;
- ``events.Muon`` and ``events.Track``: the collections the candidates point into (Run 3
  muons also carry one match flag per HLT path, named as the path);
- ``events.run``, ``events.lumi``, ``events.event``;
- the trigger, as ``events.HLTPath`` / ``events.L1Seed`` (Run 2: jagged records of
  ``name`` and ``decision``) or ``events.Trigger`` (Run 3: one field per ``Trigger_*``
  bit, prefix stripped: ``HLT_DoubleMu4_3_LowMass_v``, ``L1_DoubleMu4_SQ_OS_dR_Max1p2``).

:class:`Tau3MuSchema` detects the layout from the branches of the tree, so one
schema serves every file and every era; a tree in neither layout gets a clear error.
Simulation adds ``events.Gen`` (generated particles: pdg_id, pt, eta, phi; Run 2 also
is_b_decay) and ``events.true_pileup``, Run 3 muons ``decay_type``, where the file has
them. Branches the analysis does not use (the producer's ``Tau3Mu``, ``PVtx``, ...
tables) are left alone. :func:`required_branches` is the one list of the branches a
run cannot do without: the inspection checks files against it and the schema builds its
collections from the same :mod:`tau3mu.layouts` groups.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import cache
from typing import Any

from coffea.nanoevents import transforms
from coffea.nanoevents.schemas.base import BaseSchema, zip_forms

from tau3mu.errors import Tau3MuError
from tau3mu.layouts import RUN2, RUN3, LayoutName

__all__ = [
    "LayoutError",
    "Tau3MuSchema",
    "branch_type_problems",
    "detect_layout",
    "required_branches",
    "run2_l1_decision",
    "run2_trigger_match_years",
    "schema_branch",
]


class LayoutError(Tau3MuError, ValueError):
    """A tree in neither the Run 2 nor the Run 3 layout, or missing a needed branch."""


def detect_layout(branches: Collection[str]) -> LayoutName:
    """Tell the layout from branch names: ``Triplet2_Mass`` (Run 2) or ``nCand2MuTrk`` (Run 3)."""
    names = set(branches)
    if RUN2.candidate()["mass"] in names:
        return "run2"
    if RUN3.counter(RUN3.candidate_collection) in names:
        return "run3"
    raise LayoutError(
        "unknown input layout: the tree has neither the Run 2 branch "
        f"{RUN2.candidate()['mass']!r} (tree {RUN2.tree!r}) nor the Run 3 counter "
        f"{RUN3.counter(RUN3.candidate_collection)!r} (tree {RUN3.tree!r})"
    )


def required_branches(layout: LayoutName | str, year: str = "2017") -> set[str]:
    """Branches the selection cannot do without (Run 2: with the trigger-match branches
    of ``year``; truth and the candidate's own kinematics are optional)."""
    if layout == "run2":
        return {
            *RUN2.event.values(),
            *RUN2.muon.values(),
            *RUN2.track.values(),
            *RUN2.candidate(year).values(),
            RUN2.hlt_name,
            RUN2.hlt_decision,
            RUN2.l1_name,
            RUN2.l1_decision,
        }
    collections = (RUN3.candidate_collection, RUN3.muon_collection, RUN3.track_collection)
    return {
        *RUN3.event.values(),
        *(RUN3.counter(collection) for collection in collections),  # the schema's offsets
        *RUN3.muon.values(),
        *RUN3.track.values(),
        *(v for k, v in RUN3.candidate().items() if k not in RUN3.optional_candidate),
    }


#: Run 3 simulation's generated particles: ``Gen`` field -> the producer's ``GenPart_`` field
RUN3_GEN_FIELDS = {"pdg_id": "pdgId", "pt": "pt", "eta": "eta", "phi": "phi"}


def schema_branch(name: str) -> bool:
    """Whether :class:`Tau3MuSchema` builds anything from branch ``name`` (either layout).

    As uproot's ``filter_name`` (coffea's ``iteritems_options``), it spares a file's
    other branches (the producer's ``Tau3Mu``, ``PVtx``, ``GenPart`` ... tables: most of
    a Run 2 tree's ~277) their NanoEvents typing and reader set-up on every open."""
    exact, prefixes = _schema_branches()
    return name in exact or name.startswith(prefixes)


@cache
def _schema_branches() -> tuple[frozenset[str], tuple[str, ...]]:
    """The names :func:`schema_branch` accepts, and the prefixes (trigger-match branches
    of every year, Run 3 trigger bits)."""
    run2 = {
        *RUN2.event.values(),
        *_run2_fixed_candidate().values(),
        *RUN2.muon.values(),
        *RUN2.track.values(),
        RUN2.truth,
        RUN2.hlt_name,
        RUN2.hlt_decision,
        RUN2.l1_name,
        RUN2.l1_decision,
        RUN2.l1_final_decision,
        # optional: the candidate's kinematics (ct), simulation's truth and pileup
        *RUN2.candidate_kinematics.values(),
        *RUN2.gen.values(),
        RUN2.pileup,
    }
    collections = {
        RUN3.candidate_collection: RUN3.candidate_fields,
        RUN3.muon_collection: {**RUN3.muon_fields, **{p: p for p in RUN3.hlt_paths}},
        RUN3.track_collection: RUN3.track_fields,
    }
    run3 = {*RUN3.event.values(), *(RUN3.counter(c) for c in collections)}
    run3 |= {RUN3.branch(c, v) for c, fields in collections.items() for v in fields.values()}
    # simulation only: the muons' origin, the generated particles, the true pileup
    run3 |= {RUN3.decay_type, RUN3.pileup, RUN3.counter(RUN3.gen_collection)}
    run3 |= {RUN3.branch(RUN3.gen_collection, v) for v in RUN3_GEN_FIELDS.values()}
    prefixes = (*(match.format(year="") for match in RUN2.trigger_match), RUN3.trigger_prefix)
    return frozenset(run2 | run3), prefixes


_INT = r"(?:u?int(?:8|16|32|64)_t|(?:unsigned )?(?:char|short|int|long|long long)|U?Int_t|U?Short_t|U?Long64_t|U?Char_t|bool|Bool_t)"
_NUM = rf"(?:{_INT}|float|double|Float_t|Double_t|Float16_t|Double32_t)"
#: what each kind of branch must hold, as uproot names the C++ type
_TYPE_RULES: dict[str, tuple[str, str]] = {
    "integer": (rf"^{_INT}$", "an integer"),
    "vector": (rf"^(?:std::vector<{_NUM}>|{_NUM}\[\])$", "a std::vector of numbers"),
    "strings": (r"^std::vector<(?:std::)?string>$", "a std::vector<std::string>"),
    "array": (rf"^{_NUM}\[\]$", "a counted array of numbers"),
    "index array": (rf"^{_INT}\[\]$", "a counted array of integers (an index)"),
}


def _expected_kinds(layout: LayoutName, year: str | None) -> dict[str, str]:
    """Branch -> kind of content (a key of ``_TYPE_RULES``), for the layout's branches
    (Run 2: with the trigger-match branches of ``year``, or of no year when None)."""
    if layout == "run2":
        kinds = dict.fromkeys(RUN2.event.values(), "integer")
        candidate = dict(RUN2.candidate(year or "")) if year else _run2_fixed_candidate()
        vectors = [*candidate.values(), *RUN2.muon.values(), *RUN2.track.values()]
        kinds |= dict.fromkeys([*vectors, RUN2.truth], "vector")
        kinds |= dict.fromkeys(
            (RUN2.hlt_decision, RUN2.l1_decision, RUN2.l1_final_decision), "vector"
        )
        kinds |= {RUN2.hlt_name: "strings", RUN2.l1_name: "strings"}
        return kinds
    kinds = dict.fromkeys(RUN3.event.values(), "integer")
    collections = (RUN3.candidate_collection, RUN3.muon_collection, RUN3.track_collection)
    kinds |= {RUN3.counter(c): "integer" for c in collections}
    kinds |= dict.fromkeys([*RUN3.muon.values(), *RUN3.track.values()], "array")
    kinds |= {RUN3.muon_match_flag(p): "index array" for p in RUN3.hlt_paths}
    kinds |= {RUN3.trigger_bit(b): "integer" for b in (*RUN3.hlt_paths, *RUN3.l1_seeds)}
    for key, branch in RUN3.candidate().items():
        kinds[branch] = "index array" if key.endswith("_idx") else "array"
    return kinds


def branch_type_problems(
    layout: LayoutName, typenames: dict[str, str], year: str | None = None
) -> list[str]:
    """The layout's branches (among ``typenames``: branch -> C++ type, as uproot names it)
    whose type is not what ``docs/physics.md`` says: a scalar where a vector belongs, a
    float index, ... Read by the rules, so any producer's files pass, not only ours
    (trigger-match vectors of float or double alike)."""
    problems = []
    for branch, kind in _expected_kinds(layout, year).items():
        typename = typenames.get(branch)
        pattern, expected = _TYPE_RULES[kind]
        if typename is not None and not re.match(pattern, typename.strip()):
            problems.append(f"branch {branch!r} is {typename}, expected {expected}")
    return problems


def _run2_fixed_candidate() -> dict[str, str]:
    """Run 2 candidate branches but the era-named trigger-match ones."""
    return {k: v for k, v in RUN2.candidate().items() if not k.endswith("_trig_dr")}


def run2_trigger_match_years(branches: Collection[str]) -> list[str]:
    """Years whose two trigger-match branches (``Mu1_dRtriggerMatch_<year>``, ...) exist."""
    names = set(branches)
    first, second = RUN2.trigger_match
    prefix = first.format(year="")
    years = [b[len(prefix) :] for b in names if b.startswith(prefix)]
    return sorted(y for y in years if y.isdigit() and second.format(year=y) in names)


def run2_l1_decision(branches: Collection[str]) -> str | None:
    """The L1 decision branch of this producer version (single, or the final one)."""
    for branch in (RUN2.l1_decision, RUN2.l1_final_decision):
        if branch in branches:
            return branch
    return None


def _require(branch_forms: dict[str, Any], names: list[str], what: str) -> None:
    missing = [name for name in names if name not in branch_forms]
    if missing:
        raise LayoutError(f"{what}: missing branch(es) {missing}")


def _records(fields: dict[str, Any]) -> dict[str, Any]:
    """A record of forms kept apart (each branch with its own offsets)."""
    return {
        "class": "RecordArray",
        "fields": list(fields),
        "contents": list(fields.values()),
        "form_key": None,
    }


def _all_present(branch_forms: dict[str, Any], fields: Any) -> dict[str, str]:
    """``fields`` (name -> branch) when every branch is in the file, else empty."""
    return dict(fields) if all(b in branch_forms for b in fields.values()) else {}


def _run3_simulation(branch_forms: dict[str, Any]) -> dict[str, Any]:
    """Run 3 simulation: ``Gen`` (the producer's ``GenPart``: pdg_id, pt, eta, phi) and
    ``true_pileup`` (``Pileup_nTrueInt``), for the files that have them."""
    output: dict[str, Any] = {}
    branches = {k: RUN3.branch(RUN3.gen_collection, v) for k, v in RUN3_GEN_FIELDS.items()}
    counter = RUN3.counter(RUN3.gen_collection)
    if counter in branch_forms and _all_present(branch_forms, branches):
        offsets = transforms.counts2offsets_form(branch_forms[counter])
        output["Gen"] = zip_forms(
            {k: branch_forms[b] for k, b in branches.items()}, "Gen", offsets=offsets
        )
    if RUN3.pileup in branch_forms:
        output["true_pileup"] = branch_forms[RUN3.pileup]
    return output


class Tau3MuSchema(BaseSchema):
    """Build ``Candidate``, ``Muon``, ``Track`` and trigger collections from either layout.

    One schema for every file and era: a Run 2 file's trigger-match branches of every
    year it has are offered (``mu1_trig_dr_2017``, ...), and the processor reads those of
    the dataset's era; nothing is read until the processor asks for it.
    """

    __dask_capable__ = True

    def __init__(self, base_form: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(base_form)
        branch_forms = dict(zip(self._form["fields"], self._form["contents"], strict=False))
        self.layout: LayoutName = detect_layout(branch_forms)
        wrong = branch_type_problems(self.layout, base_form.get("typenames") or {})
        if wrong:
            raise LayoutError(f"{self.layout} layout: " + "; ".join(wrong))
        if self.layout == "run2":
            output = self._build_run2(branch_forms)
        else:
            output = self._build_run3(branch_forms)
        self._form["fields"] = list(output)
        self._form["contents"] = list(output.values())
        self._form["parameters"]["tau3mu_layout"] = self.layout

    # -- Run 2: std::vector branches, one offsets per branch -------------------------
    def _build_run2(self, branch_forms: dict[str, Any]) -> dict[str, Any]:
        candidate = _run2_fixed_candidate()
        if RUN2.truth in branch_forms:
            candidate["truth"] = RUN2.truth
        # read only by ct and the truth origin (not by the length check of
        # _CandidateBranches); each where the file has it, as Run 3's optional fields
        kinematics = {k: b for k, b in RUN2.candidate_kinematics.items() if b in branch_forms}
        l1_decision = run2_l1_decision(branch_forms) or RUN2.l1_decision
        groups: dict[str, dict[str, str]] = {
            "Candidate": candidate,
            "Muon": dict(RUN2.muon),
            "Track": dict(RUN2.track),
        }
        output: dict[str, Any] = {}
        for key, branch in RUN2.event.items():
            _require(branch_forms, [branch], "Run 2 event id")
            output[key] = branch_forms[branch]
        for collection, fields in groups.items():
            _require(branch_forms, list(fields.values()), f"Run 2 collection {collection}")
        matches: dict[str, str] = {}
        for year in run2_trigger_match_years(branch_forms):
            match = RUN2.candidate(year)
            pair = {f"{key}_{year}": match[key] for key in ("mu1_trig_dr", "mu2_trig_dr")}
            matches |= pair
            output[f"_TriggerMatch{year}Branches"] = _records(
                {branch: branch_forms[branch] for branch in pair.values()}
            )
        for collection, fields in groups.items():
            zipped = {**fields, **matches, **kinematics} if collection == "Candidate" else fields
            output[collection] = zip_forms(
                {name: branch_forms[branch] for name, branch in zipped.items()},
                collection,
                record_name=None,
            )
            # each branch with its own offsets, so that unequal lengths can be detected
            output[f"_{collection}Branches"] = _records(
                {branch: branch_forms[branch] for branch in fields.values()}
            )
        # names and decisions stay separate lists (the kernel checks their lengths):
        # zipping a vector<string> into a record is not dask-safe
        triggers = {
            "HLTPath": {"name": RUN2.hlt_name, "decision": RUN2.hlt_decision},
            "L1Seed": {"name": RUN2.l1_name, "decision": l1_decision},
        }
        for collection, fields in triggers.items():
            _require(branch_forms, list(fields.values()), f"Run 2 trigger {collection}")
            output[collection] = _records({k: branch_forms[b] for k, b in fields.items()})
        gen = _all_present(branch_forms, RUN2.gen)
        if gen:
            output["Gen"] = zip_forms(
                {name: branch_forms[branch] for name, branch in gen.items()}, "Gen"
            )
        if RUN2.pileup in branch_forms:
            output["true_pileup"] = branch_forms[RUN2.pileup]
        return output

    # -- Run 3: the producer's NanoAOD C arrays with counters ---------------------------
    def _build_run3(self, branch_forms: dict[str, Any]) -> dict[str, Any]:
        output: dict[str, Any] = {}
        for key, branch in RUN3.event.items():
            _require(branch_forms, [branch], "Run 3 event id")
            output[key] = branch_forms[branch]
        flags = {path: path for path in RUN3.hlt_paths}
        collections = {
            "Candidate": (
                RUN3.candidate_collection,
                RUN3.candidate_fields,
                set(RUN3.optional_candidate),
            ),
            "Muon": (
                RUN3.muon_collection,
                {**RUN3.muon_fields, **flags, "decay_type": RUN3.decay_type.split("_", 1)[1]},
                {*flags, "decay_type"},
            ),
            "Track": (RUN3.track_collection, RUN3.track_fields, set()),
        }
        for name, (collection, fields, optional) in collections.items():
            counter = RUN3.counter(collection)
            _require(branch_forms, [counter], f"Run 3 collection {collection}")
            offsets = transforms.counts2offsets_form(branch_forms[counter])
            present = {
                key: branch_forms[RUN3.branch(collection, value)]
                for key, value in fields.items()
                if RUN3.branch(collection, value) in branch_forms
            }
            needed = [k for k in fields if k not in present and k not in optional]
            if needed:
                missing = [RUN3.branch(collection, fields[k]) for k in needed]
                raise LayoutError(f"Run 3 collection {collection}: missing branch(es) {missing}")
            output[name] = zip_forms(present, name, record_name=None, offsets=offsets)
        prefix = RUN3.trigger_prefix
        bits = {
            key[len(prefix) :]: form
            for key, form in branch_forms.items()
            if key.startswith(prefix) and form["class"] == "NumpyArray"
        }
        if not bits:
            raise LayoutError(f"Run 3 trigger: no {prefix}* bit branches")
        output["Trigger"] = zip_forms(bits, "Trigger")
        output |= _run3_simulation(branch_forms)
        return output

    @classmethod
    def behavior(cls) -> dict:
        from coffea.nanoevents.methods import base

        return base.behavior
