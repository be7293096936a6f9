"""What the fit takes from a histogram: the nominal mass spectrum, and its weights.

A weighted histogram (simulation: each event counts with its weight) is fitted with its
variances, by the scaled Poisson likelihood of Bohm and Zech (NIM A 748 (2014) 1): bin
``i`` with sum of weights ``w_i`` and sum of squared weights ``v_i`` is treated as a
Poisson count ``w_i s_i`` of mean ``mu_i s_i``, with ``s_i = w_i / v_i`` (the effective
number of entries per unit weight). The likelihood's curvature then gives errors that
cover for weighted entries, where fitting ``w_i`` as a Poisson count would not (its
variance is ``v_i``, not ``w_i``). A bin without entries has no ``s_i`` of its own: it
takes the median of the others', as iminuit's binned costs do. With unit weights
``s_i = 1``: the ordinary Poisson likelihood, and such histograms are fitted as
unweighted.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["Spectrum", "is_weighted", "mass_counts", "mass_spectrum", "poisson_scale"]


class Spectrum(NamedTuple):
    """A mass spectrum to fit: bin contents, edges, and the sums of squared weights of a
    weighted histogram (None: unweighted). ``Spectrum(*(counts, edges))`` also works."""

    counts: np.ndarray
    edges: np.ndarray
    variances: np.ndarray | None = None


def _nominal(h: Any) -> Any:
    """The one-dimensional nominal slice of ``h`` (see :func:`mass_counts`)."""
    if h.ndim > 1:
        selection = {}
        for axis in h.axes[:-1]:
            if axis.name == "systematic":
                selection["systematic"] = "nominal"
            elif axis.name == "dataset":
                if len(axis) != 1:
                    raise ValueError(
                        "histogram has several datasets: pick one with h[{'dataset': name}]"
                    )
                selection["dataset"] = axis[0]
        h = h[selection]
    return h


def mass_counts(h: Any) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of a 1D mass histogram, or of the nominal slice of a bigger one.

    A ``systematic`` axis is sliced at ``nominal``; a ``dataset`` axis must have one
    entry. Raises ValueError when it has several.
    """
    h = _nominal(h)
    return np.asarray(h.values(), dtype=np.float64), np.asarray(h.axes[0].edges)


def mass_spectrum(h: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(sums of weights, sums of squared weights or None, edges) of the nominal mass
    spectrum of ``h`` (as :func:`mass_counts`); None when the histogram has no
    variances or they equal its values (unit weights)."""
    h = _nominal(h)
    counts = np.asarray(h.values(), dtype=np.float64)
    variances = h.variances()
    if variances is not None:
        variances = np.asarray(variances, dtype=np.float64)
        if not is_weighted(counts, variances):
            variances = None
    return counts, variances, np.asarray(h.axes[0].edges)


def is_weighted(counts: np.ndarray, variances: np.ndarray | None) -> bool:
    """Whether bins with ``variances`` differ from Poisson counts (unit weights)."""
    return variances is not None and not np.array_equal(
        np.asarray(variances, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    )


def poisson_scale(counts: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """The scale ``s_i = w_i / v_i`` of each bin (module docstring); bins without
    variance take the median of the others'. Raises ValueError when no bin has any."""
    scale = np.zeros_like(counts, dtype=np.float64)
    filled = variances > 0
    if not filled.any():
        raise ValueError("a weighted histogram without any entry")
    scale[filled] = np.abs(counts[filled]) / variances[filled]
    scale[~filled] = np.median(scale[filled])
    return scale
