"""Run the processor over a fileset: coffea ``Runner`` executors or the dask-awkward graph.

Both paths end in the same :class:`AnalysisOutput`: plain-int cutflows, ``hist.Hist``
objects and the snapshot as one awkward record array per dataset, sorted by
(run, lumi, event) so that results do not depend on the order chunks finished in.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import awkward as ak
import numpy as np

from tau3mu import opentrees
from tau3mu.accounting import check_accounting
from tau3mu.checkpoints import AtomicCheckpointer
from tau3mu.chunks import BackoffRunner, ChunkError, chunk_message, error_cause, skipped_chunk
from tau3mu.config import SelectionConfig
from tau3mu.inspection import inspect_inputs
from tau3mu.progress import coffea_bars, dask_local_bar, distributed_bar, progress_mode
from tau3mu.reading import (
    allow_unicode_names,
    fileset_paths,
    iteritems_options,
    prepare_process,
    uproot_options,
)
from tau3mu.schemas import Tau3MuSchema

log = logging.getLogger(__name__)

Executor = Literal["iterative", "futures", "dask"]
Mode = Literal["runner", "dask-awkward"]


@dataclass
class AnalysisOutput:
    """Merged, client-side result of a run."""

    cutflow: dict[str, dict[str, dict[str, int]]]
    hists: dict[str, Any]
    snapshot: dict[str, ak.Array]
    truth: dict[str, dict[str, int]] = field(default_factory=dict)
    scale_factors: dict[str, dict[str, int]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def datasets(self) -> list[str]:
        return list(self.cutflow)


def _to_int(value: Any) -> int:
    return int(np.asarray(value).item()) if not isinstance(value, int) else value


def _normalise(out: dict[str, Any], metrics: dict[str, Any] | None = None) -> AnalysisOutput:
    """Accumulated processor output (eager, or computed dask) -> :class:`AnalysisOutput`."""
    cutflow = {
        dataset: {
            label: {key: _to_int(value) for key, value in counts.items()}
            for label, counts in steps.items()
        }
        for dataset, steps in out.get("cutflow", {}).items()
    }
    snapshot = {}
    for dataset, value in out.get("snapshot", {}).items():
        array = value.value if hasattr(value, "value") else value
        array = ak.Array(array)
        if len(array):
            order = np.lexsort(
                (
                    ak.to_numpy(array["event"]),
                    ak.to_numpy(array["lumi"]),
                    ak.to_numpy(array["run"]),
                )
            )
            array = array[order]
        snapshot[dataset] = ak.to_packed(array)
    nested = {
        key: {
            dataset: {name: _to_int(v) for name, v in values.items()}
            for dataset, values in out.get(key, {}).items()
        }
        for key in ("truth", "scale_factors")
    }
    return AnalysisOutput(
        cutflow=cutflow,
        hists=dict(out.get("hists", {})),
        snapshot=snapshot,
        truth=nested["truth"],
        scale_factors=nested["scale_factors"],
        metrics=dict(metrics or {}),
    )


def run_runner(
    fileset: dict[str, Any],
    processor_instance: Any,
    *,
    executor: Executor = "iterative",
    client: Any = None,
    workers: int = 1,
    chunksize: int = 100_000,
    maxchunks: int | None = None,
    skip_bad_files: bool = False,
    checkpoint: str | None = None,
    xrootd_timeout: int = 60,
    retries: int = 3,
    progress: bool = False,
    config: SelectionConfig | None = None,
    inspection_cache: bool = True,
) -> AnalysisOutput:
    """Run through ``coffea.processor.Runner`` with the iterative, futures or Dask executor.

    Every file is inspected first (bad ones raise, or are reported with ``skip_bad_files``;
    with ``inspection_cache``, local files found good by an earlier run and unchanged are
    not reopened), failed chunks are retried with backoff, and the events are accounted
    for at the end. ``progress``: a bar on a terminal, else a line per tenth of the chunks
    (:mod:`tau3mu.progress`); False shows none, coffea's included.
    """
    from coffea import processor

    config = config or getattr(processor_instance, "config", SelectionConfig())
    prepare_process()
    allow_unicode_names()
    inspection = inspect_inputs(
        fileset,
        skip_bad_files=skip_bad_files,
        config=config,
        client=client if executor == "dask" else None,
        cache=inspection_cache,
        keep_trees=True,
    )
    fileset = inspection.fileset
    mode = progress_mode(progress)
    status = mode != "off"
    if executor == "iterative":
        ex = processor.IterativeExecutor(status=status, retries=retries)
    elif executor == "futures":
        ex = processor.FuturesExecutor(workers=workers, status=status, retries=retries)
    elif executor == "dask":
        if client is None:
            raise ValueError("the dask executor needs a distributed.Client")
        # retried with backoff on the worker (BackoffRunner), not again by Dask at once
        ex = processor.DaskExecutor(client=client, status=status, retries=0)
    else:
        raise ValueError(f"unknown executor {executor!r}; use iterative, futures or dask")
    runner = BackoffRunner(
        executor=ex,
        schema=Tau3MuSchema,
        chunksize=chunksize,
        maxchunks=maxchunks,
        skipbadfiles=skip_bad_files,
        chunk_retries=retries,
        savemetrics=True,
        xrootdtimeout=xrootd_timeout,
        checkpointer=AtomicCheckpointer(checkpoint) if checkpoint else None,
        # the inspection already opened every file: coffea need not open them again
        metadata_cache=inspection.coffea_metadata(),
    )
    tic = time.perf_counter()
    try:
        if fileset:
            # coffea's Dask progress bar watches the default client's scheduler: make it
            # this run's (another Client made later in this process would leave it waiting)
            current = client.as_current() if client is not None else contextlib.nullcontext()
            with coffea_bars(mode), current:
                out, metrics = runner(
                    fileset,
                    processor_instance=processor_instance,
                    uproot_options=uproot_options(
                        fileset_paths(fileset), keep_trees=True, timeout=xrootd_timeout
                    ),
                    iteritems_options=iteritems_options(),
                )
        else:
            out, metrics = {}, {}
    finally:
        opentrees.release()  # the files this process kept (workers keep theirs)
    metrics = dict(metrics)
    metrics["accounting"] = check_accounting(
        inspection, out.get("cutflow", {}), out.get("skipped", []), partial=maxchunks is not None
    )
    metrics["accounting"]["resumed_chunks"] = _to_int(out.get("checkpoint", {}).get("resumed", 0))
    metrics["wall_s"] = time.perf_counter() - tic
    metrics["files_known_good"] = inspection.known_good
    metrics["executor"] = executor
    metrics["mode"] = "runner"
    return _normalise(out, metrics)


def _compute_graphs(graphs: Any, client: Any, progress: bool) -> tuple[Any, list[str]]:
    """Compute coffea's per-dataset graphs; also the columns the optimised graph reads."""
    import dask
    import dask_awkward as dak
    from dask.base import unpack_collections

    collections, repack = unpack_collections(graphs)
    # what the column optimisation leaves to read, per input layer: the Runner's "columns"
    needed = dak.report_necessary_columns(*collections) if collections else {}
    columns = sorted({c for layer in needed.values() for c in layer})
    mode = progress_mode(progress)
    if client is not None:
        futures = client.compute(list(collections))
        distributed_bar(futures, client, mode)
        (computed,) = repack(client.gather(futures))
        return computed, columns
    with dask_local_bar(mode):
        (computed,) = dask.compute(graphs, scheduler="sync")
    return computed, columns


