"""The minimisation strategy both engines share, and the result it reports.

1. start values come from the histogram itself (:mod:`tau3mu.fit.parameters`);
2. the Crystal Ball tail exponents are fixed (a 62-bin spectrum does not constrain
   them, and floating them is what lets such fits wander off); the rest floats;
3. Migrad, a refit from its minimum if that is not valid, then Hesse; while Minuit's
   minimum is not valid or its covariance not accurate, what a spectrum may fail to
   determine is held in turn: an absent peak at its lower bound, a width narrower than a
   bin at the detector resolution, the tail onsets at their start values. A fit that
   still fails is reported as failed, with Minuit's reason, and no numbers.

An engine supplies a configured ``iminuit.Minuit`` on its loss and a function giving the
expected counts per bin; :func:`fit_result` does the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tau3mu.fit.parameters import FIXED, SHAPE_DEFAULTS, YIELDS, limits, shape_of
from tau3mu.fit.result import FitResult, failed_result

__all__ = ["fit_result", "minimise", "minuit_reason", "unfit"]


def unfit(counts: np.ndarray, min_entries: int) -> FitResult | None:
    """The failed result for a histogram that cannot be fitted, else None."""
    entries = float(counts.sum())
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        return failed_result(-1, "histogram has negative or non-finite bin contents", entries)
    if entries < min_entries:
        return failed_result(
            -1, f"only {entries:.0f} entries: too few for a three-component fit", entries
        )
    return None


def minuit_reason(m: Any) -> str:
    """Why Minuit's minimum is not valid, in words."""
    fmin = m.fmin
    if fmin is None:
        return "Minuit did not run"
    problems = [
        text
        for flag, text in (
            (fmin.is_above_max_edm, "EDM above the maximum"),
            (fmin.has_reached_call_limit, "call limit reached"),
            (fmin.has_parameters_at_limit, "parameters at a limit"),
            (not fmin.has_posdef_covar, "covariance not positive definite"),
        )
        if flag
    ]
    return "Minuit did not find a valid minimum" + (f" ({', '.join(problems)})" if problems else "")


class _Remedies:
    """Parameters held in turn on a Minuit whose minimum or covariance is not good."""

    def __init__(self, m: Any, strategy: str) -> None:
        self.m = m
        self.strategy = strategy
        self.held: list[str] = []

    def hold_absent_peaks(self) -> None:
        """A peak the data do not show: its yield sits on the lower bound; hold it there."""
        m = self.m
        absent = [
            n
            for n in ("n_dplus", "n_ds")
            if not m.fixed[n] and m.values[n] < max(1.5, 3 * m.errors[n])
        ]
        if not absent:
            return
        for name in absent:
            m.values[name] = 1.0
            m.fixed[name] = True
            for shape in shape_of(name):  # an absent peak has no shape to measure
                m.fixed[shape] = True
        self.held.extend(absent)
        self.strategy = f"{', '.join(self.held)} at the lower bound (peak absent), held fixed"
        m.migrad()

    def fix_tail_onsets(self) -> None:
        """The Crystal Ball tail onsets are the last weakly constrained parameters."""
        m = self.m
        onsets = [n for n in ("alpha_ds", "alpha_dplus") if not m.fixed[n]]
        for name in onsets:
            m.values[name] = SHAPE_DEFAULTS[name][0]
            m.fixed[name] = True
        if onsets:
            self.strategy += "; tail onsets fixed"
            m.migrad()

    def fix_narrow_widths(self) -> None:
        """A width on its lower bound, narrower than a bin, is a one-bin fluctuation, not a
        measured resolution: hold it at the detector resolution."""
        m = self.m
        narrow = [
            n
            for n in ("sigma_ds", "sigma_dplus")
            if not m.fixed[n] and m.values[n] <= SHAPE_DEFAULTS[n][1] * 1.01
        ]
        for name in narrow:
            m.values[name] = SHAPE_DEFAULTS[name][0]
            m.fixed[name] = True
        if narrow:
            self.strategy += f"; {', '.join(narrow)} at the resolution"
            m.migrad()


