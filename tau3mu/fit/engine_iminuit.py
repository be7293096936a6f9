"""The independent fit engine: iminuit's binned cost on the numpy model of :mod:`tau3mu.fit.model`.

It shares only the start values, parameter ranges and strategy with the zfit engine, not
the model code, so agreement between the two tests the zfit model; it fits in
milliseconds and imports neither zfit nor TensorFlow. A weighted histogram goes to
iminuit's ``ExtendedBinnedNLL`` as (sums of weights, sums of squared weights), for which
it uses the scaled Poisson likelihood of :mod:`tau3mu.fit.histogram`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from tau3mu.fit.histogram import is_weighted
from tau3mu.fit.model import model_cdf
from tau3mu.fit.parameters import parameter_order, start_vector
from tau3mu.fit.result import FitResult
from tau3mu.fit.strategy import check_options, fit_result, unfit

__all__ = ["fit_counts_iminuit"]


def fit_counts_iminuit(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    minos: bool = False,
    min_entries: int = 50,
    variances: np.ndarray | None = None,
    fixed: Mapping[str, float] | None = None,
    background: str = "exponential",
) -> FitResult:
    """Fit bin counts with edges: the zfit engine's model and strategy, iminuit's
    ``ExtendedBinnedNLL`` and a numpy Crystal Ball CDF.

    ``variances``: sums of squared weights of a weighted histogram (None, or equal to
    ``counts``: unweighted); ``fixed``: parameters held at the values given;
    ``background``: ``exponential`` or ``poly2``. Raises
    :class:`~tau3mu.errors.OptionError` for an unknown background or a bad ``fixed``.
    """
    from iminuit import Minuit
    from iminuit.cost import ExtendedBinnedNLL

    tic = time.perf_counter()
    fixed = check_options(background, fixed)
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if variances is not None:
        variances = np.asarray(variances, dtype=np.float64)
        variances = variances if is_weighted(counts, variances) else None
    if (failed := unfit(counts, min_entries, variances)) is not None:
        return failed
    names = parameter_order(background)

    def model(x, *values):
        return model_cdf(x, dict(zip(names, values, strict=True)), edges[0], edges[-1])

    data = counts if variances is None else np.stack([counts, variances], axis=-1)
    unit = 1.0 if variances is None else float(variances.sum() / counts.sum())
    m = Minuit(
        ExtendedBinnedNLL(data, edges, model),
        *start_vector(counts, edges, names, background, unit),
        name=names,
    )
    return fit_result(
        m,
        counts,
        lambda values: np.diff(model(edges, *values)),
        minos=minos,
        tic=tic,
        background=background,
        fixed=fixed,
        variances=variances,
    )
