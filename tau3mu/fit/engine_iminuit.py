"""The independent fit engine: iminuit's binned cost on the numpy model of :mod:`tau3mu.fit.model`.

It shares only the start values, parameter ranges and strategy with the zfit engine, not
the model code, so agreement between the two tests the zfit model; it fits in
milliseconds and imports neither zfit nor TensorFlow.
"""

from __future__ import annotations

import time

import numpy as np

from tau3mu.fit.model import model_cdf
from tau3mu.fit.parameters import PARAMETER_ORDER, start_vector
from tau3mu.fit.result import FitResult
from tau3mu.fit.strategy import fit_result, unfit

__all__ = ["fit_counts_iminuit"]


def fit_counts_iminuit(
    counts: np.ndarray, edges: np.ndarray, *, minos: bool = False, min_entries: int = 50
) -> FitResult:
    """Fit bin counts with edges: the zfit engine's model and strategy, iminuit's
    ``ExtendedBinnedNLL`` and a numpy Crystal Ball CDF."""
    from iminuit import Minuit
    from iminuit.cost import ExtendedBinnedNLL

    tic = time.perf_counter()
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if (failed := unfit(counts, min_entries)) is not None:
        return failed
    names = PARAMETER_ORDER

    def model(x, *values):
        return model_cdf(x, dict(zip(names, values, strict=True)), edges[0], edges[-1])

    m = Minuit(
        ExtendedBinnedNLL(counts, edges, model), *start_vector(counts, edges, names), name=names
    )
    return fit_result(
        m, counts, lambda values: np.diff(model(edges, *values)), minos=minos, tic=tic
    )
