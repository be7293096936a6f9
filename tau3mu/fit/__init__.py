"""The Ds+ / D+ mass fit (``docs/physics.md``, "Fit"): extended binned maximum likelihood.

Model: Crystal Ball for the Ds+, Crystal Ball for the D+, exponential background (or a
second-order polynomial), each extended with its own yield. A weighted histogram is
fitted with its variances; any parameter may be fixed (the tails of a simulation fit for
the data fit: :func:`tail_parameters`). One module per job:

- :mod:`~tau3mu.fit.parameters`: names, ranges, fixed parameters, start values;
- :mod:`~tau3mu.fit.histogram`: the spectrum a histogram gives the fit;
- :mod:`~tau3mu.fit.model`: the model in numpy (CDF, toys); :mod:`~tau3mu.fit.zfit_pdfs`
  the same model as zfit PDFs;
- :mod:`~tau3mu.fit.strategy`: the minimisation strategy both engines share;
- :mod:`~tau3mu.fit.engine_zfit` (the default) and :mod:`~tau3mu.fit.engine_iminuit`
  (independent, milliseconds): each supplies its loss and expected counts;
- :mod:`~tau3mu.fit.result`: :class:`FitResult`, saved as JSON;
- :mod:`~tau3mu.fit.engines`: :func:`fit_mass` and :func:`fit_spectrum`, over either engine.

Importing this package imports neither zfit nor iminuit; an engine imports its own at
its first fit.
"""

from __future__ import annotations

from tau3mu.fit.engine_iminuit import fit_counts_iminuit
from tau3mu.fit.engine_zfit import fit_counts
from tau3mu.fit.engines import ENGINES, add_fit_engine_option, fit_mass, fit_spectrum
from tau3mu.fit.histogram import Spectrum, is_weighted, mass_counts, mass_spectrum
from tau3mu.fit.model import model_cdf, toy_counts, weighted_toy
from tau3mu.fit.parameters import (
    BACKGROUNDS,
    FIXED,
    PARAMETER_ORDER,
    SHAPE_DEFAULTS,
    SIDEBANDS,
    TAILS,
    YIELDS,
    parameter_order,
    start_values,
)
from tau3mu.fit.result import FitResult, load_result, tail_parameters

__all__ = [
    "BACKGROUNDS",
    "ENGINES",
    "FIXED",
    "PARAMETER_ORDER",
    "SHAPE_DEFAULTS",
    "SIDEBANDS",
    "TAILS",
    "YIELDS",
    "FitResult",
    "Spectrum",
    "add_fit_engine_option",
    "fit_counts",
    "fit_counts_iminuit",
    "fit_mass",
    "fit_spectrum",
    "is_weighted",
    "load_result",
    "mass_counts",
    "mass_spectrum",
    "model_cdf",
    "parameter_order",
    "start_values",
    "tail_parameters",
    "toy_counts",
    "weighted_toy",
]
