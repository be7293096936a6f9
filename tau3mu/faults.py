"""Bad input and faults: clear errors, skipped work reported, nothing lost, resumable runs.

- :func:`inspect_inputs` opens every file before processing: a missing file, a file that
  is not ROOT, a truncated one, a missing tree or branch, all get a message naming the
  file and the problem; with ``skip_bad_files`` they are reported and left out.
- :class:`SafeProcessor` turns a failing chunk into a report entry (file, entry range,
  events, error) instead of a crash, when the user asked to skip bad input.
- :func:`check_accounting` proves that processed plus skipped events equal the input.
- :class:`BackoffRunner` retries failed chunks with exponential backoff (an XRootD server
  that restarts, a network blip); coffea's own retries are immediate.
- :class:`AtomicCheckpointer` keeps each finished chunk's output, written atomically and
  keyed by the selection, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coffea import processor

log = logging.getLogger(__name__)


class InputFileError(RuntimeError):
    """A file that cannot be analysed, with the reason."""


class AccountingError(RuntimeError):
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


def _problem(path: str, tree: str, era: str, keep_trees: bool = False) -> _Verdict:
    """The file's entries and UUID if it is usable, or the reason it is not.

    With ``keep_trees``, a local file's tree is kept for the Runner's chunks, should
    they run in this process (:mod:`tau3mu.opentrees`)."""
    import uproot

    from tau3mu import opentrees
    from tau3mu.schemas import LayoutError, detect_layout

    options = opentrees.uproot_options() if keep_trees and opentrees.is_local(path) else {}
    try:
        f = uproot.open(path, timeout=60, **options)
    except FileNotFoundError:
        return _Verdict(reason="file not found")
    except Exception as err:  # uproot raises ValueError, OSError, ... for non-ROOT files
        return _Verdict(reason=f"cannot be opened as a ROOT file ({type(err).__name__}: {err})")
    try:
        if tree not in f:
            keys = sorted({k.split(";")[0] for k in f.keys(recursive=True)})[:8]
            return _Verdict(reason=f"no tree {tree!r} (the file has {keys})")
        t = f[tree]
        branches = set(t.keys())
        try:
            layout = detect_layout(branches)
        except LayoutError as err:
            return _Verdict(reason=str(err))
        missing = sorted(required_branches(layout, era) - branches)
        if missing:
            return _Verdict(reason=f"tree {tree!r} lacks needed branch(es) {missing}")
        entries = int(t.num_entries)
        if entries:
            # read the last basket of one branch: truncated files fail here, not mid-run
            t[sorted(branches)[0]].array(entry_start=entries - 1, entry_stop=entries, library="np")
        return _Verdict(entries, bytes(f.file.fUUID))
    except Exception as err:
        return _Verdict(reason=f"unreadable ({type(err).__name__}: {err})")
    finally:
        f.close()


def _inspect_all(
    jobs: list[tuple[str, str]],
    era: str,
    threads: int,
    client: Any = None,
    keep_trees: bool = False,
) -> list[_Verdict]:
    """Inspect files concurrently: on the Dask workers when there is a client (opening a
    file is Python-bound work, which parallelises across processes, not threads), else on
    threads (opening remote files is mostly waiting on the network)."""
    if client is not None and len(jobs) > 1:
        paths, trees = zip(*jobs, strict=True)
        futures = client.map(
            _problem, paths, trees, [era] * len(jobs), [keep_trees] * len(jobs), pure=False
        )
        return list(client.gather(futures))
    if threads <= 1 or len(jobs) <= 1:
        return [_problem(path, tree, era, keep_trees) for path, tree in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        return list(pool.map(lambda job: _problem(*job, era, keep_trees), jobs))


def _inspect_known(
    jobs: list[tuple[str, str, str]],
    era: str,
    threads: int,
    client: Any,
    known: Any,
    keep_trees: bool = False,
) -> list[_Verdict]:
    """Verdicts in ``jobs`` order: remembered ones from ``known``, the rest inspected now
    (and remembered when good)."""
    verdicts: list[_Verdict | None] = [None] * len(jobs)
    todo = []
    for i, (_, path, tree) in enumerate(jobs):
        hit = known.get(path, tree) if known is not None else None
        if hit is not None:
            verdicts[i] = _Verdict(*hit)
        else:
            todo.append(i)
    fresh = _inspect_all([jobs[i][1:] for i in todo], era, threads, client, keep_trees)
    for i, verdict in zip(todo, fresh, strict=True):
        verdicts[i] = verdict
        if known is not None and verdict.reason is None and verdict.entries:
            known.put(*jobs[i][1:], verdict.entries, verdict.uuid)
    if known is not None and known.hits:
        log.info("%d of %d file(s) known good from an earlier run", known.hits, len(jobs))
    return verdicts  # type: ignore[return-value]


def _rules(era: str) -> str:
    """What the inspection checks, for the cache key: the branches it requires."""
    names = sorted(required_branches("run2", era) | required_branches("run3", era))
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def required_branches(layout: str, era: str = "2017") -> set[str]:
    """Branches the selection cannot do without (truth and candidate kinematics are optional)."""
    from tau3mu.layouts import RUN2, RUN3

    if layout == "run2":
        return {
            *RUN2.event.values(),
            *RUN2.muon.values(),
            *RUN2.track.values(),
            *RUN2.candidate(era).values(),
            RUN2.hlt_name,
            RUN2.hlt_decision,
            RUN2.l1_name,
            RUN2.l1_decision,
        }
    optional = ("truth", "pt", "eta", "phi", "charge")
    return {
        *RUN3.event.values(),
        *RUN3.muon.values(),
        *RUN3.track.values(),
        *(v for k, v in RUN3.candidate().items() if k not in optional),
    }


def inspect_inputs(
    fileset: dict[str, Any],
    *,
    skip_bad_files: bool = False,
    era: str = "2017",
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
    """
    from tau3mu.cache import InspectionCache
    from tau3mu.xrootd import is_remote

    jobs = [(d, path, tree) for d, spec in fileset.items() for path, tree in spec["files"].items()]
    if threads is None:
        threads = 8 if any(is_remote(path) for _, path, _ in jobs) else 1
    known = InspectionCache.default(era=era, rules=_rules(era)) if cache else None
    verdicts = iter(_inspect_known(jobs, era, threads, client, known, keep_trees))
    usable: dict[str, Any] = {}
    result = Inspection(fileset=usable, known_good=known.hits if known is not None else 0)
    for dataset, spec in fileset.items():
        files = {}
        result.entries[dataset] = {}
        for path, tree in spec["files"].items():
            verdict = next(verdicts)
            reason = verdict.reason
            if reason is None and verdict.entries == 0:
                if skip_bad_files:
                    result.skipped.append(
                        {
                            "dataset": dataset,
                            "file": path,
                            "events": 0,
                            "error": "empty tree (0 entries)",
                        }
                    )
                    continue
                reason = "empty tree (0 entries)"
            if reason is not None:
                message = f"{path}: {reason}"
                if not skip_bad_files:
                    raise InputFileError(message)
                log.warning("skipping %s", message)
                result.skipped.append(
                    {"dataset": dataset, "file": path, "events": None, "error": reason}
                )
                continue
            files[path] = tree
            result.entries[dataset][path] = verdict.entries
            result.uuids[path] = verdict.uuid
        if files:
            usable[dataset] = {**spec, "files": files}
    return result


