"""One entry point over both engines: fit a mass histogram with the engine named."""

from __future__ import annotations

from typing import Any

from tau3mu.fit.engine_zfit import fit_counts
from tau3mu.fit.histogram import mass_counts
from tau3mu.fit.result import FitResult

__all__ = ["fit_mass"]


def fit_mass(h: Any, *, minos: bool = False, min_entries: int = 50) -> FitResult:
    """Fit a mass histogram (``hist.Hist``; a nominal slice is taken from bigger ones)."""
    counts, edges = mass_counts(h)
    return fit_counts(counts, edges, minos=minos, min_entries=min_entries)
