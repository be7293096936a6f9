"""One era's normalisation from a run's histograms: R (:mod:`.ratio`) and f_B
(:mod:`.splot`), from the data and simulation datasets that belong to the era."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from tau3mu.config import ORIGIN_FROM_B, ORIGIN_PROMPT
from tau3mu.normalisation.massfit import DEFAULT_ENGINE, expected_counts
from tau3mu.normalisation.ratio import RatioMeasurement, measure_ratio
from tau3mu.normalisation.splot import (
    FractionResult,
    fit_fraction_from_b,
    merge_bins,
    signal_sweights,
    sweighted,
    template_binning,
)
from tau3mu.normalisation.sweight_errors import fraction_gradient, sweight_variance

__all__ = ["data_sweights", "measure_era", "summed"]


def summed(
    h: Any, datasets: Sequence[str], systematic: str = "nominal"
) -> tuple[np.ndarray, np.ndarray]:
    """(values, variances) of ``h`` summed over ``datasets`` at ``systematic``, as arrays
    over its remaining axes (the ``dataset`` and ``systematic`` axes first)."""
    names = h.axes["dataset"]
    rows = [names.index(name) for name in datasets]
    column = h.axes["systematic"].index(systematic)
    values = h.values()[rows, column].sum(axis=0)
    variances = h.variances()[rows, column].sum(axis=0)
    return values, variances


def data_sweights(
    measurement: RatioMeasurement, edges: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """The Ds+ sWeight per mass bin from the nominal data fit."""
    fit = measurement.data_fit
    params = {name: p["value"] for name, p in fit.params.items()}
    components = {k: v for k, v in expected_counts(edges, params).items() if v.sum() > 0}
    return signal_sweights(counts, components)


def _fraction(
    hists: Mapping[str, Any], data: Sequence[str], sim: Sequence[str], measurement: Any, weights
):
    """f_B from the sWeighted data ct and the simulation templates; its error adds the
    sWeights' own fluctuation (:func:`sweight_variance`) to the template fit's."""
    h_ct = hists["h_ct"]
    values, variances = summed(h_ct, data)  # (origin, mass, ct)
    counts = values.sum(axis=0)
    ct_data = sweighted(counts, variances.sum(axis=0), weights)
    sim_values, sim_variances = summed(h_ct, sim)
    origin = h_ct.axes["origin"]

    def template(code: int) -> tuple[np.ndarray, np.ndarray]:
        i = origin.index(code)
        return sim_values[i].sum(axis=0), sim_variances[i].sum(axis=0)

    prompt, from_b = template(ORIGIN_PROMPT), template(ORIGIN_FROM_B)
    if prompt[0].sum() <= 0 or from_b[0].sum() <= 0:
        nan = math.nan
        reason = "the simulation has no prompt Ds+ or none from b hadrons (h_ct origin 1, 2)"
        edges = h_ct.axes["ct"].edges
        return (
            FractionResult(False, nan, nan, nan, nan, nan, nan, reason),
            ct_data,
            prompt,
            from_b,
            edges,
        )
    cuts = template_binning(prompt[0] + from_b[0], float(ct_data[0].sum()))
    ct_data, prompt, from_b = (
        (merge_bins(h[0], cuts), merge_bins(h[1], cuts)) for h in (ct_data, prompt, from_b)
    )
    edges = h_ct.axes["ct"].edges[cuts]
    result = fit_fraction_from_b(ct_data, prompt, from_b, edges)
    if result.converged:
        g = fraction_gradient(ct_data[1], prompt, from_b, result.n_prompt, result.n_from_b)
        mass_edges = hists["h_mass"].axes["mass"].edges
        extra = sweight_variance(g, merge_bins(counts, cuts), mass_edges, measurement.data_fit)
        result = replace(
            result,
            template_fit_error=result.error,
            sweight_error=math.copysign(math.sqrt(abs(extra)), extra),
            error=math.sqrt(max(result.error**2 + extra, 0.0)),
        )
    return result, ct_data, prompt, from_b, edges


def measure_era(
    hists: Mapping[str, Any],
    data: Sequence[str],
    simulation: Sequence[str],
    *,
    systematics: bool = True,
    engine: str = DEFAULT_ENGINE,
) -> dict[str, Any]:
    """R with its errors and, when ``h_ct`` exists, f_B, for the data and simulation
    datasets of one era. Returns a dict with ``ratio`` (a :class:`RatioMeasurement`, or
    None when a nominal fit failed), ``failed`` (the reason), ``fraction`` (a
    :class:`FractionResult` or None), ``sweights``, ``ct`` (the sWeighted data and the two
    templates, for the figure) and ``edges``. ``systematics`` False: R without its
    systematic variations (toys); ``engine``: the fit engine."""
    h_mass = hists["h_mass"]
    edges = h_mass.axes["mass"].edges
    data_h = summed(h_mass, data)
    names = [s for s in h_mass.axes["systematic"] if s in ("nominal", "sf_up", "sf_down")]
    sim_h = {s: summed(h_mass, simulation, s) for s in names}
    out: dict[str, Any] = {"ratio": None, "failed": None, "fraction": None, "edges": edges}
    measured = measure_ratio(data_h, sim_h, edges, systematics=systematics, engine=engine)
    if not isinstance(measured, RatioMeasurement):
        sim_fit, data_fit = measured
        which = "simulation" if not sim_fit.converged else "data"
        out["failed"] = (
            f"the {which} mass fit failed: {(sim_fit if which == 'simulation' else data_fit).reason}"
        )
        return out
    out["ratio"] = measured
    out["sweights"] = data_sweights(measured, edges, data_h[0])
    if "h_ct" in hists:
        fraction, *ct, ct_edges = _fraction(hists, data, simulation, measured, out["sweights"])
        out["fraction"], out["ct"], out["ct_edges"] = fraction, ct, ct_edges
    return out