class SafeProcessor(processor.ProcessorABC):
    """Wrap a processor: a chunk that fails is reported (with its events), not fatal."""

    def __init__(self, inner: processor.ProcessorABC) -> None:
        self.inner = inner

    @property
    def config(self) -> Any:
        return getattr(self.inner, "config", None)

    def process(self, events: Any) -> dict[str, Any]:
        meta = dict(getattr(events, "metadata", None) or {})
        try:
            return self.inner.process(events)
        except Exception as err:
            start, stop = meta.get("entrystart"), meta.get("entrystop")
            entry = {
                "dataset": meta.get("dataset"),
                "file": meta.get("filename"),
                "entries": [start, stop],
                "events": (stop - start) if start is not None and stop is not None else len(events),
                "error": f"{type(err).__name__}: {err}",
            }
            log.warning(
                "skipping chunk %s entries %s-%s: %s", entry["file"], start, stop, entry["error"]
            )
            return {"skipped": [entry]}

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator


def check_accounting(
    inspection: Inspection,
    cutflow: dict[str, Any],
    skipped_chunks: list[dict],
    *,
    partial: bool = False,
) -> dict[str, Any]:
    """Processed + skipped-chunk events must equal the events of the readable input."""
    processed = sum(steps["events"]["events"] for steps in cutflow.values())
    skipped = sum(int(s["events"]) for s in skipped_chunks)
    expected = inspection.total
    summary = {
        "input_events": expected,
        "processed_events": processed,
        "skipped_chunk_events": skipped,
        "skipped_files": inspection.skipped,
        "skipped_chunks": skipped_chunks,
        "balanced": processed + skipped == expected,
        "partial": partial,
    }
    if processed + skipped != expected and not partial:
        raise AccountingError(
            f"events do not add up: {processed} processed + {skipped} in skipped chunks != {expected} in the input"
        )
    return summary


