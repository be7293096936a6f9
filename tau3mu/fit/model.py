"""The fit model in numpy: expected entries below a mass, and toy histograms drawn from it.

Crystal Ball for the Ds+, Crystal Ball for the D+, exponential background, each extended
with its own yield, truncated to the fit range (``docs/physics.md``, "Fit"). The iminuit
engine fits with it and the figures draw it; the zfit engine has its own implementation
(:mod:`tau3mu.fit.zfit_pdfs`), so that the two engines cross-check each other.
"""

from __future__ import annotations

import numpy as np

from tau3mu.crystalball import crystal_ball_cdf

__all__ = ["model_cdf", "toy_counts"]


def model_cdf(x: np.ndarray, p: dict[str, float], lo: float, hi: float) -> np.ndarray:
    """Expected entries below ``x`` of the three-component model truncated to [lo, hi].

    ``p`` maps every parameter name of :data:`tau3mu.fit.parameters.PARAMETER_ORDER` to
    its value. The Crystal Ball CDF is :func:`tau3mu.crystalball.crystal_ball_cdf` (numpy,
    no compilation).
    """

    def cb(alpha: float, n: float, mean: float, sigma: float) -> np.ndarray:
        ends = crystal_ball_cdf(np.array([lo, hi]), alpha, n, mean, sigma)
        return (crystal_ball_cdf(x, alpha, n, mean, sigma) - ends[0]) / (ends[1] - ends[0])

    slope = p["slope"]
    if abs(slope) < 1e-9:
        background = (x - lo) / (hi - lo)
    else:
        background = np.expm1(slope * (x - lo)) / np.expm1(slope * (hi - lo))
    return (
        p["n_ds"] * cb(p["alpha_ds"], p["n_cb_ds"], p["mean_ds"], p["sigma_ds"])
        + p["n_dplus"] * cb(p["alpha_dplus"], p["n_cb_dplus"], p["mean_dplus"], p["sigma_dplus"])
        + p["n_bkg"] * background
    )


def toy_counts(rng: np.random.Generator, edges: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """A Poisson toy histogram from the model with known parameters (closure tests)."""
    expected = np.diff(model_cdf(np.asarray(edges, dtype=np.float64), params, edges[0], edges[-1]))
    return rng.poisson(np.maximum(expected, 0)).astype(np.float64)
