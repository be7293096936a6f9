"""``fit``: the mass fit of each dataset, ``fit.json`` and the figures."""

from __future__ import annotations

import shutil
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tau3mu.fit import FitResult, fit_counts, fit_counts_iminuit
from tau3mu.fitplot import DEFAULT_LABEL, plot_fit
from tau3mu.outputs import atomic_path, safe_name, write_json
from tau3mu.pipeline.analysis import Analysis
from tau3mu.pipeline.options import FitEngine, RunOptions
from tau3mu.pipeline.writing import writing_to

__all__ = ["Fits", "figure_stem", "fit", "fit_histograms"]

#: per dataset: (counts, bin edges) of its mass histogram
MassHistograms = Mapping[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Fits:
    """The fit of each dataset, in input order, and the seconds the fits and figures
    took (None when nothing was fitted)."""

    results: dict[str, FitResult]
    seconds: float | None


def figure_stem(outdir: str | Path, dataset: str) -> Path:
    """``<outdir>/mass_fit_<dataset>``: the fit figure of one dataset, without suffix."""
    return Path(outdir) / f"mass_fit_{safe_name(dataset)}"


def fit(analysis: Analysis, out: str | Path, options: RunOptions) -> Fits:
    """Fit the channel's fit histogram (nominal) of every dataset with
    ``options.fit_engine``; write ``fit.json`` and the figures into ``out``; print each
    fit's table (and the generated truth beside the fitted yields, where known).

    A channel without a fit histogram, or ``options.fit`` False, fits nothing.
    Raises :class:`~tau3mu.errors.OutputError` when a file cannot be written.
    """
    name = analysis.setup.channel.fit_histogram
    if not options.fit or name is None:
        return Fits({}, None)
    h = analysis.output.hists[name]
    histograms = {}
    for dataset in h.axes["dataset"]:
        one = h[{"dataset": dataset, "systematic": "nominal"}]
        histograms[dataset] = (one.values(), one.axes[0].edges)
    datasets = analysis.datasets
    tic = time.perf_counter()
    with writing_to(Path(out)):
        results = fit_histograms(
            histograms,
            out,
            engine=options.fit_engine,
            lumi={d.name: d.lumi for d in datasets if d.lumi},
            simulation={d.name for d in datasets if d.is_mc},
            eras={d.name: d.era or analysis.setup.config.era for d in datasets},
            label=options.label,
        )
    seconds = time.perf_counter() - tic
    for dataset, result in results.items():
        truth = analysis.output.truth.get(dataset)
        print(f"\nMass fit of {dataset}:\n{result.table()}")
        if truth and result.converged:
            for key, param in (("ds", "n_ds"), ("dplus", "n_dplus")):
                fitted = result.value_text(param, fmt="8.0f", error_fmt=".0f")
                print(f"  generated truth {key:>6}: {truth[key]:>8}  fitted {fitted}")
    return Fits(results, seconds)


def fit_histograms(
    histograms: MassHistograms,
    outdir: str | Path,
    *,
    engine: FitEngine = "zfit",
    minos: bool = False,
    lumi: Mapping[str, float] | None = None,
    simulation: Collection[str] = (),
    eras: Mapping[str, str | None] | None = None,
    label: str | None = None,
) -> dict[str, FitResult]:
    """Fit each dataset's ``(counts, edges)``; write ``fit.json`` and the figures.

    Each dataset gets ``mass_fit_<dataset>.png/.pdf``; ``mass_fit.png/.pdf`` is a copy
    of the first dataset's, so that it shows the same dataset on every run. Datasets in
    ``simulation`` are labelled as such; ``eras`` gives each figure its sqrt(s),
    ``lumi`` its luminosity, ``label`` the text after "CMS". Returns the results in the
    order of ``histograms``.
    """
    outdir = Path(outdir)
    results: dict[str, FitResult] = {}
    for i, (dataset, (counts, edges)) in enumerate(histograms.items()):
        if engine == "iminuit":
            result = fit_counts_iminuit(counts, edges, minos=minos)
        else:
            result = fit_counts(counts, edges, minos=minos)
        results[dataset] = result
        written = plot_fit(
            counts,
            edges,
            result,
            figure_stem(outdir, dataset),
            lumi=(lumi or {}).get(dataset),
            era=(eras or {}).get(dataset),
            label=DEFAULT_LABEL if label is None else label,
            title=dataset,
            simulation=dataset in simulation,
        )
        if i == 0:
            for figure in written:
                with atomic_path(outdir / f"mass_fit{figure.suffix}") as tmp:
                    shutil.copyfile(figure, tmp)
    write_json(
        outdir / "fit.json", {d: {"engine": engine, **r.to_dict()} for d, r in results.items()}
    )
    return results
