"""``report.json``: what a run read, how, how long it took and what it wrote."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tau3mu.mass_fits import figure_stem
from tau3mu.outputs import write_json
from tau3mu.pipeline.analysis import Analysis
from tau3mu.pipeline.fitting import Fits
from tau3mu.pipeline.options import RunOptions
from tau3mu.pipeline.session import proxy_path
from tau3mu.pipeline.writing import Written, writing_to

__all__ = ["PACKAGES", "build_report", "versions", "write_report"]

#: the packages whose versions report.json records
PACKAGES = (
    "tau3mu",
    "coffea",
    "uproot",
    "awkward",
    "dask",
    "distributed",
    "dask-awkward",
    "numba",
    "hist",
    "zfit",
    "correctionlib",
    "numpy",
)


def versions() -> dict[str, str]:
    """The installed version of each of :data:`PACKAGES` (``not installed`` if absent)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def build_report(
    analysis: Analysis, written: Written, fits: Fits, out: Path, options: RunOptions
) -> dict[str, Any]:
    """The content of ``report.json`` (times up to now)."""
    output, setup = analysis.output, analysis.setup
    metrics = output.metrics
    events = sum(steps["events"]["events"] for steps in output.cutflow.values())
    wall = analysis.processed - analysis.started
    return {
        "datasets": {
            d.name: {
                "files": list(d.files),
                "type": d.type,
                "era": d.era,
                "lumi": d.lumi,
                "xsec": d.xsec,
                "ngen": d.ngen,
                # the dataset's own keys: its "metadata" object and the keys tau3mu does not use
                "metadata": d.metadata,
            }
            for d in analysis.datasets
        },
        "events": events,
        "bytes_read": metrics.get("bytesread"),
        "columns": sorted({c.rsplit("-", 1)[0] for c in metrics.get("columns", [])}),
        # start to the end of processing (reading the inputs, a cluster's start included)
        "wall_time_s": round(wall, 3),
        # the executor's own processing time
        "processing_time_s": round(metrics.get("wall_s", wall), 3),
        # the fits and their figures (null with --no-fit)
        "fit_time_s": None if fits.seconds is None else round(fits.seconds, 3),
        # the whole run, outputs written
        "total_time_s": round(time.perf_counter() - analysis.started, 3),
        "throughput_events_per_s": round(events / metrics["wall_s"], 1)
        if metrics.get("wall_s")
        else None,
        "executor": metrics.get("executor"),
        # which executor, chosen or asked for, and why
        "executor_choice": analysis.choice.to_dict(),
        "mode": metrics.get("mode"),
        "workers": analysis.workers,
        "chunksize": options.chunksize,
        "files_known_good": metrics.get("files_known_good", 0),
        "accounting": metrics.get("accounting", {}),
        # selected events that occur more than once in a dataset (same run, lumi, event)
        "duplicate_events": {
            "extra_copies": analysis.duplicates,
            "dropped": options.drop_duplicate_events,
        },
        # one file, one table: its dataset column/branch and, for ROOT, what its values mean
        "snapshot": written.snapshot,
        # where the proxy is, never what it holds
        "x509_proxy": proxy_path(analysis.proxy),
        "channel": setup.channel.name,
        "selection": {
            "config": setup.config.to_dict(),
            "periods": setup.channel.periods(setup.config, analysis.datasets),
        },
        # the scale-factor file applied to each simulated year ({} without simulation)
        "muon_sf": {str(year): sf.path for year, sf in sorted(setup.weights.muon_sf.items())},
        "truth": output.truth,
        "scale_factors": output.scale_factors,
        # per simulated dataset: xsec, ngen, L and where it comes from, the scale, SF, pileup
        "weights": setup.weights.report(
            {d.name: d.era or setup.config.era for d in analysis.datasets}
        ),
        "fit": {
            d: {"converged": f.converged, "n_ds": f.params.get("n_ds")}
            for d, f in fits.results.items()
        },
        "versions": versions(),
        "outputs": _outputs(written, fits, out),
    }


def _outputs(written: Written, fits: Fits, out: Path) -> dict[str, Any]:
    """The files of the run, for ``report.json``'s ``outputs``."""
    paths: dict[str, Any] = {
        "histograms_root": str(written.histograms_root),
        "histograms_pickle": str(written.histograms_pickle),
        "cutflow": str(written.cutflow),
        "snapshot": written.snapshot["path"],
    }
    if fits.results:
        paths["fit"] = str(out / "fit.json")
        # mass_fit.png/.pdf: a copy of the first dataset's (input order)
        paths["plot"] = str(out / "mass_fit.png")
        paths["plots"] = {
            d: [str(figure_stem(out, d).with_suffix(s)) for s in (".png", ".pdf")]
            for d in fits.results
        }
    return paths


def write_report(out: Path, report: dict[str, Any]) -> Path:
    """Write ``report.json`` into ``out``, last: it marks a complete run.

    Raises :class:`~tau3mu.errors.OutputError` when it cannot be written.
    """
    with writing_to(out):
        return write_json(out / "report.json", report)
