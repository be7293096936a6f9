"""The data/simulation ratio of Ds+ yields of one era, with its statistical and
systematic errors (``docs/physics.md``, "Normalisation").

Simulation is fitted first (weighted, with its variances); data then with the Crystal
Ball tails fixed to simulation's (:func:`tau3mu.fit.tail_parameters`). R =
N_Ds(data) / N_Ds(simulation); its statistical error combines both fits' errors. Each
systematic is a refit and a shift of R:

- ``scale_factors``: the simulation histograms with the muon scale factors at their
  up and down variations refitted; the larger shift;
- ``tails``: the data fit with the Ds+ and D+ tail onsets (alpha) floating; with the Ds+
  tail onset moved to either end of its simulation Minos interval; and simulation
  refitted with the tail exponents n floating (the nominal fits hold them at 3), data
  with its tails, and with its Ds+ exponent at either end of its Minos interval; the
  largest shift. Minos, not the parabolic error: a tail onset far out in the tail is
  weakly and one-sidedly constrained, and a parabolic error reaches values the
  likelihood excludes;
- ``background``: both fits with a second-order polynomial background;
- ``mass_window``: both fits in a narrower window (:data:`NARROW_LOW`, :data:`NARROW_HIGH`).

The total systematic error is their sum in quadrature.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tau3mu.config import DS_MASS
from tau3mu.fit import FIXED, SHAPE_DEFAULTS, FitResult
from tau3mu.normalisation.massfit import DEFAULT_ENGINE, fit_weighted, tail_parameters

__all__ = ["NARROW_HIGH", "NARROW_LOW", "RatioMeasurement", "measure_ratio", "narrower"]

#: the narrower window raises the low edge by this much (GeV) ...
NARROW_LOW = 0.08
#: ... and lowers the high edge by this much, but not below the Ds+ mass + 0.04 GeV
NARROW_HIGH = 0.04

Histogram = tuple[np.ndarray, np.ndarray]

#: the variations with the tail exponents n floating in simulation -> which data fit
EXPONENT_VARIATIONS = {
    "n_floating": "tails",
    "n_cb_ds_up": "n_cb_ds_up",
    "n_cb_ds_down": "n_cb_ds_down",
}


@dataclass
class RatioMeasurement:
    """R with its errors, the nominal fits, and R under each variation."""

    ratio: float
    stat_error: float
    systematics: dict[str, float]
    variations: dict[str, float]
    data_fit: FitResult
    simulation_fit: FitResult
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def syst_error(self) -> float:
        return math.sqrt(sum(v * v for v in self.systematics.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "R": self.ratio,
            "stat_error": self.stat_error,
            "syst_error": self.syst_error,
            "systematics": self.systematics,
            "variations": self.variations,
            "failed_variations": self.failed,
            "n_ds_data": _yield(self.data_fit),
            "n_ds_simulation": _yield(self.simulation_fit),
            "data_fit": self.data_fit.to_dict(),
            "simulation_fit": self.simulation_fit.to_dict(),
        }


def _yield(fit: FitResult) -> dict[str, float]:
    return {"value": fit.value("n_ds"), "error": fit.error("n_ds")}


def narrower(h: Histogram, edges: np.ndarray) -> tuple[Histogram, np.ndarray]:
    """The bins of ``h`` inside the narrower mass window, and their edges."""
    low = edges[0] + NARROW_LOW - 1e-9
    high = max(edges[-1] - NARROW_HIGH, DS_MASS + 0.04) + 1e-9
    keep = (edges[:-1] >= low) & (edges[1:] <= high)
    first, last = int(np.argmax(keep)), int(len(keep) - np.argmax(keep[::-1]))
    return (h[0][first:last], h[1][first:last]), edges[first : last + 1]


def _fit_pair(
    data: Histogram, simulation: Histogram, edges: np.ndarray, **options: Any
) -> tuple[FitResult, FitResult]:
    """Simulation first, then data with the tails fixed to simulation's."""
    sim = fit_weighted(*simulation, edges, **options)
    if not sim.converged:
        return sim, sim
    return sim, fit_weighted(*data, edges, fixed=tail_parameters(sim), **options)


def _ratio(sim: FitResult, data: FitResult) -> float:
    return data.value("n_ds") / sim.value("n_ds")


def _with_minos(h: Histogram, edges: np.ndarray, **options: Any) -> FitResult:
    """The fit of ``h`` with Minos errors; without them where Minos cannot finish (its
    scan can reach a parameter point where the model is undefined)."""
    try:
        return fit_weighted(*h, edges, minos=True, **options)
    except (ValueError, ArithmeticError):
        return fit_weighted(*h, edges, **options)


def _tail_variations(
    sim: FitResult, names: tuple[str, ...] = ("alpha_ds",)
) -> dict[str, dict[str, float]]:
    """The data fit's fixed tails for each tail variation of the simulation fit ``sim``
    (a name -> ``fixed``): all its tails (``tails``), the tail onsets floating
    (``tails_floating``), and each of ``names`` moved to the ends of its Minos interval
    in ``sim`` (``<name>_up``, ``<name>_down``; by plus and minus its parabolic error
    without Minos; none where ``sim`` held it or did not measure its peak), within its
    range."""
    tails = tail_parameters(sim)
    out = {
        "tails": tails,
        "tails_floating": {n: v for n, v in tails.items() if not n.startswith("alpha")},
    }
    for name in names:
        if name not in tails:  # a peak the simulation fit did not measure
            continue
        error = sim.error(name)
        if not math.isfinite(error):
            continue
        _, lower, upper = SHAPE_DEFAULTS[name]
        entry = sim.params[name]
        minos = {"up": entry.get("upper", math.nan), "down": entry.get("lower", math.nan)}
        for sign, label in ((1, "up"), (-1, "down")):
            step = minos[label] if math.isfinite(minos[label]) else sign * error
            value = float(np.clip(tails[name] + step, lower, upper))
            out[f"{name}_{label}"] = {**tails, name: value}
    return out


