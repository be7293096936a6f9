"""Bad input and faults: clear errors, skipped work reported, nothing lost, resumable runs.

- :func:`inspect_inputs` opens every file before processing: a missing file, a file that
  is not ROOT, a truncated one, a missing tree or branch, all get a message naming the
  file and the problem; with ``skip_bad_files`` they are reported and left out.
- :func:`check_accounting` proves that processed plus skipped events equal the input.
- :class:`BackoffRunner` retries a chunk's transient failures with exponential backoff
  (an XRootD server that restarts, a network blip; coffea's own retries are immediate),
  names the file and entries of a chunk that fails, or with ``skip_bad_files`` reports
  it (file, entry range, events, error) and goes on.
- :class:`AtomicCheckpointer` (:mod:`tau3mu.checkpoints`) keeps each finished chunk's
  output, written atomically, keyed by the selection and signed, so an interrupted run
  resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from coffea import processor

from tau3mu.checkpoints import (  # noqa: F401 (re-exported)
    AtomicCheckpointer,
    CheckpointError,
    checkpoint_key,
)
from tau3mu.errors import OptionError, Tau3MuError

log = logging.getLogger(__name__)


class InputFileError(Tau3MuError, RuntimeError):
    """A file that cannot be analysed, with the reason."""


class AccountingError(Tau3MuError, RuntimeError):
    """Processed plus skipped events do not add up to the input."""


@dataclass
class Inspection:
    """Result of :func:`inspect_inputs`: the usable fileset and what was left out."""

    fileset: dict[str, Any]
    entries: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> file -> events
    skipped: list[dict[str, Any]] = field(default_factory=list)
    uuids: dict[str, bytes] = field(default_factory=dict)  # file -> ROOT file UUID
    known_good: int = 0  # files not reopened: found good by an earlier run, unchanged

    def coffea_metadata(self) -> dict[Any, dict[str, Any]]:
        """What coffea's Runner would fetch by opening every file again, from this pass.

        Given to the Runner as its ``metadata_cache``, so it does not reopen the files to
        preprocess them (each open deserialises all ~280 branches of a Run 2 tree).
        """
        from coffea.processor.executor import FileMeta

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

        For the dask-awkward path: coffea's own preprocessing would open every file again
        (and took ~0.8 s per full-width Run 2 file here). Steps follow coffea's rule:
        ``round(entries / step_size)`` steps of equal size.
        """
        import uuid

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
                    "uuid": str(uuid.UUID(bytes=self.uuids[path])),
                }
            out[dataset] = {**spec, "files": files}
        return out

    @property
    def total(self) -> int:
        return sum(sum(files.values()) for files in self.entries.values())


@dataclass(frozen=True)
class _Verdict:
    entries: int = 0
    uuid: bytes = b""
    reason: str | None = None
    #: a mistake of the datasets file, not of the file: never skipped
    fatal: bool = False


class EraMismatchError(InputFileError):
    """A file whose layout is not the one of its dataset's era's run period."""


@dataclass(frozen=True)
class _Rules:
    """What a file of a dataset must satisfy: its era (None: any period) and the year of
    Run 2's trigger-match branches."""

    era: str | None
    year: str

    @classmethod
    def of(cls, era: str | None, config: Any) -> _Rules:
        return cls(era, config.trigger_match_year(era))


def _problem(path: str, tree: str, rules: _Rules, keep_trees: bool = False) -> _Verdict:
    """The file's entries and UUID if it is usable, or the reason it is not.

    With ``keep_trees``, a local file's tree is kept for the Runner's chunks, should
    they run in this process (:mod:`tau3mu.opentrees`)."""
    import uproot

    from tau3mu import opentrees

    _configure_this_process()  # on a Dask worker, this may be its first root:// open
    options = opentrees.uproot_options() if keep_trees and opentrees.is_local(path) else {}
    try:
        f = uproot.open(path, timeout=60, **options)
    except FileNotFoundError:
        return _Verdict(reason="file not found")
    except Exception as err:  # uproot raises ValueError, OSError, ... for non-ROOT files
        return _Verdict(reason=f"cannot be opened as a ROOT file ({type(err).__name__}: {err})")
    entries = 0
    try:
        if tree not in f:
            keys = sorted({k.split(";")[0] for k in f.keys(recursive=True)})[:8]
            return _Verdict(reason=f"no tree {tree!r} (the file has {keys})")
        t = f[tree]
        entries = int(t.num_entries)  # what a skipped file held, for the accounting
        verdict = _tree_problem(t, tree, rules, entries)
        if verdict is not None:
            return verdict
        if entries:
            # read the basket that lies furthest into the file: truncated files fail here,
            # not mid-run
            t[_furthest_branch(t)].array(entry_start=entries - 1, entry_stop=entries, library="np")
        return _Verdict(entries, bytes(f.file.fUUID))
    except Exception as err:
        return _Verdict(entries, reason=f"unreadable ({type(err).__name__}: {err})")
    finally:
        f.close()


