"""The branches a run reads: its processor traced once per kind of dataset, so that every
file's tree is read for those branches only.

Opening a file costs mostly uproot deserialising, in Python, the metadata of the
branches its tree is read for: ~0.5 ms per branch of a Run 2 ntuple (docs/benchmarks.md,
"Small files"). The schema's filter (:func:`tau3mu.schemas.schema_branch`) accepts every
branch the schema could build from, for any era and sample (63 of a Run 2 ntuple's
277); a run over one year's data reads 38 of them. :func:`run_branches` opens the first
file of each kind of dataset (same tree name and metadata, whatever the dataset's name)
for the schema's branches, runs the processor on its events cut to length zero (coffea's
public ``coffea.nanoevents.trace.trace_with_length_zero_array``: the branches whose
buffers it touches), and gives a :class:`BranchSet`: the inspection's opens, the
Runner's and the groups' then read trees for it, and NanoEvents types it.

The schema decides what it builds from which branches a file has; leaving out a branch
nothing reads must not change what the processor reads. Each kind is therefore traced
twice: with the schema's branches, then with the run's set (the kinds' sets joined,
from the same kept tree); a set with which the processor reads other branches from any
kind's traced file is not used (the run reads the schema's).

What a trace rules out is only what it saw: a branch the traced file has and the
processor did not read; the branches the inspection requires of each era
(:func:`tau3mu.schemas.required_branches`) are read in any case. A length-zero trace
sees every branch the processor reads as long as what it reads depends on the events'
fields and metadata, not on their values: tau3mu's processors choose by sample type,
era and the fields a file has, never by a value. What it reads does depend on which
fields a file has (a simulation file without generated particles does not read the
candidates' eta and phi), so the set holds only for files with the traced file's
branches: :func:`traced_inspection` learns every file's branches (the lazy trees name
the branches they leave out; the inspection cache keeps them) and, if one file of a
dataset has other branches than its kind's traced file, inspects the files again for
the schema's branches (``tests/test_traced_branches.py`` checks the outputs against the
schema's filter).

A trace costs one open (kept for the inspection and the chunks) and two processor calls
on empty arrays (the inspection cache, :mod:`tau3mu.cache`, keeps a traced run's
verdicts apart from the others'). It is made where the files are many
(:data:`TRACE_MIN_FILES`), lazy trees are on (:func:`tau3mu.reading.lazy_trees`), every
dataset has an era, and ``TAU3MU_TRACED_BRANCHES`` is not ``off``. If no file of a kind
can be traced, the run reads the schema's branches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uproot

from tau3mu import opentrees
from tau3mu.config import SelectionConfig
from tau3mu.eras import period_of
from tau3mu.inspection import Inspection, inspect_inputs
from tau3mu.lazytrees import branch_names
from tau3mu.reading import (
    BranchFilter,
    iteritems_options,
    lazy_trees,
    prepare_process,
    switched_off,
    uproot_options,
)
from tau3mu.schemas import Tau3MuSchema, required_branches, schema_branch

__all__ = [
    "TRACED_BRANCHES_ENV",
    "TRACE_MIN_FILES",
    "BranchSet",
    "Traced",
    "run_branches",
    "trace_file",
    "traced_inspection",
    "worth_tracing",
]

log = logging.getLogger(__name__)

#: ``off`` reads the schema's branches in every run, for side-by-side measurements
TRACED_BRANCHES_ENV = "TAU3MU_TRACED_BRANCHES"
#: files a run holds at least before it is traced: a trace costs about two opens and a
#: processor call on empty arrays (~0.1 s, more in a process whose first call it is),
#: each later open saves ~0.5 ms per branch ruled out (~12 ms for a year's Run 2 data)
TRACE_MIN_FILES = 32
#: files of a kind tried before the run gives up tracing (the inspection names bad ones)
_TRIES_PER_KIND = 3


@dataclass(frozen=True)
class BranchSet:
    """A branch filter (uproot's ``filter_name``, :mod:`tau3mu.lazytrees`' ``wanted``):
    the schema's branches but those ``ruled_out``, with ``read`` kept in any case.

    >>> branches = BranchSet(read=frozenset({"MuonPt"}), ruled_out=frozenset({"MuonPt", "Muon_isMedium"}))
    >>> branches("MuonPt"), branches("Muon_isMedium"), branches("MuonEta"), branches("PVtx_x")
    (True, False, True, False)
    """

    read: frozenset[str]
    ruled_out: frozenset[str]

    def __call__(self, name: str) -> bool:
        return schema_branch(name) and (name in self.read or name not in self.ruled_out)

    def __or__(self, other: BranchSet) -> BranchSet:
        """The branches either accepts."""
        return BranchSet(self.read | other.read, self.ruled_out & other.ruled_out)

    def within(self, other: Any) -> bool:
        """Whether ``other`` (a filter) accepts every branch this one does: the schema's
        filter, or an equal set."""
        return other is schema_branch or other == self


def worth_tracing(fileset: dict[str, Any], config: SelectionConfig) -> bool:
    """Whether :func:`run_branches` is worth its cost for ``fileset`` (see the module's
    docstring)."""
    files = sum(len(spec["files"]) for spec in fileset.values())
    eras = all((spec.get("metadata") or {}).get("era") or config.era for spec in fileset.values())
    return (
        files >= TRACE_MIN_FILES and eras and lazy_trees() and not switched_off(TRACED_BRANCHES_ENV)
    )


def trace_file(
    path: str,
    tree: str,
    metadata: dict[str, Any],
    processor: Any,
    branches: BranchFilter = schema_branch,
) -> tuple[frozenset[str], frozenset[str]]:
    """The branches of ``path``'s ``tree`` that ``processor`` (or its ``process``) reads
    from events of ``metadata`` (the Runner's: ``dataset``, ``filename``, ... and the
    dataset's own) typed from ``branches``, and those the file has that ``branches``
    accepts (:func:`tau3mu.lazytrees.branch_names`). The tree is kept
    (:mod:`tau3mu.opentrees`). Raises what opening the file or the processor raises."""
    from coffea.nanoevents import NanoEventsFactory
    from coffea.nanoevents.trace import trace_with_length_zero_array

    prepare_process()  # on a Dask worker, this may be its first open
    process = getattr(processor, "process", processor)
    options = uproot_options([path], keep_trees=True, branches=branches)
    with uproot.open({path: None}, **options) as file:
        has = frozenset(name for name in branch_names(file[tree]) if branches(name))
        events = NanoEventsFactory.from_root(
            file,
            treepath=tree,
            schemaclass=Tau3MuSchema,
            metadata=metadata,
            mode="virtual",
            entry_start=0,
            entry_stop=0,
            iteritems_options=iteritems_options(branches),
        ).events()
        read = trace_with_length_zero_array(process, events, throw=True)
    return frozenset(read), has


def _kinds(fileset: dict[str, Any]) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """Per kind of dataset (tree name and metadata but its name), its files as
    (path, tree, the Runner's metadata of the file's first chunk)."""
    kinds: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for dataset, spec in fileset.items():
        user = {k: v for k, v in (spec.get("metadata") or {}).items() if k != "dataset"}
        for path, tree in spec["files"].items():
            key = json.dumps([tree, user], sort_keys=True, default=str)
            metadata = {"dataset": dataset, "filename": path, "treename": tree}
            metadata |= {"entrystart": 0, "entrystop": 0, "fileuuid": "", **user}
            kinds.setdefault(key, []).append((path, tree, metadata))
    yield from kinds.values()


#: a kind's traced file: (path, tree, metadata), what the processor read from it, the
#: schema's branches it has
_TracedFile = tuple[tuple[str, str, dict[str, Any]], frozenset[str], frozenset[str]]


def _kind_branches(
    files: list[tuple[str, str, dict[str, Any]]], processor: Any, config: SelectionConfig
) -> tuple[BranchSet, _TracedFile] | None:
    """The branches a kind's files are read for, traced on the first file that opens,
    and that file; None if none of the first few opens."""
    for path, tree, metadata in files[:_TRIES_PER_KIND]:
        try:
            read, has = trace_file(path, tree, metadata, processor)
            era = str(metadata.get("era") or config.era)  # every kind has one (worth_tracing)
            required = required_branches(period_of(era), config.trigger_match_year(era))
        except Exception as err:  # a bad file: the inspection names it
            log.info("tracing the processor's branches on %s failed: %s", path, err)
            continue
        branches = BranchSet(read=read | required, ruled_out=has - read - required)
        return branches, ((path, tree, metadata), read, has)
    return None


def _reads_alike(traced: _TracedFile, processor: Any, branches: BranchSet) -> bool:
    """Whether the processor reads from the traced file's events typed from ``branches``
    what it read from them typed from the schema's (the schema builds by which branches
    a file has: see the module's docstring)."""
    (path, tree, metadata), read, _ = traced
    try:
        again, _ = trace_file(path, tree, metadata, processor, branches)
    except Exception as err:  # the processor failing without the branches left out
        log.info("tracing the processor's branches on %s again failed: %s", path, err)
        return False
    if again != read:
        log.info("%s: other branches read once the unread ones are left out", path)
    return again == read


@dataclass(frozen=True)
class Traced:
    """What tracing a run found: the branches it reads, and per dataset the schema's
    branches of the file its kind was traced on (the set holds for files that have
    those)."""

    branches: BranchSet
    forms: dict[str, frozenset[str]]


def _joined(
    kinds: list[list[tuple[str, str, dict[str, Any]]]], processor: Any, config: SelectionConfig
) -> Traced | None:
    """The kinds' :func:`_kind_branches` joined, each kind's traced file read alike with
    the union (:func:`_reads_alike`); None if a kind could not be traced or is not."""
    found = [_kind_branches(files, processor, config) for files in kinds]
    if not found or any(kind is None for kind in found):
        return None
    traced = [kind for kind in found if kind is not None]
    union = traced[0][0]
    for branches, _ in traced[1:]:
        union = union | branches
    if not all(_reads_alike(file, processor, union) for _, file in traced):
        return None
    forms = {
        metadata["dataset"]: has
        for files, (_, (_, _, has)) in zip(kinds, traced, strict=True)
        for _, _, metadata in files
    }
    return Traced(union, forms)


def run_branches(
    fileset: dict[str, Any],
    processor: Any,
    config: SelectionConfig | None = None,
    client: Any = None,
) -> Traced | None:
    """The branches a run of ``processor`` over ``fileset`` reads (see the module's
    docstring), with ``config``'s era for datasets without one; None (read the schema's)
    where :func:`worth_tracing` says no or a kind could not be traced. With a Dask
    ``client``, traced on one of its workers (they read the files, and are warm); a
    worker lost meanwhile costs the trace, not the run."""
    config = config or SelectionConfig()
    if not worth_tracing(fileset, config):
        return None
    kinds = list(_kinds(fileset))
    try:
        if client is not None:
            traced = client.submit(_joined, kinds, processor, config, pure=False).result()
        else:
            traced = _joined(kinds, processor, config)
    except Exception as err:  # a worker lost while tracing: the inspection goes on
        log.info("tracing the processor's branches failed: %s", err)
        return None
    if traced is not None:
        read, ruled_out = traced.branches.read, traced.branches.ruled_out
        log.info("reading %d branches, %d ruled out", len(read), len(ruled_out))
    return traced


def _other_branches(inspection: Inspection, traced: Traced) -> str | None:
    """A file of ``inspection`` whose schema branches are not those its dataset's kind
    was traced on, or None."""
    for dataset, spec in inspection.fileset.items():
        for path in spec["files"]:
            if inspection.branches.get(path) != traced.forms[dataset]:
                return path
    return None


def traced_inspection(
    fileset: dict[str, Any],
    processor: Any,
    config: SelectionConfig | None = None,
    *,
    client: Any = None,
    cache: bool = True,
    **options: Any,
) -> tuple[Inspection, BranchFilter]:
    """The inspection of ``fileset`` for a run of ``processor`` (``client``, ``cache``
    and ``options`` as :func:`tau3mu.inspection.inspect_inputs` takes them), and the
    branches the run reads. Where traced (:func:`run_branches`), the files are inspected
    for the traced set (the inspection, or its cache of an earlier run with the same set,
    says which branches each file has), and the set is used only if every file has the
    schema branches of the file its kind was traced on; otherwise the kept trees are let
    go and the files inspected again for the schema's branches. Raises what the
    inspection raises."""
    config = config or SelectionConfig()
    traced = run_branches(fileset, processor, config, client)
    if traced is not None:
        inspection = inspect_inputs(
            fileset, config=config, client=client, cache=cache, branches=traced.branches, **options
        )
        other = _other_branches(inspection, traced)
        if other is None:
            return inspection, traced.branches
        log.info(
            "%s has other branches than its dataset's traced file: reading the schema's", other
        )
        opentrees.release(client)
    inspection = inspect_inputs(fileset, config=config, client=client, cache=cache, **options)
    return inspection, schema_branch
