"""The analysis as library functions, for notebooks and the ``tau3mu`` commands alike.

``analyse`` runs a channel over datasets, ``write`` writes its histograms, cutflow and
snapshot, ``fit`` fits and draws the mass peaks, ``normalise`` measures R and f_B per
era of a run with simulation, ``run`` does all of it and writes ``report.json``; every
step takes one :class:`RunOptions`. The next steps of the analysis (the inference) take
an :class:`Analysis` and the options the same way and belong here.

Example::

    from tau3mu.datasets import load_datasets
    from tau3mu.pipeline import RunOptions, analyse, fit, write

    datasets = load_datasets("input.json")
    options = RunOptions(executor="iterative", fit_engine="iminuit")
    analysis = analyse(datasets, options)
    write(analysis, "out", options)
    fits = fit(analysis, "out", options)
"""

from __future__ import annotations

from tau3mu.datasets import DatasetFiles, Fileset
from tau3mu.pipeline.analysis import Analysis, Setup, analyse, prepare
from tau3mu.pipeline.executors import ExecutorChoice, choose_executor, count_events
from tau3mu.pipeline.fitting import Fits, fit
from tau3mu.pipeline.normalising import normalise
from tau3mu.pipeline.options import (
    ExecutorName,
    FitEngine,
    ModeName,
    RunOptions,
    SnapshotFormat,
    check_options,
)
from tau3mu.pipeline.report import build_report, write_report
from tau3mu.pipeline.run import run
from tau3mu.pipeline.session import performance_report_or_warn
from tau3mu.pipeline.writing import Written, start_outputs, write, writing_to

__all__ = [
    "Analysis",
    "DatasetFiles",
    "ExecutorChoice",
    "ExecutorName",
    "Fileset",
    "FitEngine",
    "Fits",
    "ModeName",
    "RunOptions",
    "Setup",
    "SnapshotFormat",
    "Written",
    "analyse",
    "build_report",
    "check_options",
    "choose_executor",
    "count_events",
    "fit",
    "normalise",
    "performance_report_or_warn",
    "prepare",
    "run",
    "start_outputs",
    "write",
    "write_report",
    "writing_to",
]
