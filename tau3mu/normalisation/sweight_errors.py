"""The part of f_B's error that the sWeighted template fit leaves out: the sWeights are
themselves estimated, from the same data's mass fit.

The template fit's error treats the sWeighted ct bins D_x = sum_i w_i n_ix as if the
weights w_i were constants. They depend on the mass counts m_i = sum_x n_ix both directly
(the sPlot matrix) and through the mass fit's parameters theta(m). For Poisson counts
n_ix the delta method gives Var(f) = sum_ix (df/dn_ix)^2 n_ix with

    df/dn_ix = g_x w_i + c_i,   g_x = df/dD_x,
    c_i = dS/dm_i + sum_a dS/dtheta_a dtheta_a/dm_i,   S(m, theta) = sum_j G_j w_j,
    G_j = sum_x g_x n_jx,   dtheta/dm_i = Cov(theta) (dmu_i/dtheta) / mu_i,

the last from the binned Poisson likelihood's stationarity (mu_i: the expected counts).
:func:`sweight_variance` returns the difference sum_ix [(g_x w_i + c_i)^2 - (g_x w_i)^2]
n_ix, to add to the template fit's variance (which holds sum (g_x w_i)^2 n_ix, and the
templates' statistics). Derivatives are central finite differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tau3mu.fit import FitResult
from tau3mu.normalisation.massfit import expected_counts
from tau3mu.normalisation.splot import signal_sweights

__all__ = ["fraction_gradient", "sweight_variance"]


def _covariance(fit: FitResult) -> tuple[list[str], np.ndarray]:
    names = [n for n in fit.params if not fit.is_fixed(n)]
    errors = np.array([fit.error(n) for n in names])
    corr = np.array([[fit.correlation[a][b] for b in names] for a in names])
    return names, corr * np.outer(errors, errors)


def _gradient(function: Callable[[np.ndarray], Any], x: np.ndarray, steps: np.ndarray):
    """Central differences of ``function`` (a number or an array) along each of ``x``."""
    out = []
    for k, step in enumerate(steps):
        up, down = x.copy(), x.copy()
        up[k] += step
        down[k] -= step
        out.append((np.asarray(function(up)) - np.asarray(function(down))) / (2 * step))
    return np.array(out)


def fraction_gradient(
    data_variances: np.ndarray,
    prompt: tuple[np.ndarray, np.ndarray],
    from_b: tuple[np.ndarray, np.ndarray],
    n_prompt: float,
    n_from_b: float,
) -> np.ndarray:
    """df_B/dD_x of the template fit at its minimum, linearised: the weighted least-squares
    solution (a, b) = (A^T W A)^-1 A^T W D of D = a P + b B (P, B the templates' shapes,
    W = 1 / (data variance + the templates' variances at the fitted yields)), whose
    response to the data is, to first order, the likelihood fit's."""
    shapes, variances = [], np.asarray(data_variances, dtype=np.float64).copy()
    for (values, var), n in ((prompt, n_prompt), (from_b, n_from_b)):
        total = float(np.sum(values))
        shapes.append(np.asarray(values, dtype=np.float64) / total)
        variances += n * n * np.asarray(var, dtype=np.float64) / total**2
    design = np.array(shapes).T  # (bins, 2)
    weight = np.where(variances > 0, 1.0 / np.where(variances > 0, variances, 1.0), 0.0)
    solve = np.linalg.solve(design.T @ (weight[:, None] * design), design.T * weight)
    a, b = n_prompt, n_from_b
    return np.array([-b, a]) / (a + b) ** 2 @ solve


def sweight_variance(
    gradient: np.ndarray,
    counts: np.ndarray,
    edges: np.ndarray,
    fit: FitResult,
) -> float:
    """Variance of f_B from the estimation of the sWeights (see the module docstring).

    ``gradient``: df_B/dD_x (:func:`fraction_gradient`); ``counts``: the data's
    (mass, ct) counts; ``edges``: the mass edges; ``fit``: the data mass fit the
    sWeights come from.
    """
    counts = np.asarray(counts, dtype=np.float64)
    mass = counts.sum(axis=1)
    names, cov = _covariance(fit)
    values = {n: p["value"] for n, p in fit.params.items()}
    theta = np.array([values[n] for n in names])

    def components(t: np.ndarray) -> dict[str, np.ndarray]:
        parts = expected_counts(edges, {**values, **dict(zip(names, t, strict=True))})
        return {k: v for k, v in parts.items() if values[k] > 0}

    def weights(m: np.ndarray, t: np.ndarray) -> np.ndarray:
        return signal_sweights(m, components(t))

    w = weights(mass, theta)
    g = np.asarray(gradient, dtype=np.float64)
    big_g = counts @ g
    d_mass = _gradient(lambda m: big_g @ weights(m, theta), mass, 1e-3 * np.maximum(mass, 1.0))
    errors = np.sqrt(np.diag(cov))
    d_theta = _gradient(lambda t: big_g @ weights(mass, t), theta, 1e-3 * errors)

    def total(t: np.ndarray) -> np.ndarray:
        return np.sum(list(components(t).values()), axis=0)

    mu = total(theta)
    d_mu = _gradient(total, theta, 1e-3 * errors)  # (parameters, bins)
    dtheta_dm = cov @ (d_mu / np.maximum(mu, 1e-12))  # (parameters, bins)
    c = d_mass + d_theta @ dtheta_dm
    direct = np.outer(w, g)
    return float(np.sum(((direct + c[:, None]) ** 2 - direct**2) * counts))
