"""coffea NanoEvents schemas that turn either input layout into the same collections.

Whatever the file, the processor sees

- ``events.Candidate``: the mu mu track candidates, fields named as in
  :mod:`tau3mu.layouts` (``mass``, ``vtx_chi2``, ``mu1_pt``, ...); Run 3 adds the
  index links ``mu1_idx``, ``mu2_idx``, ``trk_idx``;
- ``events.Muon`` and ``events.Track``: the collections the candidates point into;
- ``events.run``, ``events.lumi``, ``events.event``;
- the trigger, as ``events.HLTPath`` / ``events.L1Seed`` (Run 2: jagged records of
  ``name`` and ``decision``) or ``events.HLT`` / ``events.L1`` (Run 3: records of
  bools, one field per path, prefix stripped as in coffea's NanoAOD schema).

:class:`Tau3MuSchema` detects the layout from the branches of the tree, so one
schema serves every file; a tree in neither layout gets a clear error. Importing this
module switches uproot's ZLIB inflate to ISA-L (:mod:`tau3mu.inflate`), in the client and
in every worker that unpickles the schema.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from coffea.nanoevents import transforms
from coffea.nanoevents.schemas.base import BaseSchema, zip_forms

from tau3mu import inflate
from tau3mu.config import SelectionConfig
from tau3mu.layouts import RUN2, RUN3, LayoutName

inflate.configure()


class LayoutError(ValueError):
    """A tree in neither the Run 2 nor the Run 3 layout, or missing a needed branch."""


def detect_layout(branches: set[str] | list[str]) -> LayoutName:
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


def _expected_kinds(layout: LayoutName, era: str) -> dict[str, str]:
    """Branch -> kind of content (a key of ``_TYPE_RULES``), for the layout's branches."""
    if layout == "run2":
        kinds = dict.fromkeys(RUN2.event.values(), "integer")
        vectors = [*RUN2.candidate(era).values(), *RUN2.muon.values(), *RUN2.track.values()]
        kinds |= dict.fromkeys([*vectors, RUN2.truth], "vector")
        kinds |= {RUN2.hlt_decision: "vector", RUN2.l1_decision: "vector"}
        kinds |= {RUN2.hlt_name: "strings", RUN2.l1_name: "strings"}
        return kinds
    kinds = dict.fromkeys(RUN3.event.values(), "integer")
    collections = (RUN3.candidate_collection, RUN3.muon_collection, RUN3.track_collection)
    kinds |= {RUN3.counter(c): "integer" for c in collections}
    kinds |= dict.fromkeys([*RUN3.muon.values(), *RUN3.track.values()], "array")
    for key, branch in RUN3.candidate().items():
        kinds[branch] = "index array" if key.endswith("_idx") else "array"
    return kinds


def branch_type_problems(layout: LayoutName, typenames: dict[str, str], era: str) -> list[str]:
    """The layout's branches (among ``typenames``: branch -> C++ type, as uproot names it)
    whose type is not what SPEC section 2 says: a scalar where a vector belongs, a float
    index, ... Read by the rules, so any producer's files pass, not only ours."""
    problems = []
    for branch, kind in _expected_kinds(layout, era).items():
        typename = typenames.get(branch)
        pattern, expected = _TYPE_RULES[kind]
        if typename is not None and not re.match(pattern, typename.strip()):
            problems.append(f"branch {branch!r} is {typename}, expected {expected}")
    return problems


def _require(branch_forms: dict[str, Any], names: list[str], what: str) -> None:
    missing = [name for name in names if name not in branch_forms]
    if missing:
        raise LayoutError(f"{what}: missing branch(es) {missing}")


