"""Run the processor over a fileset: coffea ``Runner`` executors or the dask-awkward graph.

Both paths end in the same :class:`AnalysisOutput`: plain-int cutflows, ``hist.Hist``
objects and the snapshot as one awkward record array per dataset, sorted by
(run, lumi, event) so that results do not depend on the order chunks finished in.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import awkward as ak
import numpy as np

from tau3mu import opentrees
from tau3mu.accounting import check_accounting
from tau3mu.checkpoints import AtomicCheckpointer
from tau3mu.chunk_probes import chunks_to_skip, without_chunks
from tau3mu.chunks import BackoffRunner, SpreadDaskExecutor
from tau3mu.config import DEFAULT_CHUNKSIZE, SelectionConfig
from tau3mu.datasets import Fileset
from tau3mu.inspection import inspect_inputs
from tau3mu.progress import Mode as ProgressMode
from tau3mu.progress import coffea_bars, dask_local_bar, distributed_bar, progress_mode
from tau3mu.reading import (
    allow_unicode_names,
    fileset_paths,
    iteritems_options,
    prepare_process,
    uproot_options,
)
from tau3mu.schemas import Tau3MuSchema

__all__ = [
    "AnalysisOutput",
    "Executor",
    "coffea_executor",
    "run_dask_awkward",
    "run_runner",
]

Executor = Literal["iterative", "futures", "dask"]


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


def coffea_executor(
    executor: Executor, client: Any, workers: int, status: bool, retries: int
) -> Any:
    """coffea's executor named ``executor``: ``iterative``, ``futures`` (``workers``
    processes) or ``dask`` (on ``client``; on a local cluster's client the processor is
    sent to every worker first: :class:`~tau3mu.chunks.SpreadDaskExecutor`); ``status``
    shows coffea's progress bar.

    Raises :class:`ValueError` for another name, or ``dask`` without a client.
    """
    from coffea import processor

    if executor == "iterative":
        return processor.IterativeExecutor(status=status, retries=retries)
    if executor == "futures":
        return processor.FuturesExecutor(workers=workers, status=status, retries=retries)
    if executor == "dask":
        if client is None:
            raise ValueError("the dask executor needs a distributed.Client")
        # retried with backoff on the worker (BackoffRunner), not again by Dask at once;
        # a local cluster's workers are all there: the processor goes to each at once
        from distributed import LocalCluster

        local = isinstance(getattr(client, "cluster", None), LocalCluster)
        executor_class = SpreadDaskExecutor if local else processor.DaskExecutor
        return executor_class(client=client, status=status, retries=0)
    raise ValueError(f"unknown executor {executor!r}; use iterative, futures or dask")


def run_runner(
    fileset: Fileset,
    processor_instance: Any,
    *,
    executor: Executor = "iterative",
    client: Any = None,
    workers: int = 1,
    chunksize: int = DEFAULT_CHUNKSIZE,
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
    runner = BackoffRunner(
        executor=coffea_executor(executor, client, workers, mode != "off", retries),
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
    options = uproot_options(fileset_paths(fileset), keep_trees=True, timeout=xrootd_timeout)
    out, metrics = _run_chunks(runner, fileset, processor_instance, client, mode, options)
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


def _run_chunks(
    runner: Any,
    fileset: dict[str, Any],
    processor_instance: Any,
    client: Any,
    mode: ProgressMode,
    options: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """coffea's (output, metrics) of ``runner`` over the inspected ``fileset``, with the
    progress ``mode`` and uproot's ``options``; empty for an empty fileset. The files this process kept open
    are released at the end (workers keep theirs)."""
    # coffea's Dask progress bar watches the default client's scheduler: make it this
    # run's (another Client made later in this process would leave it waiting)
    current = client.as_current() if client is not None else contextlib.nullcontext()
    try:
        if not fileset:
            return {}, {}
        with coffea_bars(mode), current:
            out, metrics = runner(
                fileset,
                processor_instance=processor_instance,
                uproot_options=options,
                iteritems_options=iteritems_options(),
            )
    finally:
        opentrees.release()
    return out, metrics


def _compute_graphs(graphs: Any, client: Any, progress: bool) -> tuple[Any, list[str]]:
    """Compute coffea's per-dataset graphs; also the columns the optimised graph reads."""
    import dask
    import dask_awkward as dak
    from dask.base import unpack_collections

    collections, repack = unpack_collections(graphs)
    # what the column optimisation leaves to read, per input layer: the Runner's "columns"
    needed = dak.report_necessary_columns(*collections) if collections else {}
    columns = sorted({c for layer in needed.values() for c in layer or ()})
    mode = progress_mode(progress)
    if client is not None:
        futures = client.compute(list(collections))
        distributed_bar(futures, client, mode)
        (computed,) = repack(client.gather(futures))
        return computed, columns
    with dask_local_bar(mode):
        (computed,) = dask.compute(graphs, scheduler="sync")
    return computed, columns


def _probe_options(path: str) -> dict[str, Any]:
    """uproot's options for reading one file as the dask-awkward graph reads it."""
    return uproot_options([path], graph=True)


def run_dask_awkward(
    fileset: Fileset,
    processor_instance: Any,
    *,
    client: Any = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
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
        failing = chunks_to_skip(
            failure, available, processor_instance, schema, client, skip_bad_files, _probe_options
        )
        skipped += failing
        available = without_chunks(available, failing)
        if not available:
            computed, columns = {}, []
            break
    merged: dict[str, Any] = accumulate(computed.values()) if computed else {}
    events = {
        d: {"events": {"events": _to_int(s["events"]["events"])}}
        for d, s in merged.get("cutflow", {}).items()
    }
    metrics = {
        "wall_s": time.perf_counter() - tic,
        "graph_build_s": build - tic,
        "executor": "dask" if client is not None else "sync",
        "mode": "dask-awkward",
        "files_known_good": inspection.known_good,
        "columns": columns,
        "entries": sum(steps["events"]["events"] for steps in events.values()),
        "accounting": check_accounting(inspection, events, skipped),
    }
    return _normalise(merged, metrics)