def _probe_chunk(
    processor_instance: Any,
    schema: Any,
    dataset: str,
    metadata: dict[str, Any],
    path: str,
    tree: str,
    start: int,
    stop: int,
) -> str | None:
    """Run one chunk eagerly: None if it works, else its error (``Type: message``)."""
    from coffea.nanoevents import NanoEventsFactory

    prepare_process()
    meta = {**metadata, "dataset": dataset, "filename": path, "entrystart": start}
    meta["entrystop"] = stop
    try:
        events = NanoEventsFactory.from_root(
            {path: tree},
            schemaclass=schema,
            entry_start=start,
            entry_stop=stop,
            metadata=meta,
            mode="virtual",
            # read as the graph reads, so that it fails the same way
            uproot_options=uproot_options([path], graph=True),
        ).events()
        processor_instance.process(events)
    except Exception as err:
        return error_cause(err)
    return None


def _failing_chunks(
    available: dict[str, Any], processor_instance: Any, schema: Any, client: Any
) -> list[dict[str, Any]]:
    """Every chunk of ``available`` that fails when run on its own (on the workers when
    there is a client): what a failed graph does not tell, its file and entries."""
    jobs = [
        (dataset, spec.get("metadata") or {}, path, info["object_path"], start, stop)
        for dataset, spec in available.items()
        for path, info in spec["files"].items()
        for start, stop in info["steps"]
        if stop > start
    ]
    if client is not None:
        futures = [
            client.submit(_probe_chunk, processor_instance, schema, *job, pure=False)
            for job in jobs
        ]
        errors = client.gather(futures)
    else:
        errors = [_probe_chunk(processor_instance, schema, *job) for job in jobs]
    return [
        skipped_chunk(dataset, path, start, stop, error)
        for (dataset, _, path, _, start, stop), error in zip(jobs, errors, strict=True)
        if error is not None
    ]


