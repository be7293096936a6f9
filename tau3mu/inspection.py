"""Input inspection: every file opened before processing, bad ones named or left out.

:func:`inspect_inputs` opens every file of a fileset (:func:`tau3mu.filecheck.file_verdict`):
a missing file, a file that is not ROOT, a truncated one, a missing tree or branch, a
file of another run period than its dataset's era all get a message naming the file and
the problem; with ``skip_bad_files`` they are reported and left out. Its
:class:`Inspection` holds what the Runner and the dask-awkward graph would otherwise
open every file again to learn (entries, UUIDs).
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from coffea.processor.executor import FileMeta

from tau3mu import opentrees
from tau3mu.cache import InspectionCache
from tau3mu.config import SelectionConfig
from tau3mu.filecheck import EraMismatchError, FileRules, InputFileError, Verdict, file_verdict
from tau3mu.reading import BranchFilter
from tau3mu.schemas import required_branches, schema_branch
from tau3mu.xrootd import is_remote

__all__ = [
    "EraMismatchError",
    "InputFileError",
    "Inspection",
    "check_one_file_once",
    "inspect_inputs",
    "known_entries",
]

log = logging.getLogger(__name__)


@dataclass
class Inspection:
    """Result of :func:`inspect_inputs`: the usable fileset and what was left out."""

    fileset: dict[str, Any]
    entries: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> file -> events
    skipped: list[dict[str, Any]] = field(default_factory=list)
    uuids: dict[str, bytes] = field(default_factory=dict)  # file -> ROOT file UUID
    #: file -> the branches the schema builds from that it has (empty where a cached
    #: verdict did not record them)
    branches: dict[str, frozenset[str]] = field(default_factory=dict)
    known_good: int = 0  # files not reopened: found good by an earlier run, unchanged

    def coffea_metadata(self) -> dict[Any, dict[str, Any]]:
        """What coffea's Runner would fetch by opening every file again, from this pass.

        Given to the Runner as its ``metadata_cache``, so it does not reopen the files to
        preprocess them (each open deserialises all ~280 branches of a Run 2 tree).
        """
        cache = {}
        for dataset, spec in self.fileset.items():
            user = spec.get("metadata")
            for path, tree in spec["files"].items():
                meta = {**(user or {}), "numentries": self.entries[dataset][path]}
                meta["uuid"] = self.uuids[path]
                cache[FileMeta(dataset, path, tree, user)] = meta
        return cache

    def steps_fileset(self, step_size: int) -> dict[str, Any]:
        """The fileset with entry steps, as ``coffea.dataset_tools.preprocess`` returns it.

        For the dask-awkward path: coffea's own preprocessing would open every file
        again. Steps follow coffea's rule: ``round(entries / step_size)`` steps of equal
        size.
        """
        out: dict[str, Any] = {}
        for dataset, spec in self.fileset.items():
            files = {}
            for path, tree in spec["files"].items():
                entries = self.entries[dataset][path]
                n = max(round(entries / step_size), 1)
                size = math.ceil(entries / n)
                steps = [[i * size, min((i + 1) * size, entries)] for i in range(n)]
                files[path] = {
                    "object_path": tree,
                    "steps": steps if entries else [[0, 0]],
                    "num_entries": entries,
                    "uuid": str(uuidlib.UUID(bytes=self.uuids[path])),
                }
            out[dataset] = {**spec, "files": files}
        return out

    @property
    def total(self) -> int:
        """Events in the usable files."""
        return sum(sum(files.values()) for files in self.entries.values())


def _inspect_all(
    jobs: list[tuple[str, str]],
    rules: FileRules,
    threads: int,
    client: Any = None,
    keep: list[bool] | None = None,
    branches: BranchFilter = schema_branch,
) -> list[Verdict]:
    """Inspect files concurrently: on the Dask workers when there is a client (opening a
    file is Python-bound work, which parallelises across processes, not threads), else on
    threads (opening remote files is mostly waiting on the network). ``keep``: per job,
    whether the opening process keeps the file's tree for the Runner's chunks;
    ``branches``: those the trees are read for."""
    keep = keep if keep is not None else [False] * len(jobs)
    if client is not None and len(jobs) > 1:
        paths, trees = zip(*jobs, strict=True)
        n = len(jobs)
        futures = client.map(
            file_verdict, paths, trees, [rules] * n, keep, [branches] * n, pure=False
        )
        return list(client.gather(futures))

    def verdict_of(job: tuple[str, str], keep_tree: bool) -> Verdict:
        return file_verdict(job[0], job[1], rules, keep_tree, branches)

    if threads <= 1 or len(jobs) <= 1:
        return [verdict_of(job, k) for job, k in zip(jobs, keep, strict=True)]

    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        return list(pool.map(verdict_of, jobs, keep))


def _inspect_known(
    jobs: list[tuple[str, str, str]],
    rules: FileRules,
    threads: int,
    client: Any,
    known: InspectionCache | None,
    keep_trees: bool = False,
    branches: BranchFilter = schema_branch,
) -> list[Verdict]:
    """Verdicts in ``jobs`` order: remembered ones from ``known``, the rest inspected now
    (and remembered when good)."""
    verdicts: list[Verdict | None] = [None] * len(jobs)
    todo = []
    for i, (_, path, tree) in enumerate(jobs):
        hit = known.get(path, tree) if known is not None else None
        if hit is not None:
            verdicts[i] = Verdict(hit[0], hit[1], branches=hit[2])
        else:
            todo.append(i)
    # the Runner takes the files in this order and a process keeps max_files of them: keep
    # the first ones, which it reaches before a later open evicts them
    keep = [keep_trees and i < opentrees.kept_trees().max_files for i in todo]
    todo_jobs = [(jobs[i][1], jobs[i][2]) for i in todo]
    fresh = _inspect_all(todo_jobs, rules, threads, client, keep, branches)
    for i, verdict in zip(todo, fresh, strict=True):
        verdicts[i] = verdict
        if known is not None and verdict.reason is None and verdict.entries:
            known.put(jobs[i][1], jobs[i][2], verdict.entries, verdict.uuid, verdict.branches)
    if known is not None and known.hits:
        log.info("%d of %d file(s) known good from an earlier run", known.hits, len(jobs))
    return [v for v in verdicts if v is not None]


def _rules_key(rules: FileRules, branches: BranchFilter = schema_branch) -> str:
    """What the inspection checks, for the cache key: the branches it requires, and the
    branches it reads trees for where those are not the schema's (a
    :class:`tau3mu.traced_branches.BranchSet`'s, whose verdicts say less about the
    branches it leaves out)."""
    names = sorted(required_branches("run2", rules.year) | required_branches("run3"))
    if branches is not schema_branch:
        read, ruled_out = getattr(branches, "read", ()), getattr(branches, "ruled_out", ())
        names += ["read for", *sorted(read), "not", *sorted(ruled_out)]
    return hashlib.sha256("\n".join([str(rules.era), *names]).encode()).hexdigest()[:16]


def _inspect_by_rules(
    jobs: list[tuple[str, str, str]],
    rules: dict[str, FileRules],
    threads: int,
    client: Any,
    cache: bool,
    keep_trees: bool,
    branches: BranchFilter,
) -> tuple[list[Verdict], int]:
    """Verdicts in ``jobs`` order, the datasets of one rule set inspected together; and
    how many files the cache knew good."""
    verdicts: list[Verdict | None] = [None] * len(jobs)
    known_good = 0
    for rule in dict.fromkeys(rules.values()):
        positions = [i for i, job in enumerate(jobs) if rules[job[0]] == rule]
        key = _rules_key(rule, branches)
        known = InspectionCache.default(era=str(rule.era), rules=key) if cache else None
        group = [jobs[i] for i in positions]
        found = _inspect_known(group, rule, threads, client, known, keep_trees, branches)
        for i, verdict in zip(positions, found, strict=True):
            verdicts[i] = verdict
        known_good += known.hits if known is not None else 0
    return [v for v in verdicts if v is not None], known_good


def _rules_of(fileset: dict[str, Any], config: SelectionConfig) -> dict[str, FileRules]:
    """Each dataset's file rules: its ``metadata["era"]``, else ``config.era``."""
    return {
        d: FileRules.of((spec.get("metadata") or {}).get("era") or config.era, config)
        for d, spec in fileset.items()
    }


