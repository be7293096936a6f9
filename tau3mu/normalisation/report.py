"""``normalisation.json`` and the figures, from a run's saved outputs
(``histograms.pkl``, ``report.json``): what ``tau3mu normalise`` writes."""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tau3mu.fitplot import DEFAULT_LABEL
from tau3mu.normalisation.era import measure_era, summed
from tau3mu.normalisation.figures import plot_control, plot_ct_fit, plot_ratios
from tau3mu.normalisation.grouping import NormalisationInputError, era_groups
from tau3mu.normalisation.massfit import DEFAULT_ENGINE
from tau3mu.normalisation.splot import sweighted

__all__ = ["FIGURES", "RESULT", "load_run", "normalise", "normalise_histograms", "summary_lines"]

#: the result file and the figures' folder, inside the run's output folder
RESULT, FIGURES = "normalisation.json", "normalisation"


def load_run(outdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(histograms, report) of a run's output folder; :class:`NormalisationInputError`
    naming the file when one is missing or unreadable."""
    paths = {name: outdir / name for name in ("histograms.pkl", "report.json")}
    for path in paths.values():
        if not path.is_file():
            raise NormalisationInputError(f"{path}: not found (is {outdir} a run's output folder?)")
    try:
        with paths["histograms.pkl"].open("rb") as handle:
            hists = pickle.load(handle)
        report = json.loads(paths["report.json"].read_text())
    except (pickle.UnpicklingError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NormalisationInputError(f"{outdir}: cannot read the run's outputs ({err})") from err
    if "h_mass" not in hists or "datasets" not in report:
        raise NormalisationInputError(
            f"{outdir}: no h_mass histogram or no datasets in report.json"
        )
    return hists, report


def _lumi(report: Mapping[str, Any], names: Sequence[str]) -> float | None:
    values = [report["datasets"][n].get("lumi") for n in names]
    return float(sum(values)) if values and all(v for v in values) else None


def _era_entry(era: str, group: dict, measured: dict, report: Mapping[str, Any]) -> dict:
    weights = report.get("weights", {})
    entry: dict[str, Any] = {
        "data_datasets": group["data"],
        "simulation_datasets": group["simulation"],
        "lumi_fb": _lumi(report, group["data"]),
        "inputs": {n: report["datasets"][n] for n in group["data"] + group["simulation"]},
        "weights": {n: weights.get(n) for n in group["simulation"]},
        "status": "ok" if measured["ratio"] is not None else "failed",
        "reason": measured["failed"],
    }
    if measured["ratio"] is not None:
        entry.update(measured["ratio"].to_dict())
    fraction = measured["fraction"]
    entry["f_B"] = (
        None
        if fraction is None
        else {"value": fraction.fraction, "error": fraction.error, **fraction.to_dict()}
    )
    return entry


def _component(h: Any, datasets: list[str], systematic: str, weights: np.ndarray):
    """The Ds+ component (sWeighted over mass) of a control histogram's variable."""
    values, variances = summed(h, datasets, systematic)
    extra = tuple(range(values.ndim - 2))  # e.g. the origin axis of h_ct
    return sweighted(values.sum(axis=extra), variances.sum(axis=extra), weights)


def _control_figures(
    hists: dict, era: str, group: dict, measured: dict, folder: Path, lumi: Any, label: str
) -> list[Path]:
    """One data/simulation figure per control histogram (a ``mass`` axis and a variable)."""
    from tau3mu.normalisation.era import data_sweights

    ratio = measured["ratio"]
    edges = measured["edges"]
    sim_mass = summed(hists["h_mass"], group["simulation"])
    sim_w = data_sweights(_as_data(ratio), edges, sim_mass[0])
    written = []
    for name, h in hists.items():
        names = [a.name for a in h.axes]
        if name == "h_mass" or "mass" not in names or names[-1] == "mass":
            continue
        systematics = [s for s in h.axes["systematic"] if s in ("nominal", "sf_up", "sf_down")]

        data = _component(h, group["data"], "nominal", measured["sweights"])
        sim = {s: _component(h, group["simulation"], s, sim_w) for s in systematics}
        axis = h.axes[-1]
        written += plot_control(
            data,
            sim,
            axis.edges,
            folder / f"{name}_{era}",
            xlabel=axis.label or axis.name,
            era=era,
            lumi=lumi,
            label=label,
        )
    return written


def _as_data(ratio: Any) -> Any:
    """The ratio measurement with its simulation fit in the data fit's place (sWeights
    of simulation come from simulation's own fit)."""
    from dataclasses import replace

    return replace(ratio, data_fit=ratio.simulation_fit)


def normalise(
    outdir: str | Path,
    *,
    figures: bool = True,
    label: str = DEFAULT_LABEL,
    engine: str = DEFAULT_ENGINE,
) -> dict[str, Any]:
    """Measure R and f_B of every era of a run's saved outputs; write ``normalisation.json``
    (returned as a dict) and, with ``figures``, the figures under ``normalisation/``
    (``label``: the text after "CMS"; ``engine``: the fit engine).

    Raises :class:`NormalisationInputError` (a :class:`tau3mu.errors.Tau3MuError`) for a
    folder without the run's outputs, a run without simulation, an era without data.
    """
    hists, report = load_run(Path(outdir))
    return normalise_histograms(hists, report, outdir, figures=figures, label=label, engine=engine)


def normalise_histograms(
    hists: Mapping[str, Any],
    report: Mapping[str, Any],
    outdir: str | Path,
    *,
    figures: bool = True,
    label: str = DEFAULT_LABEL,
    engine: str = DEFAULT_ENGINE,
) -> dict[str, Any]:
    """:func:`normalise` of a run's histograms (``h_mass`` and the control histograms)
    and its report (``report.json``'s ``datasets`` and ``weights``), written into
    ``outdir``; returns ``normalisation.json``'s content.

    Raises :class:`NormalisationInputError` for a run without simulation or an era
    without data.
    """
    from tau3mu.outputs import write_json

    outdir = Path(outdir)
    groups = era_groups(report["datasets"])
    folder = outdir / FIGURES
    result: dict[str, Any] = {"fit_engine": engine, "eras": {}, "figures": []}
    for era, group in groups.items():
        measured = measure_era(hists, group["data"], group["simulation"], engine=engine)
        entry = _era_entry(era, group, measured, report)
        result["eras"][era] = entry
        if not figures or measured["ratio"] is None:
            continue
        if measured["fraction"] is not None:
            result["figures"] += plot_ct_fit(
                measured["ct"],
                measured["ct_edges"],
                measured["fraction"],
                folder / f"ct_fit_{era}",
                era=era,
                lumi=entry["lumi_fb"],
                label=label,
            )
        result["figures"] += _control_figures(
            dict(hists), era, group, measured, folder, entry["lumi_fb"], label
        )
    done = {e: v for e, v in result["eras"].items() if v["status"] == "ok"}
    if figures and done:
        result["figures"] += plot_ratios(done, folder / "ratio_per_era", label)
    result["figures"] = [str(p.relative_to(outdir)) for p in result["figures"]]
    write_json(outdir / RESULT, result)
    return result


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """One line per era of a :func:`normalise` result: R with its statistical and
    systematic errors and f_B with its error, or why either was not measured."""
    lines = []
    for era, entry in result["eras"].items():
        if entry["status"] != "ok":
            lines.append(f"{era}: {entry['reason']}")
            continue
        line = (
            f"{era}: R = {entry['R']:.3f} +- {entry['stat_error']:.3f} (stat) "
            f"+- {entry['syst_error']:.3f} (syst)"
        )
        if entry["f_B"] and entry["f_B"]["converged"]:
            line += f", f_B = {entry['f_B']['value']:.3f} +- {entry['f_B']['error']:.3f}"
        elif entry["f_B"]:
            line += f"; f_B not measured: {entry['f_B']['reason']}"
        lines.append(line)
    return lines