def _furthest_branch(t: Any) -> str:
    """The branch whose last basket starts furthest into the file (a file cut short
    loses that basket first); the first branch by name if no basket is outside the tree."""
    furthest, where = sorted(t.keys())[0], -1
    for name in t.keys():  # noqa: SIM118 (branch names)
        branch = t[name]
        if branch.num_baskets:
            seek = int(branch.member("fBasketSeek")[branch.num_baskets - 1])
            if seek > where:
                furthest, where = name, seek
    return furthest


def _tree_problem(t: Any, tree: str, rules: _Rules, entries: int) -> _Verdict | None:
    """Why the tree cannot serve its dataset (layout, era, branches, types), or None."""
    from tau3mu.eras import layout_mismatch
    from tau3mu.layouts import RUN2, RUN3
    from tau3mu.schemas import LayoutError, branch_type_problems, detect_layout

    branches = set(t.keys())
    try:
        layout = detect_layout(branches)
    except LayoutError as err:
        return _Verdict(entries, reason=str(err))
    mismatch = layout_mismatch(layout, rules.era) if rules.era is not None else None
    if mismatch:
        return _Verdict(entries, reason=mismatch, fatal=True)
    required = required_branches(layout, rules.year)
    missing = sorted(required - branches)
    if layout == "run2" and RUN2.l1_decision in missing and RUN2.l1_final_decision in branches:
        missing.remove(RUN2.l1_decision)  # the producer version with initial/final decisions
    if missing:
        return _Verdict(entries, reason=f"tree {tree!r} lacks needed branch(es) {missing}")
    if layout == "run3" and not (
        any(b.startswith(RUN3.trigger_bit("HLT_")) for b in branches)
        and any(b.startswith(RUN3.trigger_bit("L1_")) for b in branches)
    ):
        return _Verdict(
            entries, reason=f"tree {tree!r} has no Trigger_HLT_* and Trigger_L1_* trigger bits"
        )
    needed = required | {RUN2.truth, RUN3.truth, RUN2.l1_final_decision}
    typenames = {b: t[b].typename for b in needed & branches}
    wrong = branch_type_problems(layout, typenames, rules.year)
    if wrong:
        return _Verdict(entries, reason=f"tree {tree!r}: " + "; ".join(wrong))
    return None


