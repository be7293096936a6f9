"""Run the processor over a fileset: coffea ``Runner`` executors or the dask-awkward graph.

Both paths end in the same :class:`AnalysisOutput`: plain-int cutflows, ``hist.Hist``
objects and the snapshot as one awkward record array per dataset, sorted by
(run, lumi, event) so that results do not depend on the order chunks finished in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import awkward as ak
import numpy as np

from tau3mu.config import SelectionConfig
from tau3mu.schemas import Tau3MuSchema

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


def _uproot_options(fileset: dict[str, Any], keep_trees: bool = False) -> dict[str, Any]:
    """uproot's own XRootD source for ``root://`` inputs (it honours timeouts and
    reconnects); with ``keep_trees`` (the Runner), local files' trees kept open for
    their next chunks (:mod:`tau3mu.opentrees`)."""
    from tau3mu import opentrees
    from tau3mu.xrootd import is_xrootd, xrootd_options

    paths = [path for spec in fileset.values() for path in spec["files"]]
    if paths and all(is_xrootd(p) for p in paths):
        return xrootd_options()
    if keep_trees and paths and all(opentrees.is_local(p) for p in paths):
        return opentrees.uproot_options()
    return {}


def schema_for(config: SelectionConfig) -> type[Tau3MuSchema]:
    return Tau3MuSchema.for_era(config.era)


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
    for at the end.
    """
    from coffea import processor

    from tau3mu import opentrees
    from tau3mu.faults import (
        AtomicCheckpointer,
        BackoffRunner,
        check_accounting,
        configure_xrootd,
        inspect_inputs,
    )

    config = config or getattr(processor_instance, "config", SelectionConfig())
    configure_xrootd()
    inspection = inspect_inputs(
        fileset,
        skip_bad_files=skip_bad_files,
        era=config.era,
        client=client if executor == "dask" else None,
        cache=inspection_cache,
        keep_trees=True,
    )
    fileset = inspection.fileset
    if executor == "iterative":
        ex = processor.IterativeExecutor(status=progress, retries=retries)
    elif executor == "futures":
        ex = processor.FuturesExecutor(workers=workers, status=progress, retries=retries)
    elif executor == "dask":
        if client is None:
            raise ValueError("the dask executor needs a distributed.Client")
        # retried with backoff on the worker (BackoffRunner), not again by Dask at once
        ex = processor.DaskExecutor(client=client, status=progress, retries=0)
    else:
        raise ValueError(f"unknown executor {executor!r}; use iterative, futures or dask")
    runner = BackoffRunner(
        executor=ex,
        schema=schema_for(config),
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
            out, metrics = runner(
                fileset,
                processor_instance=processor_instance,
                uproot_options=_uproot_options(fileset, keep_trees=True),
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

    Bad files are found before the graph is built (and skipped on request); a chunk
    that fails inside the graph fails the run, which the Runner path can skip instead.
    The metrics name the branches the optimised graph reads (``columns``); with
    ``progress``, a progress bar (distributed's with a client, dask's otherwise).
    """
    import contextlib

    import dask
    import dask_awkward as dak
    from coffea.dataset_tools import apply_to_fileset
    from dask.base import unpack_collections

    from tau3mu.faults import check_accounting, inspect_inputs

    config = config or getattr(processor_instance, "config", SelectionConfig())
    tic = time.perf_counter()
    inspection = inspect_inputs(
        fileset,
        skip_bad_files=skip_bad_files,
        era=config.era,
        client=client,
        cache=inspection_cache,
    )
    fileset = inspection.fileset
    # the inspection opened every file already: steps from its entries, no second pass
    available = inspection.steps_fileset(chunksize)
    graphs = apply_to_fileset(
        processor_instance,
        available,
        schemaclass=schema_for(config),
        uproot_options=_uproot_options(fileset),
    )
    build = time.perf_counter()
    collections, repack = unpack_collections(graphs)
    # what the column optimisation leaves to read, per input layer: the Runner's "columns"
    needed = dak.report_necessary_columns(*collections) if collections else {}
    columns = sorted({c for layer in needed.values() for c in layer})
    if client is not None:
        futures = client.compute(list(collections))
        if progress:
            from distributed import progress as show_progress

            show_progress(futures)
        (computed,) = repack(client.gather(futures))
    else:
        bar: Any = contextlib.nullcontext()
        if progress:
            from dask.diagnostics import ProgressBar

            bar = ProgressBar()
        with bar:
            (computed,) = dask.compute(graphs, scheduler="sync")
    merged: dict[str, Any] = {}
    from coffea.processor import accumulate

    merged = accumulate(computed.values())
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
        [],
    )
    return _normalise(merged, metrics)