def minimise(m: Any, entries: float, *, minos: bool) -> tuple[int, str, str]:
    """Migrad, Hesse and the remedies of the module docstring on a configured Minuit.

    Returns (status, reason, strategy): status 0 with a valid minimum and an accurate
    covariance, 3 without a valid minimum, 4 with an inaccurate covariance (Minuit forced
    it positive definite: a direction the data do not constrain).
    """
    bounds = limits(entries)
    for name in m.parameters:
        m.limits[name] = bounds[name]
    for name in FIXED:
        m.fixed[name] = True
    remedies = _Remedies(m, "one fit from histogram start values, tail exponents fixed")
    m.migrad()
    if not m.valid:
        # a retry from the minimum found, as Minuit's own strategy 2 would
        remedies.strategy = "refit from the first minimum"
        m.migrad()
    m.hesse()
    if not (m.valid and m.accurate):
        remedies.hold_absent_peaks()
        if not m.valid:
            remedies.fix_tail_onsets()
        if not m.valid:
            return 3, minuit_reason(m), remedies.strategy
        m.hesse()
        # an inaccurate covariance means a direction the data do not constrain: hold, in
        # turn, what a spectrum may fail to determine
        for remedy in (
            remedies.hold_absent_peaks,
            remedies.fix_narrow_widths,
            remedies.fix_tail_onsets,
        ):
            if m.valid and m.accurate:
                break
            remedy()
            m.hesse()
    if not m.valid:
        return 3, minuit_reason(m), remedies.strategy
    if not m.accurate:
        return 4, "covariance matrix not accurate (forced positive definite)", remedies.strategy
    if minos:
        m.minos(*(n for n in m.parameters if not m.fixed[n]))
    return 0, "", remedies.strategy


def _parameter_entries(m: Any, floating: list[str], *, minos: bool) -> tuple[dict, list[str]]:
    """``FitResult.params`` from a minimised Minuit, and the parameters at a limit."""
    params: dict[str, dict[str, Any]] = {}
    at_limit = []
    for name in [*SHAPE_DEFAULTS, *YIELDS]:
        entry: dict[str, Any] = {
            "value": float(m.values[name]),
            "error": math.nan,
            "lower": math.nan,
            "upper": math.nan,
            "fixed": name not in floating,
        }
        if name in floating:
            entry["error"] = float(m.errors[name])
            if minos and name in m.merrors:
                entry["lower"] = float(m.merrors[name].lower)
                entry["upper"] = float(m.merrors[name].upper)
            lower, upper = m.limits[name]
            span = (upper - lower) * 1e-4
            if abs(entry["value"] - lower) < span or abs(upper - entry["value"]) < span:
                at_limit.append(name)
        params[name] = entry
    return params, at_limit


def fit_result(
    m: Any,
    counts: np.ndarray,
    expected: Callable[[np.ndarray], np.ndarray],
    *,
    minos: bool,
    tic: float,
) -> FitResult:
    """Minimise (:func:`minimise`) and report: numbers for a converged fit, else the reason.

    ``expected`` gives the expected counts per bin at a parameter vector in Minuit's order;
    ``tic`` is the ``time.perf_counter()`` at which the fit started.
    """
    entries = float(counts.sum())
    status, reason, strategy = minimise(m, entries, minos=minos)
    if status:
        return failed_result(status, reason, entries, strategy, float(m.fmin.edm))
    floating = [n for n in m.parameters if not m.fixed[n]]
    params, at_limit = _parameter_entries(m, floating, minos=minos)
    corr = m.covariance.correlation()
    correlation = {a: {b: float(corr[a, b]) for b in floating} for a in floating}
    mu = expected(np.array(m.values))
    with np.errstate(divide="ignore", invalid="ignore"):
        pulls = np.where(mu > 0, (counts - mu) / np.sqrt(np.maximum(mu, 1e-12)), 0.0)
    return FitResult(
        converged=True,
        status=0,
        reason="",
        valid=bool(m.valid),
        edm=float(m.fmin.edm),
        strategy=strategy,
        params=params,
        correlation=correlation,
        chi2=float(np.sum(pulls**2)),
        ndf=int(len(counts) - len(floating)),
        pulls=[float(x) for x in pulls],
        entries=entries,
        fit_time_s=time.perf_counter() - tic,
        at_limit=at_limit,
    )
