"""The minimisation strategy both engines share, and the result it reports.

1. start values come from the histogram itself (:mod:`tau3mu.fit.parameters`);
2. the Crystal Ball tail exponents are fixed (a 62-bin spectrum does not constrain
   them, and floating them is what lets such fits wander off); the rest floats;
3. Migrad, a refit from its minimum if that is not valid, then Hesse; while Minuit's
   minimum is not valid or its covariance not accurate, what a spectrum may fail to
   determine is held in turn: an absent peak at its lower bound, a width narrower than a
   bin at the detector resolution, the tail onsets at their start values. A fit that
   still fails is reported as failed, with Minuit's reason, and no numbers.

Parameters given as ``fixed`` (e.g. the tails from a simulation fit) are held at the
values given throughout; parameters given as ``free`` (of those held by default, the tail
exponents) float from their start values (e.g. the tails systematic's simulation fit). A weighted histogram is fitted with its variances
(:mod:`tau3mu.fit.histogram`); its yields are bounded below by the mean weight of an
event instead of 1.

An engine supplies a configured ``iminuit.Minuit`` on its loss and a function giving the
expected counts per bin; :func:`fit_result` does the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

import numpy as np

from tau3mu.errors import OptionError
from tau3mu.fit.histogram import is_weighted, poisson_scale
from tau3mu.fit.parameters import (
    BACKGROUNDS,
    FIXED,
    SHAPE_DEFAULTS,
    YIELDS,
    limits,
    parameter_order,
    shape_defaults,
    shape_of,
)
from tau3mu.fit.result import FitResult, failed_result

__all__ = [
    "FitInput",
    "check_free",
    "check_options",
    "checked_input",
    "fit_result",
    "minimise",
    "minuit_reason",
    "unfit",
]


class FitInput(NamedTuple):
    """What an engine fits, checked: float64 ``counts`` and ``edges``, the ``variances``
    of a weighted histogram (None for an unweighted one), the parameters ``fixed`` at
    their values and those held by default that float (``free``)."""

    counts: np.ndarray
    edges: np.ndarray
    variances: np.ndarray | None
    fixed: dict[str, float]
    free: tuple[str, ...]


def checked_input(
    counts: np.ndarray,
    edges: np.ndarray,
    variances: np.ndarray | None,
    background: str,
    fixed: Mapping[str, float] | None,
    free: Collection[str],
) -> FitInput:
    """The engines' arguments as :class:`FitInput`; variances equal to the counts mean
    an unweighted histogram. Raises :class:`~tau3mu.errors.OptionError` as
    :func:`check_options` and :func:`check_free` do."""
    held = check_options(background, fixed)
    floating = check_free(free, held)
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if variances is not None:
        variances = np.asarray(variances, dtype=np.float64)
        variances = variances if is_weighted(counts, variances) else None
    return FitInput(counts, edges, variances, held, floating)


def check_options(background: str, fixed: Mapping[str, float] | None) -> dict[str, float]:
    """``fixed`` as a dict, checked against the parameters of ``background``.

    Raises :class:`~tau3mu.errors.OptionError` for an unknown background, an unknown
    parameter name, a value that is not finite or, for a shape, outside its range.
    """
    if background not in BACKGROUNDS:
        raise OptionError(f"background: {background!r} is not one of {', '.join(BACKGROUNDS)}")
    fixed = dict(fixed or {})
    names = parameter_order(background)
    unknown = [name for name in fixed if name not in names]
    if unknown:
        raise OptionError(
            f"fixed: unknown parameter(s) {', '.join(unknown)} with the {background} "
            f"background; the parameters are {', '.join(names)}"
        )
    ranges = shape_defaults(background)
    for name, value in fixed.items():
        if not math.isfinite(value):
            raise OptionError(f"fixed: {name} = {value} is not a finite number")
        if name in ranges and not ranges[name][1] <= value <= ranges[name][2]:
            raise OptionError(
                f"fixed: {name} = {value} is outside its range "
                f"[{ranges[name][1]}, {ranges[name][2]}]"
            )
        fixed[name] = float(value)
    return fixed


def check_free(free: Collection[str], fixed: Mapping[str, float]) -> tuple[str, ...]:
    """``free`` as a tuple, checked: names among the parameters held by default
    (:data:`tau3mu.fit.parameters.FIXED`) and not also given as ``fixed``.

    Raises :class:`~tau3mu.errors.OptionError` naming what is wrong.
    """
    free = tuple(free)
    unknown = [name for name in free if name not in FIXED]
    if unknown:
        raise OptionError(
            f"free: {', '.join(unknown)} not held by default; only {', '.join(FIXED)} can be freed"
        )
    both = [name for name in free if name in fixed]
    if both:
        raise OptionError(f"free: {', '.join(both)} also given as fixed")
    return free


def unfit(
    counts: np.ndarray, min_entries: int, variances: np.ndarray | None = None
) -> FitResult | None:
    """The failed result for a histogram that cannot be fitted, else None. A weighted
    histogram needs ``min_entries`` effective entries, (sum w)^2 / sum w^2."""
    entries = float(counts.sum())
    contents = counts if variances is None else np.concatenate([counts, variances])
    if not np.all(np.isfinite(contents)) or np.any(contents < 0):
        return failed_result(-1, "histogram has negative or non-finite bin contents", entries)
    if variances is None and entries < min_entries:
        return failed_result(
            -1, f"only {entries:.0f} entries: too few for a three-component fit", entries
        )
    if variances is not None:
        effective = entries**2 / variances.sum() if variances.sum() > 0 else 0.0
        if effective < min_entries:
            return failed_result(
                -1,
                f"only {effective:.0f} effective entries: too few for a three-component fit",
                entries,
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

    def __init__(self, m: Any, strategy: str, unit: float) -> None:
        self.m = m
        self.strategy = strategy
        self.held: list[str] = []
        self.unit = unit

    def hold_absent_peaks(self) -> None:
        """A peak the data do not show: its yield sits on the lower bound; hold it there."""
        m = self.m
        absent = [
            n
            for n in ("n_dplus", "n_ds")
            if not m.fixed[n] and m.values[n] < max(1.5 * self.unit, 3 * m.errors[n])
        ]
        if not absent:
            return
        for name in absent:
            m.values[name] = self.unit
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


def minimise(
    m: Any,
    entries: float,
    *,
    minos: bool,
    background: str = "exponential",
    fixed: Mapping[str, float] | None = None,
    free: Collection[str] = (),
    unit: float = 1.0,
) -> tuple[int, str, str]:
    """Migrad, Hesse and the remedies of the module docstring on a configured Minuit.

    ``fixed``: parameters held at the values given (checked by :func:`check_options`);
    ``free``: parameters held by default that float here (:func:`check_free`); ``unit``: the weight of one event. Returns (status, reason, strategy): status 0 with
    a valid minimum and an accurate covariance, 3 without a valid minimum, 4 with an
    inaccurate covariance (Minuit forced it positive definite: a direction the data do
    not constrain).
    """
    bounds = limits(entries, background, unit)
    for name in m.parameters:
        m.limits[name] = bounds[name]
    for name in FIXED:
        m.fixed[name] = name not in free
    strategy = "one fit from histogram start values, tail exponents fixed"
    if free:
        strategy = "one fit from histogram start values"
        held = [name for name in FIXED if name not in free]
        strategy += f"; {', '.join(held)} fixed" if held else ""
        strategy += f"; {', '.join(free)} floating"
    for name, value in (fixed or {}).items():
        m.values[name] = value
        m.fixed[name] = True
    if fixed:
        strategy += f"; {', '.join(fixed)} fixed as given"
    remedies = _Remedies(m, strategy, unit)
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


def _parameter_entries(
    m: Any, floating: list[str], *, minos: bool, background: str
) -> tuple[dict, list[str]]:
    """``FitResult.params`` from a minimised Minuit, and the parameters at a limit."""
    params: dict[str, dict[str, Any]] = {}
    at_limit = []
    for name in [*shape_defaults(background), *YIELDS]:
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


def _pulls(counts: np.ndarray, mu: np.ndarray, variances: np.ndarray | None) -> np.ndarray:
    """(observed - expected) / its standard deviation per bin: sqrt(mu), or for weighted
    entries sqrt(mu / s) with the scale s of :func:`tau3mu.fit.histogram.poisson_scale`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if variances is None:
            return np.where(mu > 0, (counts - mu) / np.sqrt(np.maximum(mu, 1e-12)), 0.0)
        spread = mu / poisson_scale(counts, variances)
        return np.where(mu > 0, (counts - mu) / np.sqrt(np.maximum(spread, 1e-12)), 0.0)


