"""The Crystal Ball cumulative distribution, closed form, in numpy.

The iminuit engine (:func:`tau3mu.fit.fit_counts_iminuit`) and the fit figure evaluate it:
a handful of numpy operations, no compilation at the first call of a process (numba-stats'
version is JIT-compiled then; ``docs/benchmarks.md``, "Cold fit"). Same convention as
``scipy.stats.crystalball`` and ``numba_stats.crystalball``: a Gaussian core with a
power-law tail on the low side, turning over ``beta`` standard deviations below the
mean, tail exponent ``m > 1``.

>>> import numpy as np
>>> from scipy.stats import crystalball
>>> x = np.linspace(1.8, 2.1, 7)
>>> ours = crystal_ball_cdf(x, 1.5, 3.0, 1.97, 0.012)
>>> bool(np.allclose(ours, crystalball.cdf(x, 1.5, 3.0, loc=1.97, scale=0.012), rtol=1e-12, atol=1e-15))
True
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["crystal_ball_cdf"]

_SQRT_HALF = math.sqrt(0.5)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)


def crystal_ball_cdf(x: np.ndarray, beta: float, m: float, loc: float, scale: float) -> np.ndarray:
    """P(X <= x) of a Crystal Ball with tail onset ``beta`` (> 0), exponent ``m`` (> 1),
    mean ``loc`` and width ``scale`` (> 0), for every entry of ``x``; float64 out.

    The tail's integral from -inf to z is A (B - z)^(1 - m) / (m - 1) with
    A = (m / beta)^m exp(-beta^2 / 2) and B = m / beta - beta (in logs, for large m);
    the core's from -beta to z is sqrt(pi / 2) (erf(z / sqrt 2) + erf(beta / sqrt 2)).
    """
    from scipy.special import erf  # here: scipy.special takes longer to import than a fit

    z = (np.asarray(x, dtype=np.float64) - loc) / scale
    log_a = m * math.log(m / beta) - 0.5 * beta * beta
    b = m / beta - beta
    tail_total = math.exp(log_a - (m - 1) * math.log(m / beta)) / (m - 1)
    norm = tail_total + _SQRT_HALF_PI * (1.0 + math.erf(beta * _SQRT_HALF))
    in_tail = z < -beta
    tail = np.exp(log_a - (m - 1) * np.log(np.where(in_tail, b - z, 1.0))) / (m - 1)
    core = tail_total + _SQRT_HALF_PI * (erf(z * _SQRT_HALF) + math.erf(beta * _SQRT_HALF))
    return np.where(in_tail, tail, core) / norm
