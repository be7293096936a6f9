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
from tau3mu.graph_fusion import partition_graph
from tau3mu.graph_source import dataset_events, graph_columns
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
from tau3mu.traced_branches import traced_inspection

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
        if len(array):  # sorted by run, then lumi, then event (lexsort's last key first)
            keys = [ak.to_numpy(array[name]) for name in ("event", "lumi", "run")]
            array = array[np.lexsort(keys)]
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
    shows the progress.

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

        if isinstance(getattr(client, "cluster", None), LocalCluster):
            return SpreadDaskExecutor(client=client, status=status, retries=0)
        return processor.DaskExecutor(client=client, status=status, retries=0)
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
    on = client if executor == "dask" else None  # where the files are opened first
    try:  # the trees are read for the branches the run reads, where worth tracing
        inspection, branches = traced_inspection(
            fileset,
            processor_instance,
            config,
            client=on,
            cache=inspection_cache,
            skip_bad_files=skip_bad_files,
            keep_trees=True,
        )
    except BaseException:
        opentrees.release(on)  # what it kept
        raise
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
    paths = fileset_paths(fileset)
    options = uproot_options(paths, keep_trees=True, timeout=xrootd_timeout, branches=branches)
    reads = (options, iteritems_options(branches))
    out, metrics = _run_chunks(runner, fileset, processor_instance, client, mode, reads)
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
    reads: tuple[dict[str, Any], dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """coffea's (output, metrics) of ``runner`` over the inspected ``fileset``, with the
    progress ``mode``, ``reads``: uproot's and NanoEvents' options; empty for an empty
    fileset. The files this process and the client's workers kept open are released at
    the end."""
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
                uproot_options=reads[0],
                iteritems_options=reads[1],
            )
    finally:
        opentrees.release(client)
    return out, metrics


def _compute_graphs(graphs: Any, client: Any, progress: bool) -> tuple[Any, list[str]]:
    """Compute the per-dataset graphs; also the branches the optimised graph reads.

    The outputs are optimised together, once: they share their input layers, and the
    column optimisation runs the whole graph on typetracers (per output, it would run
    it once for every histogram and cutflow entry). Each partition's tasks then run as
    one task where the libraries are tested versions (:func:`tau3mu.graph_fusion.partition_graph`).
    After a failure on a cluster, the graph's remaining tasks are cancelled.
    """
    import dask
    from dask.base import tokenize, unpack_collections
    from dask.core import flatten

    collections, repack = unpack_collections(graphs)
    if not collections:
        return repack([])[0], []
    optimised = dask.optimize(*collections)
    hlg = optimised[0].__dask_graph__()
    columns = graph_columns(hlg, list(collections))
    keys = [collection.__dask_keys__() for collection in optimised]
    graph = partition_graph(dict(hlg), keys, f"tau3mu-partition-{tokenize(keys)}")
    mode = progress_mode(progress)
    if client is not None:
        futures = client.get(graph, keys, sync=False)
        try:
            distributed_bar(list(flatten(futures)), client, mode)
            results = client.gather(futures)
        except BaseException:
            client.cancel(list(flatten(futures)))  # the rest of a failed graph
            raise
    else:
        with dask_local_bar(mode):
            results = dask.get(graph, keys)
    finals = [
        finalize(result, *extra)
        for result, (finalize, extra) in zip(
            results, (c.__dask_postcompute__() for c in optimised), strict=True
        )
    ]
    (computed,) = repack(finals)
    return computed, columns


def _graphs(processor_instance: Any, available: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Each dataset's processor output as a dask graph over :mod:`tau3mu.graph_source`'s
    events: partitions read as the Runner's chunks are (``uproot_options`` with kept trees)."""
    graph_options = uproot_options(paths, graph=True)
    read_options = uproot_options(paths, keep_trees=True)
    return {
        name: processor_instance.process(
            dataset_events(name, spec, Tau3MuSchema, graph_options, read_options)
        )
        for name, spec in available.items()
    }


def _probe_options(path: str) -> dict[str, Any]:
    """uproot's options for reading one file with the dask-awkward graph's readers (one-pass
    vectors: a malformed vector is named by branch, basket and entry)."""
    return uproot_options([path])


def _compute_or_skip(
    processor_instance: Any,
    available: dict[str, Any],
    paths: list[str],
    client: Any,
    skip_bad_files: bool,
    progress: bool,
    started: float,
) -> tuple[Any, list[str], list[dict[str, Any]], float]:
    """Build and compute the graphs of ``available``; after a failure, probe its chunks
    (:func:`tau3mu.chunk_probes.chunks_to_skip`) and compute again without the failing
    ones. Returns the outputs, the branches read, the chunks skipped and the seconds
    from ``started`` (a ``time.perf_counter()`` time) until the last graph was built."""
    skipped: list[dict[str, Any]] = []
    while True:
        graphs = _graphs(processor_instance, available, paths)
        build = time.perf_counter() - started
        failure: Exception
        try:
            computed, columns = _compute_graphs(graphs, client, progress)
            return computed, columns, skipped, build
        except Exception as err:
            failure = err
        # outside the except block: the probes' errors are not chained onto the graph's
        failing = chunks_to_skip(
            failure,
            available,
            processor_instance,
            Tau3MuSchema,
            client,
            skip_bad_files,
            _probe_options,
        )
        skipped += failing
        available = without_chunks(available, failing)
        if not available:
            return {}, [], skipped, build


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
    from coffea.processor import accumulate

    config = config or getattr(processor_instance, "config", SelectionConfig())
    tic = time.perf_counter()
    prepare_process()
    if client is not None:
        client.run(prepare_process)  # the workers read the graph's chunks
    try:  # the files this process keeps, from the inspection on, are released at the end
        inspection = inspect_inputs(
            fileset,
            skip_bad_files=skip_bad_files,
            config=config,
            client=client,
            cache=inspection_cache,
            keep_trees=True,
        )
        # the inspection opened every file already: steps from its entries, no second pass
        available = inspection.steps_fileset(chunksize)
        paths = fileset_paths(inspection.fileset)
        computed, columns, skipped, build = _compute_or_skip(
            processor_instance, available, paths, client, skip_bad_files, progress, tic
        )
    finally:
        opentrees.release(client)
    merged: dict[str, Any] = accumulate(computed.values()) if computed else {}
    events = {
        d: {"events": {"events": _to_int(s["events"]["events"])}}
        for d, s in merged.get("cutflow", {}).items()
    }
    metrics = {
        "wall_s": time.perf_counter() - tic,
        "graph_build_s": build,
        "executor": "dask" if client is not None else "sync",
        "mode": "dask-awkward",
        "files_known_good": inspection.known_good,
        "columns": columns,
        "entries": sum(steps["events"]["events"] for steps in events.values()),
        "accounting": check_accounting(inspection, events, skipped),
    }
    return _normalise(merged, metrics)
