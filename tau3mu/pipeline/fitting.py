"""``fit``: the mass fit of each dataset, ``fit.json`` and the figures."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tau3mu.fit import FitResult, Spectrum
from tau3mu.mass_fits import fit_datasets
from tau3mu.pipeline.analysis import Analysis
from tau3mu.pipeline.options import RunOptions
from tau3mu.pipeline.writing import writing_to

__all__ = ["Fits", "fit"]


@dataclass(frozen=True)
class Fits:
    """The fit of each dataset, in input order, and the seconds the fits and figures
    took (None when nothing was fitted)."""

    results: dict[str, FitResult]
    seconds: float | None


def fit(analysis: Analysis, out: str | Path, options: RunOptions) -> Fits:
    """Fit the channel's fit histogram (nominal) of every dataset with
    ``options.fit_engine``; write ``fit.json`` and the figures into ``out``; print each
    fit's table (and the generated truth beside the fitted yields of data, where known).

    A channel without a fit histogram, or ``options.fit`` False, fits nothing.
    Raises :class:`~tau3mu.errors.OutputError` when a file cannot be written.
    """
    name = analysis.setup.channel.fit_histogram
    if not options.fit or name is None:
        return Fits({}, None)
    h = analysis.output.hists[name]
    histograms: dict[str, Spectrum] = {}
    for dataset in h.axes["dataset"]:
        one = h[{"dataset": dataset, "systematic": "nominal"}]
        histograms[dataset] = Spectrum(one.values(), one.axes[0].edges, one.variances())
    datasets = analysis.datasets
    simulation = {d.name for d in datasets if d.is_mc}
    tic = time.perf_counter()
    with writing_to(Path(out)):
        results = fit_datasets(
            histograms,
            out,
            engine=options.fit_engine,
            lumi={d.name: d.lumi for d in datasets if d.lumi},
            simulation=simulation,
            eras={d.name: d.era or analysis.setup.config.era for d in datasets},
            label=options.label,
        )
    seconds = time.perf_counter() - tic
    for dataset, result in results.items():
        # simulation's fitted yields are weighted: its truth counts events, not weights
        truth = None if dataset in simulation else analysis.output.truth.get(dataset)
        print(f"\nMass fit of {dataset}:\n{result.table()}")
        if truth and result.converged:
            for key, param in (("ds", "n_ds"), ("dplus", "n_dplus")):
                fitted = result.value_text(param, fmt="8.0f", error_fmt=".0f")
                print(f"  generated truth {key:>6}: {truth[key]:>8}  fitted {fitted}")
    return Fits(results, seconds)
