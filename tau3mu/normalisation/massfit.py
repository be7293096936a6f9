"""The mass fits of the normalisation, through the fit API of :mod:`tau3mu.fit`.

Simulation histograms are weighted: each bin carries a sum of weights and a sum of
squared weights, and :func:`tau3mu.fit.fit_spectrum` fits them with their variances (the
scaled-Poisson likelihood, ``docs/physics.md``, "Fit"); data bins are Poisson counts.
The data fit takes the Crystal Ball tails from the simulation fit (``fixed``); the
fit-model systematic compares the exponential background with a second-order polynomial
(``background``). This module adds the expected counts per component that sWeights need.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from tau3mu.fit import YIELDS, FitResult, fit_spectrum, model_cdf, tail_parameters

__all__ = ["DEFAULT_ENGINE", "expected_counts", "fit_weighted", "tail_parameters"]

#: the engine of the normalisation's fits unless told otherwise (milliseconds a fit; a
#: normalisation runs tens of fits per era)
DEFAULT_ENGINE = "iminuit"


def expected_counts(edges: np.ndarray, params: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Expected counts per bin of each yield's component (``n_ds``, ``n_dplus``,
    ``n_bkg``) at ``params`` (a fit's values, with either background's parameters), on
    ``edges``."""
    edges = np.asarray(edges, dtype=np.float64)
    lo, hi = float(edges[0]), float(edges[-1])
    out = {}
    for name in YIELDS:
        only = {**params, **{y: (params[y] if y == name else 0.0) for y in YIELDS}}
        out[name] = np.diff(model_cdf(edges, only, lo, hi))
    return out


def fit_weighted(
    values: np.ndarray,
    variances: np.ndarray,
    edges: np.ndarray,
    *,
    fixed: Mapping[str, float] | None = None,
    background: str = "exponential",
    engine: str = DEFAULT_ENGINE,
    free: Collection[str] = (),
    minos: bool = False,
) -> FitResult:
    """Fit a mass histogram given by bin ``values`` (sums of weights), ``variances``
    (sums of squared weights) and ``edges`` with :func:`tau3mu.fit.fit_spectrum`;
    ``fixed`` holds named parameters at the values given, ``free`` floats the tail
    exponents named (held at 3 by default); ``minos`` adds Minos errors. Returns its
    :class:`FitResult` (``converged`` False with the reason when the fit failed)."""
    return fit_spectrum(
        np.asarray(values, dtype=np.float64),
        np.asarray(edges, dtype=np.float64),
        engine=engine,
        variances=np.asarray(variances, dtype=np.float64),
        fixed=dict(fixed or {}),
        background=background,
        free=free,
        minos=minos,
    )