class BackoffRunner(processor.Runner):
    """``coffea.processor.Runner`` whose chunk retries wait 1, 2, 4, ... s between attempts."""

    backoff_base: float = 1.0

    @staticmethod
    def automatic_retries(retries, skipbadfiles, func, *args, use_result_type=False, **kwargs):
        delay = BackoffRunner.backoff_base
        for attempt in range(retries + 1):
            try:
                return func(*args, **kwargs)
            except Exception as err:
                if attempt == retries:
                    raise
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


def configure_xrootd() -> None:
    """Let the XRootD client reconnect soon after a stream error (its default waits 30 min)."""
    from tau3mu.xrootd import configure_xrootd_client

    configure_xrootd_client()


def _forget_remote_connections() -> None:
    """Drop cached XRootD connections: after a server restart their sessions are stale."""
    from tau3mu.xrootd import reset_connections

    reset_connections()


def selection_key(processor_instance: Any) -> str:
    """A short hash of the selection settings: checkpoints of other cuts are not reused."""
    config = getattr(processor_instance, "config", None)
    payload = json.dumps(
        config.to_dict() if config is not None else {}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


class AtomicCheckpointer(processor.CheckpointerABC):
    """One file per finished chunk under ``DIR/<selection>/<dataset>/<file uuid>/``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.loaded = 0
        self.saved = 0

    def _path(self, metadata: Any, processor_instance: Any) -> Path:
        return (
            self.directory
            / selection_key(processor_instance)
            / str(metadata["dataset"])
            / str(metadata["fileuuid"])
            / f"{metadata['entrystart']}-{metadata['entrystop']}.pkl"
        )

    def load(self, metadata: Any, processor_instance: Any) -> Any:
        import cloudpickle

        path = self._path(metadata, processor_instance)
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as handle:
                out = cloudpickle.load(handle)
        except Exception as err:  # a damaged checkpoint is recomputed, not trusted
            log.warning("ignoring unreadable checkpoint %s: %s", path, err)
            return None
        self.loaded += 1
        return out

    def save(self, output: Any, metadata: Any, processor_instance: Any) -> None:
        import cloudpickle

        from tau3mu.outputs import atomic_open

        path = self._path(metadata, processor_instance)
        with atomic_open(path, "wb") as handle:
            cloudpickle.dump(output, handle)
        self.saved += 1
