"""Mass fits of weighted histograms with named parameters fixed and a choice of background.

The normalisation (``docs/physics.md``, "Normalisation") needs what the plain mass fit
of :mod:`tau3mu.fit` does not offer: simulation histograms are weighted, so each bin
carries a sum of weights and a sum of squared weights; the data fit takes the Crystal
Ball tails from the simulation fit (``fixed``); and the fit-model systematic compares an
exponential background with a second-order polynomial (``background``).

Method for weighted bins: iminuit's ``ExtendedBinnedNLL`` given (sum w, sum w^2) per bin,
which replaces each bin's Poisson term by the scaled-Poisson one (Bohm & Zech): with
k = sum w / sum w^2 the bin contributes like k x sum w effective entries, so the Hesse
errors reflect the sum of squared weights, not sqrt(N). For unweighted bins
(variances equal to the values) k = 1 and the likelihood is the ordinary Poisson one.

The model is :func:`tau3mu.fit.model_cdf`'s (Crystal Ball Ds+ and D+, exponential
background); ``poly2`` replaces the exponential by 1 + c1 t + c2 t^2 on t in [-1, 1]
across the fit range. Results are :class:`tau3mu.fit.FitResult` objects.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from tau3mu.fit import SHAPE_DEFAULTS, YIELDS, FitResult, model_cdf, start_values

__all__ = [
    "BACKGROUNDS",
    "TAILS",
    "expected_counts",
    "fit_weighted",
    "tail_parameters",
]

#: background shapes of the fit-model systematic
BACKGROUNDS = ("exponential", "poly2")
#: the Crystal Ball tail parameters a data fit takes from simulation
TAILS = ("alpha_ds", "n_cb_ds", "alpha_dplus", "n_cb_dplus")
#: (start, lower, upper) of the second-order polynomial's coefficients
POLY2_DEFAULTS = {"c1": (0.0, -1.0, 1.0), "c2": (0.0, -1.0, 1.0)}
#: tail exponents held at their start unless a fit asks to float them
DEFAULT_FIXED = ("n_cb_ds", "n_cb_dplus")


def tail_parameters(result: FitResult) -> dict[str, float]:
    """The Crystal Ball tails (alpha, n of Ds+ and D+) of a fit, to fix in another."""
    return {name: result.value(name) for name in TAILS}


def _poly2_cdf(x: np.ndarray, c1: float, c2: float, lo: float, hi: float) -> np.ndarray:
    """Fraction of 1 + c1 t + c2 t^2 (t in [-1, 1] over [lo, hi]) below ``x``."""
    t = 2.0 * (np.asarray(x) - lo) / (hi - lo) - 1.0
    integral = (t + 1.0) + c1 * (t * t - 1.0) / 2.0 + c2 * (t**3 + 1.0) / 3.0
    return integral / (2.0 + 2.0 * c2 / 3.0)


def _cdf(x: np.ndarray, p: Mapping[str, float], lo: float, hi: float, background: str):
    if background == "exponential":
        return model_cdf(x, dict(p), lo, hi)
    peaks = model_cdf(x, {**p, "n_bkg": 0.0, "slope": 0.0}, lo, hi)
    return peaks + p["n_bkg"] * _poly2_cdf(x, p["c1"], p["c2"], lo, hi)


def _names(background: str) -> tuple[str, ...]:
    shapes = [n for n in SHAPE_DEFAULTS if not (background == "poly2" and n == "slope")]
    extra = tuple(POLY2_DEFAULTS) if background == "poly2" else ()
    return (*YIELDS, *shapes, *extra)


def expected_counts(
    edges: np.ndarray, params: Mapping[str, float], background: str = "exponential"
) -> dict[str, np.ndarray]:
    """Expected counts per bin of each yield's component (``n_ds``, ``n_dplus``,
    ``n_bkg``) at ``params`` (a fit's values), on ``edges``."""
    edges = np.asarray(edges, dtype=np.float64)
    lo, hi = float(edges[0]), float(edges[-1])
    out = {}
    for name in YIELDS:
        only = {**params, **{y: (params[y] if y == name else 0.0) for y in YIELDS}}
        out[name] = np.diff(_cdf(edges, only, lo, hi, background))
    return out


def _minuit(data: np.ndarray, edges: np.ndarray, background: str, fixed: Mapping[str, float]):
    from iminuit import Minuit
    from iminuit.cost import ExtendedBinnedNLL

    names = _names(background)
    lo, hi = float(edges[0]), float(edges[-1])

    def model(x, *values):
        return _cdf(x, dict(zip(names, values, strict=True)), lo, hi, background)

    values = data[:, 0]
    starts = {n: spec[0] for n, spec in {**SHAPE_DEFAULTS, **POLY2_DEFAULTS}.items()}
    starts.update(start_values(values, edges))
    entries = float(values.sum())
    m = Minuit(ExtendedBinnedNLL(data, edges, model), *[starts[n] for n in names], name=names)
    for name, (_, lower, upper) in {**SHAPE_DEFAULTS, **POLY2_DEFAULTS}.items():
        if name in names:
            m.limits[name] = (lower, upper)
    for name in YIELDS:
        m.limits[name] = (0.0, 2.0 * entries + 10.0)
    for name in DEFAULT_FIXED:
        m.fixed[name] = True
    for name, value in fixed.items():
        m.values[name] = value
        m.fixed[name] = True
    return m


def _hold_absent_dplus(m: Any) -> None:
    """A D+ peak consistent with nothing leaves its shape undetermined: hold it."""
    if m.fixed["n_dplus"] or m.values["n_dplus"] > 3.0 * max(m.errors["n_dplus"], 1.0):
        return
    m.values["n_dplus"] = 0.0
    for name in ("n_dplus", "mean_dplus", "sigma_dplus", "alpha_dplus", "n_cb_dplus"):
        m.fixed[name] = True
    m.migrad()


def fit_weighted(
    values: np.ndarray,
    variances: np.ndarray,
    edges: np.ndarray,
    *,
    fixed: Mapping[str, float] | None = None,
    background: str = "exponential",
    float_tails: bool = False,
) -> FitResult:
    """Fit a mass histogram given by bin ``values`` (sum of weights), ``variances`` (sum
    of squared weights) and ``edges``.

    ``fixed`` holds the named parameters at the given values; ``float_tails`` lets the
    tail exponents ``n_cb_*`` float (held at 3 otherwise, as :mod:`tau3mu.fit` does).
    Returns a :class:`FitResult`; ``converged`` False (with Minuit's reason) when Minuit
    found no valid minimum with an accurate covariance.

    Raises ``ValueError`` for an unknown ``background``.
    """
    if background not in BACKGROUNDS:
        raise ValueError(f"background {background!r}: expected one of {BACKGROUNDS}")
    tic = time.perf_counter()
    edges = np.asarray(edges, dtype=np.float64)
    data = np.stack([np.asarray(values, float), np.asarray(variances, float)], axis=-1)
    m = _minuit(data, edges, background, dict(fixed or {}))
    if float_tails:
        for name in DEFAULT_FIXED:
            m.fixed[name] = name in (fixed or {})
    m.migrad()
    if not m.valid:
        m.migrad()
    if m.valid:
        _hold_absent_dplus(m)
    m.hesse()
    entries = float(data[:, 0].sum())
    if not (m.valid and m.accurate):
        reason = "no valid minimum" if not m.valid else "covariance not accurate"
        return FitResult(False, 3, reason, bool(m.valid), float(m.fmin.edm), entries=entries)
    return _result(m, data, edges, background, time.perf_counter() - tic)


def _result(m: Any, data: np.ndarray, edges: np.ndarray, background: str, took: float):
    params = {
        name: {
            "value": float(m.values[name]),
            "error": math.nan if m.fixed[name] else float(m.errors[name]),
            "lower": math.nan,
            "upper": math.nan,
            "fixed": bool(m.fixed[name]),
        }
        for name in m.parameters
    }
    floating = [n for n in m.parameters if not m.fixed[n]]
    corr = m.covariance.correlation()
    mu = sum(expected_counts(edges, {n: m.values[n] for n in m.parameters}, background).values())
    sigma = np.sqrt(np.maximum(data[:, 1], 1e-12))
    pulls = np.where(data[:, 1] > 0, (data[:, 0] - mu) / sigma, 0.0)
    return FitResult(
        converged=True,
        status=0,
        reason="",
        valid=True,
        edm=float(m.fmin.edm),
        strategy=f"weighted binned likelihood, {background} background",
        params=params,
        correlation={a: {b: float(corr[a, b]) for b in floating} for a in floating},
        chi2=float(np.sum(pulls**2)),
        ndf=int(len(mu) - len(floating)),
        pulls=[float(x) for x in pulls],
        entries=float(data[:, 0].sum()),
        fit_time_s=took,
    )
