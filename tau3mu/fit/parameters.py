"""The fit's parameters: names, ranges, which are held fixed, and start values from the data.

Names used in results: ``n_ds, n_dplus, n_bkg`` (yields), ``mean_ds, sigma_ds, alpha_ds,
n_cb_ds`` and the same for ``dplus`` (the Crystal Balls), and the background's: ``slope``
of the exponential (the default), or ``bkg_b1, bkg_b2`` of the second-order Bernstein
polynomial (``background="poly2"``, the alternative for the fit-model systematic; its
first coefficient is 1, the yield sets the level). Ranges and start values:
``docs/physics.md``, "Fit".
"""

from __future__ import annotations

import math

import numpy as np

from tau3mu.config import DPLUS_MASS, DS_MASS

__all__ = [
    "BACKGROUNDS",
    "FIXED",
    "PARAMETER_ORDER",
    "SHAPE_DEFAULTS",
    "SIDEBANDS",
    "TAILS",
    "YIELDS",
    "limits",
    "parameter_order",
    "shape_defaults",
    "shape_of",
    "start_values",
    "start_vector",
]

#: sideband windows (GeV) of the original pre-fit, used for background start values
SIDEBANDS = ((1.65, 1.84), (1.89, 1.925), (1.99, 2.02))
#: (start, lower, upper) per shape parameter (``docs/physics.md``, "Fit")
SHAPE_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "mean_ds": (1.97, 1.94, 2.10),
    # widths: the original allowed up to 0.1 / 0.05; the detector resolution is ~12 MeV, and a width
    # above 30 MeV is a peak eating background, not a resolution
    "sigma_ds": (0.012, 0.001, 0.03),
    "alpha_ds": (1.5, 0.3, 10.0),
    # n above 1: the Crystal Ball's tail integral (the CDF) has 1 / (n - 1)
    "n_cb_ds": (3.0, 1.1, 25.0),
    "mean_dplus": (1.87, 1.82, 1.89),
    "sigma_dplus": (0.011, 0.001, 0.03),
    "alpha_dplus": (1.5, 0.3, 10.0),
    "n_cb_dplus": (3.0, 1.1, 25.0),
    # the original allowed (-2, -0.01); flat and rising backgrounds exist, so it may cross 0
    "slope": (-1.0, -10.0, 10.0),
}
YIELDS = ("n_ds", "n_dplus", "n_bkg")
#: parameters held at their start value in the fit
FIXED = ("n_cb_ds", "n_cb_dplus")
#: the Crystal Ball tails: what a data fit may take from simulation's
TAILS = ("alpha_ds", "n_cb_ds", "alpha_dplus", "n_cb_dplus")
#: (start, lower, upper) of each background shape's parameters; the exponential's are
#: those of ``SHAPE_DEFAULTS``. Bernstein coefficients relative to the first (1): 1, 1 is
#: flat; positive, so the density is positive everywhere
BACKGROUNDS: dict[str, dict[str, tuple[float, float, float]]] = {
    "exponential": {"slope": SHAPE_DEFAULTS["slope"]},
    "poly2": {"bkg_b1": (1.0, 0.01, 50.0), "bkg_b2": (1.0, 0.01, 50.0)},
}
#: order of the parameter vector given to Minuit by both engines (exponential background)
PARAMETER_ORDER = (*YIELDS, *SHAPE_DEFAULTS)


def shape_defaults(background: str = "exponential") -> dict[str, tuple[float, float, float]]:
    """(start, lower, upper) of every shape parameter with this background (a key of
    :data:`BACKGROUNDS`); the exponential's is :data:`SHAPE_DEFAULTS`."""
    if background == "exponential":
        return SHAPE_DEFAULTS
    signal = {name: spec for name, spec in SHAPE_DEFAULTS.items() if name != "slope"}
    return {**signal, **BACKGROUNDS[background]}


def parameter_order(background: str = "exponential") -> tuple[str, ...]:
    """The parameter vector's names with this background: yields, then shapes."""
    return (*YIELDS, *shape_defaults(background))


def shape_of(yield_name: str) -> tuple[str, ...]:
    """Shape parameters of the peak whose yield is ``yield_name`` (tail exponent aside)."""
    peak = yield_name.removeprefix("n_")
    return (f"mean_{peak}", f"sigma_{peak}", f"alpha_{peak}")


def limits(
    entries: float, background: str = "exponential", unit: float = 1.0
) -> dict[str, tuple[float, float]]:
    """(lower, upper) per parameter: the shape ranges of :func:`shape_defaults`, yields
    within [unit, entries]; ``unit`` is the weight of one event (1 unless weighted)."""
    out = {name: spec[1:] for name, spec in shape_defaults(background).items()}
    out.update({name: (unit, max(entries, 2.0 * unit)) for name in YIELDS})
    return out


def start_values(counts: np.ndarray, edges: np.ndarray) -> dict[str, float]:
    """Background level and slope from the sidebands, peak yields from the excess over it."""
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = np.diff(edges)
    side = np.zeros(len(centres), dtype=bool)
    for lo, hi in SIDEBANDS:
        side |= (centres > lo) & (centres < hi)
    use = side & (counts > 0)
    if use.sum() >= 3:
        slope, intercept = np.polyfit(
            centres[use], np.log(counts[use] / width[use]), 1, w=np.sqrt(counts[use])
        )
    else:
        slope, intercept = 0.0, math.log(max(counts.sum(), 1.0) / (edges[-1] - edges[0]))
    slope = float(
        np.clip(slope, SHAPE_DEFAULTS["slope"][1] + 0.1, SHAPE_DEFAULTS["slope"][2] - 0.1)
    )
    background = np.exp(intercept + slope * centres) * width
    total = float(counts.sum())

    def excess(centre: float, half: float) -> float:
        window = np.abs(centres - centre) < half
        return float((counts[window] - background[window]).sum())

    n_ds = excess(DS_MASS, 0.03)
    n_dplus = excess(DPLUS_MASS, 0.03)
    n_bkg = max(total - max(n_ds, 0) - max(n_dplus, 0), 1.0)
    return {
        "n_ds": float(np.clip(n_ds, 0.05 * total, 0.9 * total)) if total else 1.0,
        "n_dplus": float(np.clip(n_dplus, 0.02 * total, 0.9 * total)) if total else 1.0,
        "n_bkg": float(np.clip(n_bkg, 1.0, total)) if total else 1.0,
        "slope": slope,
    }


def _bernstein_starts(slope: float, edges: np.ndarray) -> dict[str, float]:
    """The Bernstein coefficients (first 1) through the exponential of ``slope`` at the
    range's ends and middle."""
    span = float(edges[-1] - edges[0])
    b2 = math.exp(slope * span)
    return {"bkg_b1": 2.0 * math.exp(0.5 * slope * span) - 0.5 - 0.5 * b2, "bkg_b2": b2}


def start_vector(
    counts: np.ndarray,
    edges: np.ndarray,
    names: tuple[str, ...],
    background: str = "exponential",
    unit: float = 1.0,
) -> list[float]:
    """Start values of ``names`` from the histogram, inside their :func:`limits`."""
    starts = {name: spec[0] for name, spec in shape_defaults(background).items()}
    starts.update(start_values(counts, edges))
    if background == "poly2":
        starts.update(_bernstein_starts(starts["slope"], edges))
    bounds = limits(float(counts.sum()), background, unit)
    return [float(np.clip(starts[name], *bounds[name])) for name in names]
