"""The fit model in numpy: expected entries below a mass, and toy histograms drawn from it.

Crystal Ball for the Ds+, Crystal Ball for the D+, exponential background (or a
second-order Bernstein polynomial), each extended with its own yield, truncated to the
fit range (``docs/physics.md``, "Fit"). The iminuit
engine fits with it and the figures draw it; the zfit engine has its own implementation
(:mod:`tau3mu.fit.zfit_pdfs`), so that the two engines cross-check each other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tau3mu.crystalball import crystal_ball_cdf

__all__ = ["background_cdf", "model_cdf", "toy_counts", "weighted_toy"]


def background_cdf(x: np.ndarray, p: dict[str, float], lo: float, hi: float) -> np.ndarray:
    """The background's fraction below ``x`` in [lo, hi]: the exponential of ``slope``, or,
    when ``p`` has ``bkg_b1``, the Bernstein polynomial (1, ``bkg_b1``, ``bkg_b2``)."""
    if "bkg_b1" in p:
        u = (x - lo) / (hi - lo)
        b1, b2 = p["bkg_b1"], p["bkg_b2"]
        # integrals from 0 to u of (1-u)^2, 2u(1-u) and u^2, times 3; at u = 1: 1 each
        return ((1.0 - (1.0 - u) ** 3) + b1 * (3.0 * u**2 - 2.0 * u**3) + b2 * u**3) / (
            1.0 + b1 + b2
        )
    slope = p["slope"]
    if abs(slope) < 1e-9:
        return (x - lo) / (hi - lo)
    return np.expm1(slope * (x - lo)) / np.expm1(slope * (hi - lo))


def model_cdf(x: np.ndarray, p: dict[str, float], lo: float, hi: float) -> np.ndarray:
    """Expected entries below ``x`` of the three-component model truncated to [lo, hi].

    ``p`` maps every parameter name of :func:`tau3mu.fit.parameters.parameter_order` to
    its value (the background's as :func:`background_cdf` reads them). The Crystal Ball CDF is :func:`tau3mu.crystalball.crystal_ball_cdf` (numpy,
    no compilation).
    """

    def cb(alpha: float, n: float, mean: float, sigma: float) -> np.ndarray:
        ends = crystal_ball_cdf(np.array([lo, hi]), alpha, n, mean, sigma)
        return (crystal_ball_cdf(x, alpha, n, mean, sigma) - ends[0]) / (ends[1] - ends[0])

    background = background_cdf(x, p, lo, hi)
    return (
        p["n_ds"] * cb(p["alpha_ds"], p["n_cb_ds"], p["mean_ds"], p["sigma_ds"])
        + p["n_dplus"] * cb(p["alpha_dplus"], p["n_cb_dplus"], p["mean_dplus"], p["sigma_dplus"])
        + p["n_bkg"] * background
    )


def toy_counts(rng: np.random.Generator, edges: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """A Poisson toy histogram from the model with known parameters (closure tests)."""
    expected = np.diff(model_cdf(np.asarray(edges, dtype=np.float64), params, edges[0], edges[-1]))
    return rng.poisson(np.maximum(expected, 0)).astype(np.float64)


def weighted_toy(
    rng: np.random.Generator,
    edges: np.ndarray,
    params: dict[str, float],
    draw_weights: Callable[[np.random.Generator, int], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """A toy of weighted events: (sum of weights, sum of squared weights) per bin.

    Event counts are Poisson toys of the model with ``params`` (yields in events); each
    event gets a weight from ``draw_weights(rng, n)``. The expected sum of weights of a
    component is its yield times the mean weight.
    """
    counts = toy_counts(rng, edges, params).astype(np.int64)
    weights = draw_weights(rng, int(counts.sum()))
    bins = np.repeat(np.arange(len(counts)), counts)
    sumw = np.bincount(bins, weights=weights, minlength=len(counts))
    sumw2 = np.bincount(bins, weights=weights**2, minlength=len(counts))
    return sumw.astype(np.float64), sumw2.astype(np.float64)
