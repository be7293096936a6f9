"""The independent fit engine: Minuit on the binned Poisson cost of the numpy model of
:mod:`tau3mu.fit.model`.

It shares only the start values, parameter ranges and strategy with the zfit engine, not
the model code, so agreement between the two tests the zfit model; it fits in
milliseconds and imports neither zfit nor TensorFlow.

The cost (:func:`poisson_cost`) is that of iminuit's ``ExtendedBinnedNLL``: the
Baker-Cousins Poisson chi2, with the scaled Poisson counts of
:mod:`tau3mu.fit.histogram` for a weighted histogram, as iminuit scales (sum w, sum w^2)
input. iminuit evaluates it with numba, whose start-up in a fresh process (importing
it, then loading even a cached compilation) costs more than the rest of a cold ``tau3mu
fit --fit-engine iminuit`` (``docs/benchmarks.md``, "Cold fit"). Here it is numpy,
with the logarithm of each bin from the C library and the bins summed in order, as
numba's compiled loop does: the same values bit for bit (``tests/test_fit.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping

import numpy as np

from tau3mu.fit.histogram import poisson_scale
from tau3mu.fit.model import model_cdf
from tau3mu.fit.parameters import parameter_order, start_vector
from tau3mu.fit.result import FitResult
from tau3mu.fit.strategy import checked_input, fit_result, unfit

__all__ = ["fit_counts_iminuit", "poisson_cost"]


def _log_or_zero(x: np.ndarray) -> np.ndarray:
    """log(x) where x > 0, else 0; each from the C library's ``log``."""
    return np.array([math.log(v) if v > 0 else 0.0 for v in x.tolist()])


def poisson_cost(
    model: Callable[..., np.ndarray],
    edges: np.ndarray,
    counts: np.ndarray,
    variances: np.ndarray | None = None,
) -> Callable[..., float]:
    """The cost of iminuit's ``ExtendedBinnedNLL(counts, edges, model)`` (with
    ``variances``: of its (counts, variances) input) as a function of the parameters:
    2 sum(n (log n - log mu) + mu - n) over bins, ``mu`` the differences of
    ``model(edges, *parameters)`` (negative ones 0), ``n`` and ``mu`` scaled by the
    weighted histogram's ``poisson_scale``. Minuit's ``errordef`` for it is 1."""
    scale = None if variances is None else poisson_scale(counts, variances)
    n = counts if scale is None else counts * scale
    log_n = _log_or_zero(n)

    def cost(*parameters: float) -> float:
        mu = np.diff(np.asarray(model(edges, *parameters), dtype=np.float64))
        mu[mu < 0] = 0
        if scale is not None:
            mu = mu * scale
        return float(2 * np.cumsum(n * (log_n - _log_or_zero(mu)) + mu - n)[-1])

    return cost


def fit_counts_iminuit(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    minos: bool = False,
    min_entries: int = 50,
    variances: np.ndarray | None = None,
    fixed: Mapping[str, float] | None = None,
    background: str = "exponential",
    free: Collection[str] = (),
) -> FitResult:
    """Fit bin counts with edges: the zfit engine's model and strategy, iminuit's
    ``ExtendedBinnedNLL`` and a numpy Crystal Ball CDF.

    ``variances``: sums of squared weights of a weighted histogram (None, or equal to
    ``counts``: unweighted); ``fixed``: parameters held at the values given;
    ``free``: tail exponents that float (:func:`~tau3mu.fit.strategy.check_free`);
    ``background``: ``exponential`` or ``poly2``. Raises
    :class:`~tau3mu.errors.OptionError` for an unknown background or a bad ``fixed``
    or ``free``.
    """
    from iminuit import Minuit

    tic = time.perf_counter()
    counts, edges, variances, fixed, free = checked_input(
        counts, edges, variances, background, fixed, free
    )
    if (failed := unfit(counts, min_entries, variances)) is not None:
        return failed
    names = parameter_order(background)

    def model(x, *values):
        return model_cdf(x, dict(zip(names, values, strict=True)), edges[0], edges[-1])

    unit = 1.0 if variances is None else float(variances.sum() / counts.sum())
    m = Minuit(
        poisson_cost(model, edges, counts, variances),
        *start_vector(counts, edges, names, background, unit),
        name=names,
    )
    m.errordef = Minuit.LEAST_SQUARES
    return fit_result(
        m,
        counts,
        lambda values: np.diff(model(edges, *values)),
        minos=minos,
        tic=tic,
        background=background,
        fixed=fixed,
        variances=variances,
        free=free,
    )