def fit_result(
    m: Any,
    counts: np.ndarray,
    expected: Callable[[np.ndarray], np.ndarray],
    *,
    minos: bool,
    tic: float,
    background: str = "exponential",
    fixed: Mapping[str, float] | None = None,
    variances: np.ndarray | None = None,
    free: Collection[str] = (),
) -> FitResult:
    """Minimise (:func:`minimise`) and report: numbers for a converged fit, else the reason.

    ``expected`` gives the expected counts per bin at a parameter vector in Minuit's order;
    ``tic`` is the ``time.perf_counter()`` at which the fit started; ``variances``: the
    sums of squared weights of a weighted histogram, else None; ``fixed`` and ``free``
    as :func:`minimise` takes them.
    """
    entries = float(counts.sum())
    unit = 1.0 if variances is None else float(variances.sum()) / entries
    status, reason, strategy = minimise(
        m, entries, minos=minos, background=background, fixed=fixed, free=free, unit=unit
    )
    if variances is not None:
        strategy += "; weighted: scaled Poisson likelihood"
    if status:
        return failed_result(status, reason, entries, strategy, float(m.fmin.edm))
    floating = [n for n in m.parameters if not m.fixed[n]]
    params, at_limit = _parameter_entries(m, floating, minos=minos, background=background)
    corr = m.covariance.correlation()
    correlation = {a: {b: float(corr[a, b]) for b in floating} for a in floating}
    pulls = _pulls(counts, expected(np.array(m.values)), variances)
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