def _without_chunks(available: dict[str, Any], chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """``available`` less the steps of ``chunks`` (and files or datasets left empty)."""
    drop = {(c["dataset"], c["file"], tuple(c["entries"])) for c in chunks}
    out: dict[str, Any] = {}
    for dataset, spec in available.items():
        files = {}
        for path, info in spec["files"].items():
            steps = [s for s in info["steps"] if (dataset, path, tuple(s)) not in drop]
            if steps:
                files[path] = {**info, "steps": steps}
        if files:
            out[dataset] = {**spec, "files": files}
    return out


def run_dask_awkward(
    fileset: dict[str, Any],
    processor_instance: Any,
    *,
    client: Any = None,
    chunksize: int = 100_000,
    skip_bad_files: bool = False,
    config: SelectionConfig | None = None,
    inspection_cache: bool = True,
    progress: bool = False,
) -> AnalysisOutput:
    """Build one dask-awkward graph for every dataset and compute it in one go.

    Bad files are found before the graph is built (and skipped on request). A graph
    that fails does not say which chunk failed: its chunks are then run one by one to
    find out, and the run stops naming each failing chunk's file and entries, or, with
    ``skip_bad_files``, the graph is computed again without them and they are reported
    as skipped. The metrics name the branches the optimised graph reads (``columns``);
    ``progress``: a bar on a terminal, else a line per tenth of the graph's tasks
    (:mod:`tau3mu.progress`); False shows none.
    """
    from coffea.dataset_tools import apply_to_fileset
    from coffea.processor import accumulate

    config = config or getattr(processor_instance, "config", SelectionConfig())
    schema = Tau3MuSchema
    tic = time.perf_counter()
    prepare_process()
    if client is not None:
        client.run(prepare_process)  # the workers read the graph's chunks
    inspection = inspect_inputs(
        fileset,
        skip_bad_files=skip_bad_files,
        config=config,
        client=client,
        cache=inspection_cache,
    )
    fileset = inspection.fileset
    # the inspection opened every file already: steps from its entries, no second pass
    available = inspection.steps_fileset(chunksize)
    skipped: list[dict[str, Any]] = []
    while True:
        graphs = apply_to_fileset(
            processor_instance,
            available,
            schemaclass=schema,
            uproot_options=uproot_options(fileset_paths(fileset), graph=True),
        )
        build = time.perf_counter()
        failure: Exception
        try:
            computed, columns = _compute_graphs(graphs, client, progress)
            break
        except Exception as err:
            failure = err
        # outside the except block: the probes' errors are not chained onto the graph's
        failing = _failing_chunks(available, processor_instance, schema, client)
        if not failing:
            raise failure  # not a chunk's fault (a lost cluster, ...): as it came
        message = chunk_message(failing[0])
        if len(failing) > 1:
            message += f" (and {len(failing) - 1} more failing chunk(s))"
        if not skip_bad_files:
            raise ChunkError(message) from failure
        for chunk in failing:
            log.warning("skipping chunk %s", chunk_message(chunk))
        skipped += failing
        available = _without_chunks(available, failing)
        if not available:
            computed, columns = {}, []
            break
    merged: dict[str, Any] = accumulate(computed.values()) if computed else {}
    metrics = {
        "wall_s": time.perf_counter() - tic,
        "graph_build_s": build - tic,
        "executor": "dask" if client is not None else "sync",
        "mode": "dask-awkward",
        "files_known_good": inspection.known_good,
        "columns": columns,
        "entries": sum(
            _to_int(steps["events"]["events"]) for steps in merged.get("cutflow", {}).values()
        ),
    }
    metrics["accounting"] = check_accounting(
        inspection,
        {
            d: {"events": {"events": _to_int(s["events"]["events"])}}
            for d, s in merged.get("cutflow", {}).items()
        },
        skipped,
    )
    return _normalise(merged, metrics)
