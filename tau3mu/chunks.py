"""A chunk of the coffea Runner: retried while its failure is transient, else named.

:func:`retry_chunk` wraps every chunk the Runner runs, on every executor: a transient
failure (:func:`tau3mu.retries.is_transient`: an XRootD server that restarts, a network
blip; coffea's own retries are immediate) is tried again after 1, 2, 4 ... s; a failure
of the file itself raises :class:`ChunkError` naming the file and entries, or with
``skipbadfiles`` is reported as a skipped chunk (file, entry range, events, error).
:class:`BackoffRunner` is the Runner that does so.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from coffea import processor
from coffea.processor.executor import WorkItem

from tau3mu import reading
from tau3mu.errors import OptionError
from tau3mu.filecheck import InputFileError
from tau3mu.filegroups import FileGroup, files_per_group, group_chunks, grouping_enabled
from tau3mu.group_work import run_group
from tau3mu.progress import distributed_bar, progress_mode
from tau3mu.retries import backoff_delays, error_chain, is_transient
from tau3mu.wording import error_text
from tau3mu.xrootd import reset_connections

__all__ = [
    "BackoffRunner",
    "ChunkError",
    "SpreadDaskExecutor",
    "chunk_message",
    "error_cause",
    "executor_workers",
    "merge_outputs",
    "option_error",
    "retry_chunk",
    "skipped_chunk",
]

log = logging.getLogger(__name__)


class ChunkError(InputFileError):
    """A chunk that cannot be analysed: its file, entry range and the cause."""


def option_error(err: BaseException) -> OptionError | None:
    """The :class:`~tau3mu.errors.OptionError` under ``err`` (a checkpoint folder that
    cannot be written, ...), if any: a failure that no input file is to blame for."""
    return next((c for c in error_chain(err) if isinstance(c, OptionError)), None)


def _unit(args: tuple[Any, ...]) -> Any:
    """The unit of work (a coffea WorkItem, a :class:`~tau3mu.filegroups.FileGroup`) a
    Runner closure was called with, else None."""
    first = args[0] if args else None
    if isinstance(first, tuple) and first and isinstance(first[0], WorkItem | FileGroup):
        first = first[0]  # the Runner's "heavy" mode sends (item, processor)
    return first if isinstance(first, WorkItem | FileGroup) else None


def _work_item(args: tuple[Any, ...]) -> WorkItem | None:
    """The coffea WorkItem a Runner closure was called with (None for other calls)."""
    unit = _unit(args)
    return unit if isinstance(unit, WorkItem) else None


def _with_unit(args: tuple[Any, ...], unit: WorkItem) -> tuple[Any, ...]:
    """``args`` with ``unit`` in place of the unit of work they carry."""
    first = args[0]
    if isinstance(first, tuple):
        return ((unit, *first[1:]), *args[1:])
    return (unit, *args[1:])


def error_cause(err: BaseException) -> str:
    """The original error under coffea's wrappers, as ``Type: message`` on one line."""
    return error_text(error_chain(err)[-1])


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
    to a checkpoint, so a later run tries it again). An :class:`~tau3mu.errors.OptionError`
    under the failure is raised as it is.

    coffea passes ``retries=0`` for its Dask executor (Dask would retry at once);
    ``at_least`` gives the chunk its retries on the worker instead. The process running
    the chunk is prepared first (:func:`tau3mu.reading.prepare_process`: ISA-L inflate,
    tau3mu's XRootD client settings, so that the client itself bridges a short outage).
    """
    reading.prepare_process()
    unit = _unit(args)
    if isinstance(unit, FileGroup):
        return _group_or_members(
            unit,
            args,
            kwargs,
            retries=retries,
            skipbadfiles=skipbadfiles,
            func=func,
            at_least=at_least,
            backoff=backoff,
            use_result_type=use_result_type,
        )
    item = _work_item(args)
    retries = max(retries, at_least)
    delay = backoff_delays(backoff)
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
                return _give_up(item, err, attempt, skipbadfiles and not use_result_type)
            wait = delay(attempt + 1)
            log.warning(
                "attempt %d of %d failed (%s); retrying in %.0f s",
                attempt + 1,
                retries + 1,
                err,
                wait,
            )
            time.sleep(wait)
            reset_connections()  # after a server restart, cached sessions are stale
    return None


def _group_or_members(
    group: FileGroup,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    retries: int,
    skipbadfiles: Any,
    func: Any,
    at_least: int,
    backoff: float,
    use_result_type: bool,
) -> Any:
    """A group's output; if the group fails, its members' outputs, each member run as a
    chunk of its own by :func:`retry_chunk` (the other arguments are its), so that it is
    retried, named or skipped on its own."""
    try:
        return func(*args, **kwargs)
    except Exception as err:
        if (mistake := option_error(err)) is not None:
            raise mistake from None
        log.info("%d files run one by one after: %s", len(group.members), error_text(err))
    outputs = [
        retry_chunk(
            retries,
            skipbadfiles,
            func,
            *_with_unit(args, member),
            at_least=at_least,
            backoff=backoff,
            use_result_type=use_result_type,
            **kwargs,
        )
        for member in group.members
    ]
    return processor.accumulate(out for out in outputs if out is not None)


def _give_up(item: WorkItem, err: Exception, attempt: int, skipping: bool) -> dict[str, Any]:
    """The chunk's skipped-chunk output, or (not ``skipping``) ChunkError raised."""
    entry = skipped_chunk(
        item.dataset, item.filename, item.entrystart, item.entrystop, error_cause(err)
    )
    if not skipping:
        raise ChunkError(chunk_message(entry)) from err
    entry["attempts"] = attempt + 1
    log.warning("skipping chunk %s", chunk_message(entry))
    return {"out": {"skipped": [entry]}, "metrics": {}}


@dataclass
class BackoffRunner(processor.Runner):
    """``coffea.processor.Runner`` whose chunks retry transient failures with backoff
    (coffea's own retries are immediate), on every executor, and whose failing chunks
    are named (file and entries) or, with ``skipbadfiles``, reported as skipped."""

    chunk_retries: int = 3
    backoff_base: float = 1.0
    #: small files of one dataset run as one unit of work (:mod:`tau3mu.filegroups`)
    group_files: bool = True

    @property
    def automatic_retries(self) -> Any:  # coffea calls it as a static function
        return partial(retry_chunk, at_least=self.chunk_retries, backoff=self.backoff_base)

    def preprocess(self, fileset: Any, **options: Any) -> Any:
        """coffea's chunks, with small files' chunks grouped (:func:`group_chunks`, at
        most :func:`~tau3mu.filegroups.files_per_group` files a group for the executor's
        workers, :func:`executor_workers`) where ``group_files`` and
        :func:`~tau3mu.filegroups.grouping_enabled`."""
        chunks = super().preprocess(fileset, **options)
        grouping = self.group_files and self.format == "root" and not self.use_dataframes
        if not grouping or not grouping_enabled():
            return chunks
        chunks = list(chunks)
        most = files_per_group(len(chunks), executor_workers(self.executor))
        return (unit for unit in group_chunks(chunks, self.chunksize, most))

    @staticmethod
    def _work_function(*args: Any, **kwargs: Any) -> Any:
        """coffea's work function, or :func:`~tau3mu.group_work.run_group` for a group."""
        unit = _unit(args[5:6])  # format, timeout, schema, dataframes, metrics, item
        if isinstance(unit, FileGroup):
            return run_group(*args, **kwargs)
        return processor.Runner._work_function(*args, **kwargs)


@dataclass
class SpreadDaskExecutor(processor.DaskExecutor):
    """coffea's Dask executor with the processor on every worker before the chunks start,
    for a cluster whose workers are all there when the run starts (a local one).

    coffea submits the processor as one task that every chunk depends on, and Dask sends
    a task to a worker that holds its dependencies: every chunk went to the worker that
    ran that task, and the others waited for work stealing. Here the processor is
    scattered to every worker (``broadcast``) and each chunk takes it from there, so
    Dask hands the chunks to whichever worker is least busy. The chunks' outputs are
    merged as coffea's executor merges them (trees of ``treereduction`` outputs:
    :func:`merge_outputs`), sent uncompressed, and the submitting process does not import
    ``dask.dataframe`` (coffea's executor does, for its dataframe mode). With ``status``
    the chunks' progress is shown (:func:`tau3mu.progress.distributed_bar`).

    Raises ``RuntimeError`` naming the chunk whose worker died (Dask's
    ``KilledWorker``), as coffea's executor does.
    """

    def __call__(self, items: Iterable[Any], function: Callable[..., Any], accumulator: Any) -> Any:
        heavy = cast(Any, self).heavy_input  # coffea leaves its type to inference
        items = list(items)
        if heavy is None or not items or self.client is None:
            return super().__call__(items, function, accumulator)
        from distributed import KilledWorker

        spread = self.client.scatter(heavy, broadcast=True, hash=False)
        work = self.client.map(
            function,
            [(item, spread) for item in items],
            pure=True,
            priority=self.priority,
            retries=self.retries,
        )
        named = {future.key: item for future, item in zip(work, items, strict=True)}
        distributed_bar(list(work), self.client, progress_mode(self.status))
        while len(work) > 1:
            groups = [
                work[i : i + self.treereduction] for i in range(0, len(work), self.treereduction)
            ]
            work = self.client.map(
                merge_outputs, groups, pure=True, priority=self.priority, retries=self.retries
            )
        try:
            out = work[0].result()
        except KilledWorker as err:
            raise RuntimeError(
                f"Work item {named.get(err.task, '(output reducer)')} caused a KilledWorker "
                "exception (likely a segfault or out-of-memory issue)"
            ) from err
        return processor.accumulate([out], accumulator), 0


def executor_workers(executor: Any) -> int:
    """How many chunks coffea's ``executor`` runs at once: a futures executor's workers, a
    Dask executor's cluster's workers now, else 1."""
    if isinstance(executor, processor.FuturesExecutor):
        return max(1, int(executor.workers))
    if isinstance(executor, processor.DaskExecutor) and executor.client is not None:
        return max(1, len(executor.client.scheduler_info().get("workers", {})))
    return 1


def merge_outputs(outputs: list[Any]) -> Any:
    """The chunks' ``outputs`` merged as coffea's Dask executor merges them: the others
    added in turn to (a copy of) the last, so that a task run again merges the same
    inputs; ``None`` outputs are left out. Raises ``ValueError`` for none."""
    outputs = [out for out in outputs if out is not None]
    if not outputs:
        raise ValueError("no output to merge")
    last = outputs.pop()
    return processor.accumulate(outputs, copy.deepcopy(last)) if outputs else last
