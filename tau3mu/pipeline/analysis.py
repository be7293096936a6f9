"""``analyse``: datasets in, the channel's merged cutflows, histograms and snapshot out."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coffea.processor import ProcessorABC

from tau3mu.accounting import accounting_line
from tau3mu.channels import Channel, get_channel
from tau3mu.corrections import scale_factors_for
from tau3mu.datasets import Dataset, Fileset, input_notes, to_fileset
from tau3mu.duplicates import drop_duplicate_events, duplicate_events, duplicates_line
from tau3mu.execution import AnalysisOutput, run_dask_awkward, run_runner
from tau3mu.filecheck import InputFileError
from tau3mu.outputs import in_input_order
from tau3mu.pipeline.executors import ExecutorChoice, choose_executor
from tau3mu.pipeline.options import RunOptions, check_options
from tau3mu.pipeline.session import Session, session
from tau3mu.weights import SimulationWeights, normalisation_of, pileup_note

__all__ = ["Analysis", "Setup", "analyse", "nothing_processed", "prepare"]


@dataclass(frozen=True)
class Setup:
    """What a run works with, every part checked: the channel, its selection
    configuration, what weights simulation and the processor."""

    channel: Channel
    config: Any
    weights: SimulationWeights
    processor: ProcessorABC


@dataclass(frozen=True)
class Analysis:
    """The result of :func:`analyse`.

    ``output``: the merged, input-ordered cutflows, histograms and snapshot (duplicates
    dropped when asked); ``duplicates``: per dataset, the extra copies of selected events
    found; ``choice``: the executor and why; ``workers``: how many ran; ``proxy``: the
    grid proxy's path or None; ``started``, ``processed``: ``time.perf_counter()`` at
    the start and at the end of processing.
    """

    datasets: tuple[Dataset, ...]
    setup: Setup
    output: AnalysisOutput
    duplicates: dict[str, int]
    choice: ExecutorChoice
    workers: int
    proxy: str | None
    started: float
    processed: float


def prepare(datasets: Sequence[Dataset], options: RunOptions) -> Setup:
    """The channel, its configuration (``options.selection`` or its defaults) and the
    simulation weights (scale factors of every simulated year, loaded once; xsec x L /
    ngen per simulated dataset; the pileup weights); no input file is opened.

    Raises :class:`~tau3mu.errors.Tau3MuError`: options that cannot run, an unknown
    channel, scale factors or pileup weights that cannot be chosen or read, a simulated
    dataset without xsec, ngen or a luminosity to normalise to.
    """
    check_options(options)
    channel = get_channel(options.channel)
    config = options.selection if options.selection is not None else channel.default_config()
    scale_factors = scale_factors_for(
        datasets, options.muon_sf, options.no_muon_sf, default_era=config.era
    )
    pileup_file = None if options.pileup is None else str(options.pileup)
    scales, pileup = normalisation_of(datasets, pileup_file, default_era=config.era)
    weights = SimulationWeights(scale_factors, scales, pileup)
    processor = channel.make_processor(config, weights)
    return Setup(channel, config, weights, processor)


def analyse(
    datasets: Sequence[Dataset], options: RunOptions, setup: Setup | None = None
) -> Analysis:
    """Run ``options.channel`` over ``datasets`` with ``options``' executor (or the one
    :func:`~tau3mu.pipeline.choose_executor` picks, said in one line on stderr).

    Skipped files and chunks and the event accounting are printed; the result is in the
    datasets' order. ``setup``: from :func:`prepare` (made here when None).

    Raises :class:`~tau3mu.errors.Tau3MuError`: bad options, a bad input file or chunk
    (unless ``skip_bad_files``), nothing processed at all, an unusable proxy or cluster.
    """
    started = time.perf_counter()
    setup = setup or prepare(datasets, options)
    for line in input_notes(datasets):
        print(line, file=sys.stderr)
    fileset = to_fileset(datasets, default_tree=options.tree)
    if options.no_muon_sf and any(d.is_mc for d in datasets):
        print("note: --no-muon-sf: simulation gets weight 1", file=sys.stderr)
    note = pileup_note(setup.weights.pileup, setup.weights.scales)
    if note:
        print(note, file=sys.stderr)
    choice = choose_executor(fileset, options)
    with session(options, choice) as where:  # the proxy checked first
        if choice.automatic:
            print(choice.line(), file=sys.stderr)
        output = _execute(fileset, setup.processor, options, choice, where)
        workers = _workers(where, choice)
    processed = time.perf_counter()
    _say_accounting(output.metrics.get("accounting", {}))
    nothing_processed(output)
    # chunks merge in the order they finish: the outputs follow the input's order instead
    output = in_input_order(output, [d.name for d in datasets])
    duplicates = duplicate_events(output.snapshot)
    if options.drop_duplicate_events:
        output, _ = drop_duplicate_events(output)
    note = duplicates_line(duplicates, dropped=options.drop_duplicate_events)
    if note:
        print(note)
    return Analysis(
        tuple(datasets), setup, output, duplicates, choice, workers, where.proxy, started, processed
    )


def _execute(
    fileset: Fileset,
    processor: ProcessorABC,
    options: RunOptions,
    choice: ExecutorChoice,
    where: Session,
) -> AnalysisOutput:
    """The processor over the fileset on the chosen executor, in the chosen mode."""
    if options.mode == "dask-awkward":
        return run_dask_awkward(
            fileset,
            processor,
            client=where.client,
            chunksize=options.chunksize,
            skip_bad_files=options.skip_bad_files,
            inspection_cache=options.inspection_cache,
            progress=options.progress,
        )
    return run_runner(
        fileset,
        processor,
        executor=choice.executor,
        client=where.client,
        workers=choice.workers,
        chunksize=options.chunksize,
        progress=options.progress,
        skip_bad_files=options.skip_bad_files,
        checkpoint=options.checkpoint,
        retries=options.retries,
        inspection_cache=options.inspection_cache,
    )


def _workers(where: Session, choice: ExecutorChoice) -> int:
    """The workers that ran: the Dask cluster's, else the choice's."""
    if where.client is not None:
        return len(where.client.scheduler_info()["workers"])
    return choice.workers


def _say_accounting(accounting: dict[str, Any]) -> None:
    """Print what was skipped (stderr) and the accounting line (stdout)."""
    for entry in accounting.get("skipped_files", []):
        events = "unknown" if entry["events"] is None else entry["events"]
        print(f"SKIPPED file {entry['file']} ({events} events): {entry['error']}", file=sys.stderr)
    for entry in accounting.get("skipped_chunks", []):
        print(
            f"SKIPPED chunk {entry['file']} entries {entry['entries'][0]}-{entry['entries'][1]} "
            f"({entry['events']} events): {entry['error']}",
            file=sys.stderr,
        )
    if accounting:
        print(accounting_line(accounting))


def nothing_processed(output: AnalysisOutput) -> None:
    """Raise :class:`~tau3mu.filecheck.InputFileError` when every input was skipped, with a
    hint when every skipped chunk failed the same way."""
    if output.hists:
        return
    accounting = output.metrics.get("accounting", {})
    raise InputFileError("nothing was processed: every input was skipped" + _same_cause(accounting))


def _same_cause(accounting: dict[str, Any]) -> str:
    """A hint when every skipped chunk failed the same way: the options are then more
    likely at fault than the files."""
    chunks = accounting.get("skipped_chunks", [])
    causes = {chunk["error"] for chunk in chunks}
    if len(chunks) < 2 or len(causes) != 1:
        return ""
    return (
        f"; all {len(chunks)} chunks failed with the same error ({causes.pop()}), which points "
        "at the options (--selection, --muon-sf, ...) rather than at the files"
    )
