"""The mass fit of each dataset of a run, with its outputs: ``fit.json`` and one figure
per dataset. ``tau3mu run`` (through :func:`tau3mu.pipeline.fit`) and ``tau3mu fit``
both write them here; this module imports neither coffea nor zfit (``tau3mu fit`` with
the iminuit engine stays quick)."""

from __future__ import annotations

import shutil
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np

from tau3mu.atomic import atomic_path
from tau3mu.fit import FitResult, Spectrum, fit_spectrum
from tau3mu.fitplot import DEFAULT_LABEL, plot_fit
from tau3mu.outputs import safe_name, write_json

__all__ = ["figure_stem", "fit_datasets"]


def figure_stem(outdir: str | Path, dataset: str) -> Path:
    """``<outdir>/mass_fit_<dataset>``: the fit figure of one dataset, without suffix."""
    return Path(outdir) / f"mass_fit_{safe_name(dataset)}"


def fit_datasets(
    histograms: Mapping[str, Spectrum] | Mapping[str, tuple[np.ndarray, np.ndarray]],
    outdir: str | Path,
    *,
    engine: str = "zfit",
    minos: bool = False,
    lumi: Mapping[str, float] | None = None,
    simulation: Collection[str] = (),
    eras: Mapping[str, str | None] | None = None,
    label: str | None = None,
) -> dict[str, FitResult]:
    """Fit each dataset's histogram (a :class:`Spectrum`, or (counts, edges)), with its
    variances where it has them; write fit.json and the figures.

    Each dataset gets ``mass_fit_<dataset>.png/.pdf``; ``mass_fit.png/.pdf`` is a copy
    of the first dataset's (the first in the datasets file, or in ``--dataset``), so
    that it shows the same dataset on every run. Datasets in ``simulation`` are labelled
    as such on the figure; ``eras`` gives each figure its sqrt(s), ``label`` the text
    after "CMS" (default :data:`tau3mu.fitplot.DEFAULT_LABEL`).
    """
    outdir = Path(outdir)
    results: dict[str, FitResult] = {}
    for i, (dataset, spectrum) in enumerate(histograms.items()):
        counts, edges, variances = Spectrum(*spectrum)  # type: ignore[arg-type]
        result = fit_spectrum(counts, edges, engine=engine, minos=minos, variances=variances)
        results[dataset] = result
        written = plot_fit(
            counts,
            edges,
            result,
            figure_stem(outdir, dataset),
            variances=variances,
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