def _inspect_all(
    jobs: list[tuple[str, str]],
    rules: _Rules,
    threads: int,
    client: Any = None,
    keep: list[bool] | None = None,
) -> list[_Verdict]:
    """Inspect files concurrently: on the Dask workers when there is a client (opening a
    file is Python-bound work, which parallelises across processes, not threads), else on
    threads (opening remote files is mostly waiting on the network). ``keep``: per job,
    whether the opening process keeps the file's tree for the Runner's chunks."""
    keep = keep if keep is not None else [False] * len(jobs)
    if client is not None and len(jobs) > 1:
        paths, trees = zip(*jobs, strict=True)
        futures = client.map(_problem, paths, trees, [rules] * len(jobs), keep, pure=False)
        return list(client.gather(futures))
    if threads <= 1 or len(jobs) <= 1:
        return [_problem(path, tree, rules, k) for (path, tree), k in zip(jobs, keep, strict=True)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        return list(pool.map(lambda job, k: _problem(*job, rules, k), jobs, keep))


def _inspect_known(
    jobs: list[tuple[str, str, str]],
    rules: _Rules,
    threads: int,
    client: Any,
    known: Any,
    keep_trees: bool = False,
) -> list[_Verdict]:
    """Verdicts in ``jobs`` order: remembered ones from ``known``, the rest inspected now
    (and remembered when good)."""
    from tau3mu import opentrees

    verdicts: list[_Verdict | None] = [None] * len(jobs)
    todo = []
    for i, (_, path, tree) in enumerate(jobs):
        hit = known.get(path, tree) if known is not None else None
        if hit is not None:
            verdicts[i] = _Verdict(*hit)
        else:
            todo.append(i)
    # the Runner takes the files in this order and a process keeps max_files of them: keep
    # the first ones, which it reaches before a later open evicts them
    keep = [keep_trees and i < opentrees.kept_trees().max_files for i in todo]
    fresh = _inspect_all([jobs[i][1:] for i in todo], rules, threads, client, keep)
    for i, verdict in zip(todo, fresh, strict=True):
        verdicts[i] = verdict
        if known is not None and verdict.reason is None and verdict.entries:
            known.put(*jobs[i][1:], verdict.entries, verdict.uuid)
    if known is not None and known.hits:
        log.info("%d of %d file(s) known good from an earlier run", known.hits, len(jobs))
    return verdicts  # type: ignore[return-value]


def _rules_key(rules: _Rules) -> str:
    """What the inspection checks, for the cache key: the branches it requires."""
    names = sorted(required_branches("run2", rules.year) | required_branches("run3"))
    return hashlib.sha256("\n".join([str(rules.era), *names]).encode()).hexdigest()[:16]


def required_branches(layout: str, year: str = "2017") -> set[str]:
    """Branches the selection cannot do without (Run 2: with the trigger-match branches
    of ``year``; truth and the candidate's own kinematics are optional)."""
    from tau3mu.layouts import RUN2, RUN3

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
    return {
        *RUN3.event.values(),
        *RUN3.muon.values(),
        *RUN3.track.values(),
        *(v for k, v in RUN3.candidate().items() if k not in RUN3.optional_candidate),
    }


def inspect_inputs(
    fileset: dict[str, Any],
    *,
    skip_bad_files: bool = False,
    config: Any = None,
    threads: int | None = None,
    client: Any = None,
    cache: bool = True,
    keep_trees: bool = False,
) -> Inspection:
    """Open every file; raise on the first bad one, or (skipping) report and drop it.

    With a Dask ``client`` the files are opened on its workers. Otherwise they are opened
    ``threads`` at a time (default: 8 when any file is remote, else 1, since opening a
    local file is Python-bound work that threads do not speed up). With ``cache``, a
    local file found good by an earlier run and unchanged since is not opened again
    (:class:`tau3mu.cache.InspectionCache`). With ``keep_trees``, the process that opens a
    local file keeps its tree for the Runner's chunks (:mod:`tau3mu.opentrees`).

    Each dataset's files are checked against its era (``metadata["era"]``, else
    ``config.era``; :class:`tau3mu.config.SelectionConfig`): the layout of the era's run
    period (a mismatch raises :class:`EraMismatchError`, skipping or not) and, for Run 2,
    the trigger-match branches of the era's year.
    """
    from tau3mu.config import SelectionConfig
    from tau3mu.xrootd import is_remote

    config = config or SelectionConfig()
    jobs = [(d, path, tree) for d, spec in fileset.items() for path, tree in spec["files"].items()]
    if threads is None:
        threads = 8 if any(is_remote(path) for _, path, _ in jobs) else 1
    rules = {
        d: _Rules.of((spec.get("metadata") or {}).get("era") or config.era, config)
        for d, spec in fileset.items()
    }
    verdicts, known_good = _inspect_by_rules(jobs, rules, threads, client, cache, keep_trees)
    usable: dict[str, Any] = {}
    result = Inspection(fileset=usable, known_good=known_good)
    verdicts = iter(verdicts)
    for dataset, spec in fileset.items():
        files = {}
        result.entries[dataset] = {}
        for path, tree in spec["files"].items():
            verdict = next(verdicts)
            reason = verdict.reason  # a valid tree with 0 entries is usable: 0 events
            if verdict.fatal:
                raise EraMismatchError(f"{path} (dataset {dataset!r}): {reason}")
            if reason is not None:
                message = f"{path}: {reason}"
                if not skip_bad_files:
                    raise InputFileError(message)
                log.warning("skipping %s", message)
                result.skipped.append(
                    {
                        "dataset": dataset,
                        "file": path,
                        # None: not even the event count could be read
                        "events": verdict.entries if verdict.entries else None,
                        "error": reason,
                    }
                )
                continue
            files[path] = tree
            result.entries[dataset][path] = verdict.entries
            result.uuids[path] = verdict.uuid
        if files:
            usable[dataset] = {**spec, "files": files}
    check_one_file_once(result.fileset, result.uuids)
    return result


def _inspect_by_rules(
    jobs: list[tuple[str, str, str]],
    rules: dict[str, _Rules],
    threads: int,
    client: Any,
    cache: bool,
    keep_trees: bool,
) -> tuple[list[_Verdict], int]:
    """Verdicts in ``jobs`` order, the datasets of one rule set inspected together; and
    how many files the cache knew good."""
    from tau3mu.cache import InspectionCache

    verdicts: list[_Verdict | None] = [None] * len(jobs)
    known_good = 0
    for rule in dict.fromkeys(rules.values()):
        positions = [i for i, job in enumerate(jobs) if rules[job[0]] == rule]
        known = (
            InspectionCache.default(era=str(rule.era), rules=_rules_key(rule)) if cache else None
        )
        group = [jobs[i] for i in positions]
        for i, verdict in zip(
            positions, _inspect_known(group, rule, threads, client, known, keep_trees), strict=True
        ):
            verdicts[i] = verdict
        known_good += known.hits if known is not None else 0
    return verdicts, known_good  # type: ignore[return-value]


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


def check_accounting(
    inspection: Inspection,
    cutflow: dict[str, Any],
    skipped_chunks: list[dict],
    *,
    partial: bool = False,
) -> dict[str, Any]:
    """Processed + skipped-chunk events must equal the events of the usable files.

    ``input_events`` counts every input file whose event count could be read, so it
    also equals processed + skipped chunks + skipped files' events; files that could
    not be read at all are listed with ``events: None``."""
    processed = sum(steps["events"]["events"] for steps in cutflow.values())
    skipped = sum(int(s["events"]) for s in skipped_chunks)
    expected = inspection.total
    in_skipped_files = sum(int(s["events"] or 0) for s in inspection.skipped)
    summary = {
        "input_events": expected + in_skipped_files,
        "usable_events": expected,
        "processed_events": processed,
        "skipped_chunk_events": skipped,
        "skipped_file_events": in_skipped_files,
        "unreadable_files": sum(s["events"] is None for s in inspection.skipped),
        "skipped_files": inspection.skipped,
        "skipped_chunks": skipped_chunks,
        "balanced": processed + skipped == expected,
        "partial": partial,
    }
    if processed + skipped != expected and not partial:
        raise AccountingError(
            f"events do not add up: {processed} processed + {skipped} in skipped chunks "
            f"!= {expected} in the usable input files"
        )
    return summary


def accounting_line(summary: dict[str, Any]) -> str:
    """One line that adds the events up, as :func:`check_accounting` checked them."""
    line = (
        f"accounting: {summary['input_events']:,} input events = "
        f"{summary['processed_events']:,} processed + "
        f"{summary['skipped_chunk_events']:,} in skipped chunks + "
        f"{summary['skipped_file_events']:,} in skipped files"
    )
    if summary.get("unreadable_files"):
        line += f" (+ {summary['unreadable_files']} unreadable file(s), events unknown)"
    if summary.get("resumed_chunks"):
        line += f"; {summary['resumed_chunks']} chunk(s) resumed from the checkpoint"
    return line


class ChunkError(InputFileError):
    """A chunk that cannot be analysed: its file, entry range and the cause."""


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from, outermost first."""
    chain: list[BaseException] = []
    while err is not None and err not in chain:
        chain.append(err)
        err = err.__cause__ or err.__context__
    return chain


def option_error(err: BaseException) -> OptionError | None:
    """The :class:`~tau3mu.errors.OptionError` under ``err`` (a checkpoint folder that
    cannot be written, ...), if any: a failure that no input file is to blame for."""
    return next((c for c in _chain(err) if isinstance(c, OptionError)), None)


def is_transient(err: BaseException) -> bool:
    """A failure that a later attempt may not meet: an I/O error (a server restarting, a
    network blip, a timeout), not one of the file itself (missing, unreadable, a corrupt
    basket, a bad value), which fails the same way every time."""
    permanent = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
    chain = _chain(err)
    return any(isinstance(c, OSError) for c in chain) and not any(
        isinstance(c, permanent) for c in chain
    )


def _work_item(args: tuple[Any, ...]) -> Any:
    """The coffea WorkItem a Runner closure was called with (None for other calls)."""
    from coffea.processor.executor import WorkItem

    first = args[0] if args else None
    if isinstance(first, tuple) and first and isinstance(first[0], WorkItem):
        first = first[0]  # the Runner's "heavy" mode sends (item, processor)
    return first if isinstance(first, WorkItem) else None


def error_cause(err: BaseException) -> str:
    """The original error under coffea's wrappers, as ``Type: message``."""
    cause = _chain(err)[-1]
    return f"{type(cause).__name__}: {cause}"


def skipped_chunk(dataset: str, path: str, start: int, stop: int, error: str) -> dict[str, Any]:
    """The report of a chunk left out: what the accounting and report.json list."""
    return {
        "dataset": dataset,
        "file": path,
        "entries": [start, stop],
        "events": stop - start,
        "error": error,
    }


def chunk_message(chunk: dict[str, Any]) -> str:
    """``FILE entries A-B: cause`` for a :func:`skipped_chunk` record."""
    start, stop = chunk["entries"]
    return f"{chunk['file']} entries {start}-{stop}: {chunk['error']}"


def retry_chunk(
    retries: int,
    skipbadfiles: Any,
    func: Any,
    *args: Any,
    at_least: int = 0,
    backoff: float = 1.0,
    use_result_type: bool = False,
    **kwargs: Any,
) -> Any:
    """Run one chunk: retry transient failures after 1, 2, 4, ... s; then, or at once for a
    failure of the file itself, raise :class:`ChunkError` naming the file and entries, or
    with ``skipbadfiles`` return the chunk as skipped (its events counted, nothing saved
    to a checkpoint, so a later run tries it again).

    coffea passes ``retries=0`` for its Dask executor (Dask would retry at once);
    ``at_least`` gives the chunk its retries on the worker instead. The process running
    the chunk gets tau3mu's XRootD client settings first, so that the client itself
    bridges a short outage (:data:`tau3mu.xrootd.XROOTD_CLIENT_SETTINGS`).
    """
    _configure_this_process()
    item = _work_item(args)
    retries = max(retries, at_least)
    delay = backoff
    for attempt in range(retries + 1):
        try:
            return func(*args, **kwargs)
        except Exception as err:
            if (mistake := option_error(err)) is not None:
                raise mistake from None  # the options' or outputs' fault, not the file's
            if item is None:
                if attempt == retries:
                    raise
            elif attempt == retries or not is_transient(err):
                entry = skipped_chunk(
                    item.dataset, item.filename, item.entrystart, item.entrystop, error_cause(err)
                )
                if not skipbadfiles or use_result_type:
                    raise ChunkError(chunk_message(entry)) from err
                entry["attempts"] = attempt + 1
                log.warning("skipping chunk %s", chunk_message(entry))
                return {"out": {"skipped": [entry]}, "metrics": {}}
            log.warning(
                "attempt %d of %d failed (%s); retrying in %.0f s",
                attempt + 1,
                retries + 1,
                err,
                delay,
            )
            time.sleep(delay)
            _forget_remote_connections()
            delay *= 2
    return None


@dataclass
class BackoffRunner(processor.Runner):
    """``coffea.processor.Runner`` whose chunks retry transient failures with backoff
    (coffea's own retries are immediate), on every executor, and whose failing chunks
    are named (file and entries) or, with ``skipbadfiles``, reported as skipped."""

    chunk_retries: int = 3
    backoff_base: float = 1.0

    @property
    def automatic_retries(self) -> Any:  # coffea calls it as a static function
        return partial(retry_chunk, at_least=self.chunk_retries, backoff=self.backoff_base)


def configure_xrootd() -> None:
    """Let the XRootD client of this process reconnect within seconds after a server
    outage (its defaults wait minutes): :data:`tau3mu.xrootd.XROOTD_CLIENT_SETTINGS`."""
    from tau3mu.xrootd import configure_xrootd_client

    configure_xrootd_client()


def _configure_this_process() -> None:
    """tau3mu's XRootD client settings, once per process: a futures or Dask worker starts
    with the client's defaults (what the submitting process set does not travel)."""
    from tau3mu.xrootd import ensure_xrootd_configured

    ensure_xrootd_configured()


def _forget_remote_connections() -> None:
    """Drop cached XRootD connections: after a server restart their sessions are stale."""
    from tau3mu.xrootd import reset_connections

    reset_connections()
