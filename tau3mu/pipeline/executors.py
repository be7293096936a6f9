"""Which executor a run uses when the user names none: never the slow path.

A local Dask cluster costs seconds to start and its workers pay their imports and
compilation again; it pays off only with several cores and at least about one chunk
per worker. On one core, or on inputs smaller than that, the run stays in this process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tau3mu.datasets import Fileset
from tau3mu.local_workers import machine_cores
from tau3mu.pipeline.options import ExecutorName, RunOptions
from tau3mu.xrootd import is_remote

__all__ = [
    "MAX_COUNTED_FILES",
    "MIN_CHUNKS_PER_WORKER",
    "ExecutorChoice",
    "choose_executor",
    "count_events",
]

#: inputs of more files than this are not counted before the run (taken as large)
MAX_COUNTED_FILES = 64

#: the chunks per worker beyond which a local Dask cluster pays for its start: with 2
#: chunks per worker (4 chunks of 175k Run 2 events on 2 cores) a local cluster of warm
#: workers ran 1.1x faster than this process alone (docs/benchmarks.md, "The default
#: executor"); with one chunk per worker it would only add its start
MIN_CHUNKS_PER_WORKER = 1


@dataclass(frozen=True)
class ExecutorChoice:
    """The executor of a run, its workers, why, and whether the user named it."""

    executor: ExecutorName
    workers: int
    reason: str
    automatic: bool

    def line(self) -> str:
        """One line for the terminal: what was chosen and why."""
        where = {
            "iterative": "this process",
            "futures": f"{self.workers} local processes",
            "dask": "Dask",
        }[self.executor]
        how = "chosen" if self.automatic else "as asked"
        return f"executor: {self.executor} ({where}), {how}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """For ``report.json``: ``executor``, ``workers``, ``reason``, ``automatic``."""
        return {
            "executor": self.executor,
            "workers": self.workers,
            "reason": self.reason,
            "automatic": self.automatic,
        }


def count_events(fileset: Fileset, limit: int, known: dict[str, int] | None = None) -> int | None:
    """Entries of the fileset's trees, counted until ``limit`` is reached (then the count
    so far, at least ``limit``); None when they cannot be counted cheaply: a remote
    file, or more than :data:`MAX_COUNTED_FILES` files. ``known``: entries by path of
    files not to open (an earlier inspection's, :func:`tau3mu.inspection.known_entries`).
    A file that does not open counts 0 (the inspection reports it)."""
    import uproot

    files = [(path, tree) for spec in fileset.values() for path, tree in spec["files"].items()]
    if len(files) > MAX_COUNTED_FILES or any(is_remote(path) for path, _ in files):
        return None
    known = known or {}
    total = sum(known.get(path, 0) for path, _ in files)
    for path, tree in files:
        if total >= limit:
            break
        if path in known:
            continue
        try:
            with uproot.open(path) as f:
                total += int(f[tree].num_entries)
        except Exception:  # unreadable: the inspection names it, or skips it
            continue
    return total


def choose_executor(
    fileset: Fileset, options: RunOptions, *, cores: int | None = None
) -> ExecutorChoice:
    """The executor of a run with ``options`` over ``fileset`` on ``cores`` cores
    (default: those this process may use).

    The user's choice stands: ``executor``, or Dask for a ``scheduler`` or ``htcondor``.
    Else: ``iterative`` with one worker (``workers`` 1 or one core) or when the inputs
    hold no more events than :data:`MIN_CHUNKS_PER_WORKER` chunks per worker
    (``chunksize`` x chunks x workers); otherwise ``dask``, a local cluster of
    ``workers`` (default: every core).
    """
    cores = cores or machine_cores()
    workers = options.workers or cores
    if options.wants_dask:
        return ExecutorChoice("dask", workers, _asked_for_dask(options), automatic=False)
    if options.executor is not None:
        if options.executor == "iterative":
            workers = 1
        elif options.executor == "futures":
            workers = options.workers or os.cpu_count() or 1
        return ExecutorChoice(options.executor, workers, "--executor", automatic=False)
    if workers == 1:
        why = "--workers 1" if options.workers else "one core"
        return ExecutorChoice(
            "iterative", 1, f"{why}: a Dask cluster would only add its start", True
        )
    limit = options.chunksize * MIN_CHUNKS_PER_WORKER * workers + 1
    events = count_events(fileset, limit, _known_entries(fileset, options))
    if events is not None and events < limit:
        reason = (
            f"{events:,} events, at most {_chunks(MIN_CHUNKS_PER_WORKER)} per worker "
            f"({options.chunksize:,} x {MIN_CHUNKS_PER_WORKER} x {workers}), too few to "
            "pay for a cluster's start; --executor dask for a local Dask cluster"
        )
        return ExecutorChoice("iterative", 1, reason, True)
    size = "inputs not counted" if events is None else f"over {limit - 1:,} events"
    reason = f"{size}, {workers} workers; --executor iterative for this process alone"
    return ExecutorChoice("dask", workers, reason, True)


def _known_entries(fileset: Fileset, options: RunOptions) -> dict[str, int]:
    """Entries an earlier inspection knows (none with ``--no-inspection-cache``)."""
    if not options.inspection_cache:
        return {}
    from tau3mu.channels import get_channel
    from tau3mu.inspection import known_entries

    config = options.selection
    if config is None:
        config = get_channel(options.channel).default_config()
    return known_entries(fileset, config)


def _chunks(n: int) -> str:
    return "one chunk" if n == 1 else f"{n} chunks"


def _asked_for_dask(options: RunOptions) -> str:
    if options.scheduler:
        return f"--scheduler {options.scheduler}"
    return "--htcondor" if options.htcondor else "--executor dask"
