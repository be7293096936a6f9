"""The normalisation of the tau -> 3 mu search from this channel (``docs/physics.md``,
"Normalisation"): per era, the data/simulation ratio R of Ds+ yields with its statistical
and systematic errors, and the fraction f_B of Ds+ from b-hadron decays."""

from __future__ import annotations

from tau3mu.normalisation.era import measure_era
from tau3mu.normalisation.grouping import NormalisationInputError, era_groups
from tau3mu.normalisation.massfit import fit_weighted, tail_parameters
from tau3mu.normalisation.ratio import RatioMeasurement, measure_ratio
from tau3mu.normalisation.report import normalise, normalise_histograms, summary_lines
from tau3mu.normalisation.splot import fit_fraction_from_b, signal_sweights, sweighted

__all__ = [
    "NormalisationInputError",
    "RatioMeasurement",
    "era_groups",
    "fit_fraction_from_b",
    "fit_weighted",
    "measure_era",
    "measure_ratio",
    "normalise",
    "normalise_histograms",
    "signal_sweights",
    "summary_lines",
    "sweighted",
    "tail_parameters",
]