class Tau3MuSchema(BaseSchema):
    """Build ``Candidate``, ``Muon``, ``Track`` and trigger collections from either layout.

    The era (for Run 2's era-named trigger-match branches) comes from the class attribute
    :attr:`era`; use :meth:`for_era` to get a schema class for another era.
    """

    era: ClassVar[str] = SelectionConfig().era
    __dask_capable__ = True

    def __init__(self, base_form: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(base_form)
        branch_forms = dict(zip(self._form["fields"], self._form["contents"], strict=False))
        self.layout: LayoutName = detect_layout(branch_forms)
        wrong = branch_type_problems(self.layout, base_form.get("typenames") or {}, self.era)
        if wrong:
            raise LayoutError(f"{self.layout} layout: " + "; ".join(wrong))
        if self.layout == "run2":
            output = self._build_run2(branch_forms)
        else:
            output = self._build_run3(branch_forms)
        self._form["fields"] = list(output)
        self._form["contents"] = list(output.values())
        self._form["parameters"]["tau3mu_layout"] = self.layout

    @classmethod
    def for_era(cls, era: str) -> type[Tau3MuSchema]:
        """A schema class reading the trigger-match branches of ``era``."""
        if era == cls.era:
            return cls
        return type(f"Tau3MuSchema_{era}", (cls,), {"era": era})

    # -- Run 2: std::vector branches, one offsets per branch -------------------------
    def _build_run2(self, branch_forms: dict[str, Any]) -> dict[str, Any]:
        candidate = dict(RUN2.candidate(self.era))
        if RUN2.truth in branch_forms:
            candidate["truth"] = RUN2.truth
        groups: dict[str, dict[str, str]] = {
            "Candidate": candidate,
            "Muon": dict(RUN2.muon),
            "Track": dict(RUN2.track),
            "HLTPath": {"name": RUN2.hlt_name, "decision": RUN2.hlt_decision},
            "L1Seed": {"name": RUN2.l1_name, "decision": RUN2.l1_decision},
        }
        output: dict[str, Any] = {}
        for key, branch in RUN2.event.items():
            _require(branch_forms, [branch], "Run 2 event id")
            output[key] = branch_forms[branch]
        for collection, fields in groups.items():
            _require(branch_forms, list(fields.values()), f"Run 2 collection {collection}")
            if collection in ("HLTPath", "L1Seed"):
                # names and decisions stay separate lists (the kernel checks their
                # lengths): zipping a vector<string> into a record is not dask-safe
                output[collection] = {
                    "class": "RecordArray",
                    "fields": list(fields),
                    "contents": [branch_forms[branch] for branch in fields.values()],
                    "form_key": None,
                }
                continue
            output[collection] = zip_forms(
                {name: branch_forms[branch] for name, branch in fields.items()},
                collection,
                record_name=None,
            )
            # each branch with its own offsets, so that unequal lengths can be detected
            output[f"_{collection}Branches"] = {
                "class": "RecordArray",
                "fields": list(fields.values()),
                "contents": [branch_forms[branch] for branch in fields.values()],
                "form_key": None,
            }
        return output

    # -- Run 3: nanoAOD C arrays with counters ---------------------------------------
    def _build_run3(self, branch_forms: dict[str, Any]) -> dict[str, Any]:
        output: dict[str, Any] = {}
        for key, branch in RUN3.event.items():
            _require(branch_forms, [branch], "Run 3 event id")
            output[key] = branch_forms[branch]
        collections = {
            "Candidate": (RUN3.candidate_collection, RUN3.candidate_fields),
            "Muon": (RUN3.muon_collection, RUN3.muon_fields),
            "Track": (RUN3.track_collection, RUN3.track_fields),
        }
        for name, (collection, fields) in collections.items():
            counter = RUN3.counter(collection)
            _require(branch_forms, [counter], f"Run 3 collection {collection}")
            offsets = transforms.counts2offsets_form(branch_forms[counter])
            present = {
                key: branch_forms[RUN3.branch(collection, value)]
                for key, value in fields.items()
                if RUN3.branch(collection, value) in branch_forms
            }
            needed = [k for k in fields if k not in present and k != "truth"]
            if needed:
                missing = [RUN3.branch(collection, fields[k]) for k in needed]
                raise LayoutError(f"Run 3 collection {collection}: missing branch(es) {missing}")
            output[name] = zip_forms(present, name, record_name=None, offsets=offsets)
        for prefix in ("HLT", "L1"):
            bits = {
                key[len(prefix) + 1 :]: form
                for key, form in branch_forms.items()
                if key.startswith(prefix + "_") and form["class"] == "NumpyArray"
            }
            if not bits:
                raise LayoutError(f"Run 3 trigger: no {prefix}_* bool branches")
            output[prefix] = zip_forms(bits, prefix)
        return output

    @classmethod
    def behavior(cls) -> dict:
        from coffea.nanoevents.methods import base

        return base.behavior