def known_entries(fileset: dict[str, Any], config: SelectionConfig) -> dict[str, int]:
    """Entries of the fileset's local files that an earlier inspection under the same
    rules found good and that have not changed since (:class:`InspectionCache`), by
    path; no file is opened. Files not known are not in the result."""
    known: dict[str, int] = {}
    for dataset, rule in _rules_of(fileset, config).items():
        cache = InspectionCache.default(era=str(rule.era), rules=_rules_key(rule))
        for path, tree in fileset[dataset]["files"].items():
            hit = cache.get(path, tree)
            if hit is not None:
                known[path] = hit[0]
    return known


def inspect_inputs(
    fileset: dict[str, Any],
    *,
    skip_bad_files: bool = False,
    config: SelectionConfig | None = None,
    threads: int | None = None,
    client: Any = None,
    cache: bool = True,
    keep_trees: bool = False,
    branches: BranchFilter = schema_branch,
) -> Inspection:
    """Open every file; raise on the first bad one, or (skipping) report and drop it.

    With a Dask ``client`` the files are opened on its workers. Otherwise they are opened
    ``threads`` at a time (default: 8 when any file is remote, else 1, since opening a
    local file is Python-bound work that threads do not speed up). With ``cache``, a
    local file found good by an earlier run and unchanged since is not opened again
    (:class:`tau3mu.cache.InspectionCache`). With ``keep_trees``, the process that opens a
    local file keeps its tree for the Runner's chunks (:mod:`tau3mu.opentrees`), read for
    ``branches`` (the schema's, or those the run reads: :mod:`tau3mu.traced_branches`;
    they include the branches the era requires).

    Each dataset's files are checked against its era (``metadata["era"]``, else
    ``config.era``; :class:`tau3mu.config.SelectionConfig`): the layout of the era's run
    period and, for Run 2, the trigger-match branches of the era's year.

    Raises :class:`EraMismatchError` for a file of another run period (skipping or not),
    :class:`InputFileError` for a bad file (unless ``skip_bad_files``) and for one ROOT
    file listed twice in a dataset.
    """
    config = config or SelectionConfig()
    jobs = [(d, path, tree) for d, spec in fileset.items() for path, tree in spec["files"].items()]
    if threads is None:
        threads = 8 if any(is_remote(path) for _, path, _ in jobs) else 1
    rules = _rules_of(fileset, config)
    verdicts, known_good = _inspect_by_rules(
        jobs, rules, threads, client, cache, keep_trees, branches
    )
    result = Inspection(fileset={}, entries={d: {} for d in fileset}, known_good=known_good)
    for (dataset, path, tree), verdict in zip(jobs, verdicts, strict=True):
        if verdict.fatal:
            raise EraMismatchError(f"{path} (dataset {dataset!r}): {verdict.reason}")
        if verdict.reason is not None:  # a valid tree with 0 entries is usable: 0 events
            _skip(result, dataset, path, verdict, skip_bad_files)
            continue
        spec = fileset[dataset]
        usable = result.fileset.setdefault(dataset, {**spec, "files": {}})
        usable["files"][path] = tree
        result.entries[dataset][path] = verdict.entries
        result.uuids[path] = verdict.uuid
        result.branches[path] = verdict.branches
    check_one_file_once(result.fileset, result.uuids)
    return result


def _skip(result: Inspection, dataset: str, path: str, verdict: Verdict, skipping: bool) -> None:
    """Report a bad file as skipped in ``result``, or raise InputFileError."""
    message = f"{path}: {verdict.reason}"
    if not skipping:
        raise InputFileError(message)
    log.warning("skipping %s", message)
    result.skipped.append(
        {
            "dataset": dataset,
            "file": path,
            # None: not even the event count could be read
            "events": verdict.entries if verdict.entries else None,
            "error": verdict.reason,
        }
    )


def check_one_file_once(fileset: dict[str, Any], uuids: dict[str, bytes]) -> None:
    """Raise InputFileError when two files of one dataset are one ROOT file (same file
    UUID: a copy, or a name the datasets file could not resolve, such as two URLs)."""
    for dataset, spec in fileset.items():
        seen: dict[bytes, str] = {}
        for path in spec["files"]:
            uuid = uuids.get(path)
            if not uuid:
                continue
            if uuid in seen:
                raise InputFileError(
                    f"dataset {dataset!r}: {seen[uuid]} and {path} are the same ROOT file "
                    f"(file UUID {uuid.hex()}): listed twice, its events would count twice"
                )
            seen[uuid] = path
