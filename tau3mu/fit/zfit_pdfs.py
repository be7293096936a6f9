"""zfit binned PDFs of the fit model that integrate their shape over every bin at once.

zfit's ``BinnedFromUnbinnedPDF`` integrates an unbinned PDF bin by bin, through a
``Space`` per bin and a vectorised map: a graph of thousands of operations, slow to trace
(``docs/benchmarks.md``, "Fit time"). These compute the same bin integrals with zfit's
analytic Crystal Ball integral on all bin edges at once, and the exponential's and the
second-order Bernstein polynomial's in closed form. Each is normalised to the fit range by the sum of its bins, which tile the range.

zfit's analytic Crystal Ball integral (``crystalball_integral_func``) lives in its
``zfit.models.physics`` module without being part of the documented API: where it is
missing, :func:`crystal_ball_pdf` falls back to zfit's public ``BinnedFromUnbinnedPDF``
of ``zfit.pdf.CrystalBall`` (the same bin integrals, slower to trace).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["binned_pdfs", "crystal_ball_pdf", "fast_crystal_ball_available"]


def fast_crystal_ball_available() -> bool:
    """Whether zfit provides the analytic Crystal Ball integral the fast PDF uses."""
    try:
        from zfit.models.physics import crystalball_integral_func  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def binned_pdfs() -> tuple[type | None, type, type]:
    """(BinnedCrystalBall or None where zfit lacks its integral, BinnedExponential,
    BinnedBernstein2)."""
    import zfit
    import zfit.z.numpy as znp

    class BinnedExponential(zfit.pdf.BaseBinnedPDF):
        def __init__(self, obs, lam, extended, name):
            super().__init__(obs=obs, extended=extended, name=name, params={"lam": lam})
            edges = np.asarray(obs.binning.edges[0], dtype=np.float64)
            # exp(lam (x - centre)): shifted to the middle of the range against overflow,
            # as zfit's Exponential does
            self._offset = edges[:-1] - 0.5 * (edges[0] + edges[-1])
            self._width = np.diff(edges)

        @zfit.supports(norm="space")
        def _rel_counts(self, x, norm):
            lam = self.params["lam"].value()
            # bin integral exp(lam a) (exp(lam w) - 1) / lam, written as
            # exp(lam a) w expm1(lam w) / (lam w): finite and smooth through lam = 0
            lw = lam * self._width
            small = znp.abs(lw) < 1e-7
            safe = znp.where(small, znp.ones_like(lw), lw)
            ratio = znp.where(small, 1.0 + 0.5 * lw, znp.expm1(safe) / safe)
            per_bin = znp.exp(lam * self._offset) * self._width * ratio
            return per_bin / znp.sum(per_bin)

    class BinnedBernstein2(zfit.pdf.BaseBinnedPDF):
        """1 (1-u)^2 + 2 b1 u (1-u) + b2 u^2 on u in [0, 1] across the range."""

        def __init__(self, obs, b1, b2, extended, name):
            super().__init__(obs=obs, extended=extended, name=name, params={"b1": b1, "b2": b2})
            edges = np.asarray(obs.binning.edges[0], dtype=np.float64)
            u = (edges - edges[0]) / (edges[-1] - edges[0])
            # integrals from 0 to u of the three basis polynomials, times 3
            self._basis = np.stack([1.0 - (1.0 - u) ** 3, 3.0 * u**2 - 2.0 * u**3, u**3])

        @zfit.supports(norm="space")
        def _rel_counts(self, x, norm):
            b1, b2 = self.params["b1"].value(), self.params["b2"].value()
            below = self._basis[0] + b1 * self._basis[1] + b2 * self._basis[2]
            per_bin = below[1:] - below[:-1]
            return per_bin / znp.sum(per_bin)

    if not fast_crystal_ball_available():
        return None, BinnedExponential, BinnedBernstein2
    from zfit.models.physics import crystalball_integral_func

    class BinnedCrystalBall(zfit.pdf.BaseBinnedPDF):
        def __init__(self, obs, mu, sigma, alpha, n, extended, name):
            params = {"mu": mu, "sigma": sigma, "alpha": alpha, "n": n}
            super().__init__(obs=obs, extended=extended, name=name, params=params)
            edges = np.asarray(obs.binning.edges[0], dtype=np.float64)
            self._lower, self._upper = edges[:-1, None], edges[1:, None]

        @zfit.supports(norm="space")
        def _rel_counts(self, x, norm):
            p = self.params
            per_bin = crystalball_integral_func(
                p["mu"].value(),
                p["sigma"].value(),
                p["alpha"].value(),
                p["n"].value(),
                self._lower,
                self._upper,
            )
            return per_bin / znp.sum(per_bin)

    return BinnedCrystalBall, BinnedExponential, BinnedBernstein2


def crystal_ball_pdf(obs: Any, *, fast: bool = True, **params: Any) -> Any:
    """A binned, extended Crystal Ball on ``obs`` (a binned ``zfit.Space``).

    ``params``: ``mu, sigma, alpha, n, extended, name`` as zfit's ``CrystalBall`` takes
    them. ``fast``: the PDF of :func:`binned_pdfs` where zfit provides its integral; False,
    or where it does not, zfit's ``BinnedFromUnbinnedPDF`` of ``zfit.pdf.CrystalBall``.
    """
    import zfit

    crystal_ball = binned_pdfs()[0]
    if fast and crystal_ball is not None:
        return crystal_ball(obs, **params)
    extended, name = params.pop("extended"), params.pop("name")
    unbinned = zfit.pdf.CrystalBall(obs=obs.with_binning(None), name=f"{name}_unbinned", **params)
    return zfit.pdf.BinnedFromUnbinnedPDF(unbinned, space=obs, extended=extended, name=name)
