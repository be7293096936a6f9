"""Binned sPlot and the ct template fit: the fraction f_B of Ds+ from b-hadron decays.

``docs/physics.md``, "Normalisation". The sWeight of the Ds+ component depends on the
mass only, so for a histogram it is one number per mass bin (Pivk & Le Diberder, with
the sum over events written as a sum over bins of their counts n_i):

    p_k(i)   = expected counts of component k in bin i / N_k       (shape, fit fixed)
    (V^-1)_jk = sum_i n_i p_j(i) p_k(i) / (sum_l N_l p_l(i))^2
    w_Ds(i)  = sum_j V_Ds,j p_j(i) / sum_l N_l p_l(i)

The sWeights are written here rather than taken from hepstats
(``hepstats.splot.compute_sweights``): hepstats evaluates zfit PDFs at unbinned events,
whereas the normalisation's fits are binned and run on either engine (iminuit without
zfit or TensorFlow in the process); a bin's sWeight uses the components' integrals over
the bin. tests/test_normalisation_hepstats.py checks them against hepstats (zfit's PDFs
at the bin centres, each weighted by its bin's count), within what the bin width
explains.

A histogram with a mass axis then gives the Ds+ component of its other variable as
sum_i w_Ds(i) h[i, :], with variances sum_i w_Ds(i)^2 var[i, :].

The template fit (:func:`fit_fraction_from_b`) fits the sWeighted ct distribution (sum of
weights and sum of squared weights per bin) with the prompt and non-prompt ct templates
of simulation truth using ``iminuit.cost.Template`` (Barlow-Beeston-like treatment of the
templates' finite statistics, method "da").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MIN_PER_BIN",
    "FractionResult",
    "fit_fraction_from_b",
    "merge_bins",
    "signal_sweights",
    "sweighted",
    "template_binning",
]

#: the template fit's ct bins hold at least this many sWeighted data Ds+ on average
MIN_PER_BIN = 25.0


def signal_sweights(
    counts: np.ndarray, components: Mapping[str, np.ndarray], signal: str = "n_ds"
) -> np.ndarray:
    """sWeight of the ``signal`` component per mass bin.

    ``counts``: the fitted mass histogram's bin values; ``components``: expected counts
    per bin of every fitted component at the fit's values (their sums are the yields).
    Returns one weight per bin. Raises ``ValueError`` when the components' covariance is
    singular (a component with no yield).
    """
    counts = np.asarray(counts, dtype=np.float64)
    names = list(components)
    expected = np.array([np.asarray(components[n], dtype=np.float64) for n in names])
    yields = expected.sum(axis=1)
    if np.any(yields <= 0):
        raise ValueError(
            f"components without yield: {[n for n, y in zip(names, yields, strict=True) if y <= 0]}"
        )
    shapes = expected / yields[:, None]
    total = expected.sum(axis=0)
    safe = np.where(total > 0, total, 1.0)
    inverse = np.einsum("i,ji,ki->jk", counts / safe**2, shapes, shapes)
    covariance = np.linalg.inv(inverse)
    k = names.index(signal)
    return (covariance[k] @ shapes) / safe


def sweighted(
    values: np.ndarray, variances: np.ndarray, weights: np.ndarray, mass_axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(values, variances) of a histogram with a mass axis, weighted per mass bin and
    summed over that axis."""
    values = np.moveaxis(np.asarray(values, dtype=np.float64), mass_axis, -1)
    variances = np.moveaxis(np.asarray(variances, dtype=np.float64), mass_axis, -1)
    return values @ weights, variances @ (weights**2)


def template_binning(templates: np.ndarray, data_yield: float) -> np.ndarray:
    """Bin boundaries (indices into the ct bins, first 0, last the number of bins) of the
    template fit: quantiles of the simulation templates' sum ``templates``, as many as
    give each at least :data:`MIN_PER_BIN` of the ``data_yield`` sWeighted Ds+ (at least
    3, at most the original bins). Sparse bins of an sWeighted histogram are empty or
    negative, which a Poisson-like likelihood cannot describe; the binning comes from
    simulation, not from the data it fits."""
    templates = np.asarray(templates, dtype=np.float64)
    n = int(np.clip(data_yield // MIN_PER_BIN, 3, len(templates)))
    share = np.cumsum(templates) / templates.sum()
    inner = np.searchsorted(share, np.arange(1, n) / n) + 1
    cuts = np.unique(np.concatenate([[0], inner[inner < len(templates)], [len(templates)]]))
    return cuts.astype(int)


def merge_bins(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """``values`` summed over the merged bins of ``cuts`` (:func:`template_binning`)
    along its last axis."""
    return np.add.reduceat(np.asarray(values, dtype=np.float64), cuts[:-1], axis=-1)


@dataclass
class FractionResult:
    """f_B and the template yields of the ct fit; ``converged`` False: do not use.

    ``error`` is f_B's total error; when the sWeights' fluctuation has been added
    (:mod:`tau3mu.normalisation.sweight_errors`), ``template_fit_error`` is the template
    fit's alone and ``sweight_error`` the added part (negative when it reduces the
    variance: sign x sqrt(|variance|)).
    """

    converged: bool
    fraction: float
    error: float
    n_prompt: float
    n_prompt_error: float
    n_from_b: float
    n_from_b_error: float
    reason: str = ""
    template_fit_error: float = math.nan
    sweight_error: float = math.nan

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def fit_fraction_from_b(
    data: tuple[np.ndarray, np.ndarray],
    prompt: tuple[np.ndarray, np.ndarray],
    from_b: tuple[np.ndarray, np.ndarray],
    edges: np.ndarray,
) -> FractionResult:
    """Fit the sWeighted data ct histogram with the prompt and from-b templates.

    Each argument is a (sum of weights, sum of squared weights) pair of arrays on the ct
    ``edges``. f_B = N_from_b / (N_prompt + N_from_b), its error propagated from the
    fit's covariance.
    """
    from iminuit import Minuit
    from iminuit.cost import Template

    def pairs(h: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return np.stack([np.asarray(h[0], float), np.asarray(h[1], float)], axis=-1)

    cost = Template(
        pairs(data),
        np.asarray(edges, float),
        [pairs(prompt), pairs(from_b)],
        name=("n_prompt", "n_from_b"),
        method="da",
    )
    total = max(float(np.sum(data[0])), 1.0)
    m = Minuit(cost, n_prompt=0.5 * total, n_from_b=0.5 * total)
    m.limits["n_prompt", "n_from_b"] = (0.0, None)
    m.migrad()
    m.hesse()
    if not (m.valid and m.accurate):
        nan = math.nan
        return FractionResult(False, nan, nan, nan, nan, nan, nan, "template fit did not converge")
    a, b = float(m.values["n_prompt"]), float(m.values["n_from_b"])
    gradient = np.array([-b, a]) / (a + b) ** 2
    cov = np.array(m.covariance)
    return FractionResult(
        converged=True,
        fraction=b / (a + b),
        error=float(math.sqrt(gradient @ cov @ gradient)),
        n_prompt=a,
        n_prompt_error=float(m.errors["n_prompt"]),
        n_from_b=b,
        n_from_b_error=float(m.errors["n_from_b"]),
        template_fit_error=float(math.sqrt(gradient @ cov @ gradient)),
    )
