"""``normalise``: R and f_B per era of a run with simulation, ``normalisation.json`` and
its figures (``docs/physics.md``, "Normalisation")."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tau3mu.pipeline.analysis import Analysis
from tau3mu.pipeline.options import RunOptions
from tau3mu.pipeline.writing import writing_to

__all__ = ["normalise"]


def normalise(
    analysis: Analysis, report: dict[str, Any], out: str | Path, options: RunOptions
) -> dict[str, Any] | None:
    """Measure R and f_B of every era of the analysis that has simulation
    (:func:`tau3mu.normalisation.normalise_histograms`, with ``options.fit_engine`` and
    ``options.label``), write ``normalisation.json`` and its figures into ``out``, name
    them in ``report["outputs"]`` (its time in ``report["normalisation_time_s"]``) and print one line per era; returns the result.

    Nothing happens (None) for a run without simulation, with ``options.fit`` False, or
    for a channel without the mass histogram; a run whose simulation has no data of its
    era (simulation alone, scaled to its own ``lumi``) is not normalised either, said in
    one line. Raises :class:`~tau3mu.errors.OutputError` when a file cannot be written.
    """
    hists = analysis.output.hists
    simulation = any(d.is_mc for d in analysis.datasets)
    if not options.fit or not simulation or "h_mass" not in hists:
        return None
    # imported here: the fits and figures of the normalisation are not needed (nor
    # their import time paid) by a run without simulation
    from tau3mu.normalisation import (
        NormalisationInputError,
        era_groups,
        normalise_histograms,
        summary_lines,
    )
    from tau3mu.normalisation.report import RESULT

    try:
        era_groups(report["datasets"])
    except NormalisationInputError as err:
        print(f"note: no normalisation: {err}", file=sys.stderr)
        return None
    folder = Path(out)
    tic = time.perf_counter()
    with writing_to(folder):
        result = normalise_histograms(
            hists, report, folder, label=options.label, engine=options.fit_engine
        )
    report["normalisation_time_s"] = round(time.perf_counter() - tic, 3)
    report["outputs"]["normalisation"] = str(folder / RESULT)
    report["outputs"]["normalisation_figures"] = [str(folder / f) for f in result["figures"]]
    print("\nNormalisation (R = N_Ds(data) / N_Ds(simulation), f_B from the ct fit):")
    for line in summary_lines(result):
        print(f"  {line}")
    return result