def _variations(
    data: Histogram,
    simulation: Mapping[str, Histogram],
    edges: np.ndarray,
    sim: FitResult,
    engine: str,
) -> dict[str, Callable[[], float]]:
    """Each variation's name -> a function computing R under it."""

    def scale_factor(key: str) -> float:
        return _ratio(*_fit_pair(data, simulation[key], edges, engine=engine))

    def tails(fixed: dict[str, float], sim_fit: FitResult = sim) -> float:
        refit = fit_weighted(*data, edges, fixed=fixed, engine=engine)
        if not refit.converged:
            raise ArithmeticError(refit.reason)
        return _ratio(sim_fit, refit)

    floating_n: list[FitResult] = []  # the simulation fit with n floating, once

    def exponents(variation: str) -> float:
        """Simulation with the tail exponents floating, data with its tails."""
        if not floating_n:
            floating_n.append(_with_minos(simulation["nominal"], edges, free=FIXED, engine=engine))
        sim_n = floating_n[0]
        if not sim_n.converged:
            raise ArithmeticError(f"simulation fit with n floating: {sim_n.reason}")
        fixed = _tail_variations(sim_n, ("n_cb_ds",)).get(variation)
        if fixed is None:
            raise ArithmeticError("the simulation fit with n floating gave no error on n")
        return tails(fixed, sim_n)

    def pair(data_h: Histogram, sim_h: Histogram, edges_h: np.ndarray, **options: Any) -> float:
        sim_fit, data_fit = _fit_pair(data_h, sim_h, edges_h, engine=engine, **options)
        if not (sim_fit.converged and data_fit.converged):
            raise ArithmeticError(sim_fit.reason or data_fit.reason)
        return _ratio(sim_fit, data_fit)

    out: dict[str, Callable[[], float]] = {}
    for key in ("sf_up", "sf_down"):
        if key in simulation:
            out[key] = functools.partial(scale_factor, key)
    sim_minos = _with_minos(simulation["nominal"], edges, engine=engine)
    tail_fits = sim_minos if sim_minos.converged else sim
    for name, fixed in _tail_variations(tail_fits).items():
        if name != "tails":  # the nominal data fit
            out[name] = functools.partial(tails, fixed)
    for name, variation in EXPONENT_VARIATIONS.items():
        out[name] = functools.partial(exponents, variation)
    out["background_poly2"] = lambda: pair(data, simulation["nominal"], edges, background="poly2")
    narrow_data, narrow_edges = narrower(data, edges)
    narrow_sim, _ = narrower(simulation["nominal"], edges)
    out["mass_window_narrow"] = lambda: pair(narrow_data, narrow_sim, narrow_edges)
    return out


#: which variations make up each systematic
GROUPS = {
    "scale_factors": ("sf_up", "sf_down"),
    "tails": ("tails_floating", "alpha_ds_up", "alpha_ds_down", *EXPONENT_VARIATIONS),
    "background": ("background_poly2",),
    "mass_window": ("mass_window_narrow",),
}


def measure_ratio(
    data: Histogram,
    simulation: Mapping[str, Histogram],
    edges: np.ndarray,
    *,
    systematics: bool = True,
    engine: str = DEFAULT_ENGINE,
) -> RatioMeasurement | tuple[FitResult, FitResult]:
    """R of one era from its summed data mass histogram and its simulation mass
    histograms by systematic (``nominal`` required; ``sf_up``/``sf_down`` when present),
    each a (sum of weights, sum of squared weights) pair on ``edges``.

    Returns a :class:`RatioMeasurement`, or the (simulation, data) fits when either
    nominal fit failed. ``systematics`` False skips the variations (toys); ``engine``: the
    fit engine (:data:`tau3mu.fit.ENGINES`).
    """
    edges = np.asarray(edges, dtype=np.float64)
    sim, fit = _fit_pair(data, simulation["nominal"], edges, engine=engine)
    if not (sim.converged and fit.converged):
        return sim, fit
    ratio = _ratio(sim, fit)
    relative = math.hypot(
        fit.error("n_ds") / fit.value("n_ds"), sim.error("n_ds") / sim.value("n_ds")
    )
    variations: dict[str, float] = {}
    failed: dict[str, str] = {}
    if systematics:
        for name, compute in _variations(data, simulation, edges, sim, engine).items():
            try:
                variations[name] = compute()
            except (ArithmeticError, KeyError) as err:
                failed[name] = str(err) or type(err).__name__
    shifts = {
        group: max((abs(variations[n] - ratio) for n in names if n in variations), default=0.0)
        for group, names in GROUPS.items()
    }
    return RatioMeasurement(
        ratio, ratio * relative, shifts if systematics else {}, variations, fit, sim, failed
    )
