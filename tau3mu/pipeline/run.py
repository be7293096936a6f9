"""``run``: the whole analysis of ``tau3mu run``, as one call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tau3mu.datasets import Dataset
from tau3mu.pipeline.analysis import analyse, prepare
from tau3mu.pipeline.fitting import fit
from tau3mu.pipeline.normalising import normalise
from tau3mu.pipeline.options import RunOptions
from tau3mu.pipeline.report import build_report, write_report
from tau3mu.pipeline.writing import start_outputs, write

__all__ = ["run"]


def run(datasets: Sequence[Dataset], out: str | Path, options: RunOptions) -> dict[str, Any]:
    """:func:`prepare`, :func:`analyse`, :func:`write`, :func:`fit`, :func:`normalise`
    (a run with simulation) and ``report.json`` into the folder ``out``; returns the
    report.

    Everything that can be checked without the inputs is checked first; only then is an
    earlier run's ``report.json`` removed and an input file opened.

    Raises :class:`~tau3mu.errors.Tau3MuError` for a mistake in what was given.
    """
    setup = prepare(datasets, options)
    folder = start_outputs(out)
    analysis = analyse(datasets, options, setup)
    written = write(analysis, folder, options)
    fits = fit(analysis, folder, options)
    report = build_report(analysis, written, fits, folder, options)
    normalise(analysis, report, folder, options)
    write_report(folder, report)
    return report
