"""One entry point over both engines: fit a mass histogram with the engine named."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from tau3mu.errors import OptionError
from tau3mu.fit.engine_iminuit import fit_counts_iminuit
from tau3mu.fit.engine_zfit import fit_counts
from tau3mu.fit.histogram import mass_spectrum
from tau3mu.fit.result import FitResult

__all__ = ["ENGINES", "add_fit_engine_option", "fit_mass", "fit_spectrum"]

#: the fit engines: zfit (the default) and iminuit (independent, milliseconds)
ENGINES = ("zfit", "iminuit")


def add_fit_engine_option(parser: argparse.ArgumentParser) -> None:
    """``--fit-engine`` (``args.fit_engine``), the one option naming the engine of every
    command that fits: one of :data:`ENGINES`, zfit by default."""
    parser.add_argument(
        "--fit-engine",
        choices=ENGINES,
        default="zfit",
        help="zfit (default), or iminuit with a numpy Crystal Ball: the same model and strategy, "
        "an independent implementation that fits in milliseconds",
    )


def fit_spectrum(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    engine: str = "zfit",
    minos: bool = False,
    min_entries: int = 50,
    variances: np.ndarray | None = None,
    fixed: Mapping[str, float] | None = None,
    background: str = "exponential",
    free: Collection[str] = (),
) -> FitResult:
    """Fit bin counts with edges with ``engine`` (one of :data:`ENGINES`); the other
    arguments as :func:`tau3mu.fit.fit_counts` takes them. Raises
    :class:`~tau3mu.errors.OptionError` for an unknown engine or background, or a bad
    ``fixed`` or ``free``."""
    if engine not in ENGINES:
        raise OptionError(f"engine: {engine!r} is not one of {', '.join(ENGINES)}")
    fit = fit_counts_iminuit if engine == "iminuit" else fit_counts
    return fit(
        counts,
        edges,
        minos=minos,
        min_entries=min_entries,
        variances=variances,
        fixed=fixed,
        background=background,
        free=free,
    )


def fit_mass(
    h: Any,
    *,
    minos: bool = False,
    min_entries: int = 50,
    engine: str = "zfit",
    fixed: Mapping[str, float] | None = None,
    background: str = "exponential",
    free: Collection[str] = (),
) -> FitResult:
    """Fit a mass histogram (``hist.Hist``; a nominal slice is taken from bigger ones).

    A weighted histogram (variances that differ from its values) is fitted with its
    variances (:mod:`tau3mu.fit.histogram`), an unweighted one as Poisson counts.
    ``fixed`` holds named parameters at the values given (e.g. the tails of a simulation
    fit, :func:`tau3mu.fit.tail_parameters`); ``free`` floats parameters held by default
    (the tail exponents ``n_cb_ds``, ``n_cb_dplus``); ``background``: ``exponential`` (default)
    or ``poly2``; ``engine``: ``zfit`` (default) or ``iminuit``. Raises
    :class:`~tau3mu.errors.OptionError` for an unknown engine or background or a bad
    ``fixed`` or ``free``, ValueError for a histogram with several datasets.
    """
    counts, variances, edges = mass_spectrum(h)
    return fit_spectrum(
        counts,
        edges,
        engine=engine,
        minos=minos,
        min_entries=min_entries,
        variances=variances,
        fixed=fixed,
        background=background,
        free=free,
    )
