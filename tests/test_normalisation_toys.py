"""Closure of the normalisation on toys with known truth: R and f_B unbiased with pulls of
width 1, and the weighted simulation fit's errors covering (``docs/physics.md``,
"Normalisation"). The toys are drawn event by event (:mod:`tau3mu.normalisation.toys`)
and go through the same functions as ``tau3mu normalise``."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tau3mu.normalisation.era import measure_era
from tau3mu.normalisation.massfit import fit_weighted
from tau3mu.normalisation.ratio import RatioMeasurement
from tau3mu.normalisation.toys import ToyTruth, toy_histograms

#: toys: the mean pull is known to ~0.07, its width to ~0.05
N_TOYS = 200
#: a weight spread that matters: sum w^2 is ~1.4 x (sum w)^2 / N
TRUTH = ToyTruth(sf_spread=0.6)
SIM = f"mc_{TRUTH.era}"
DATA = f"data_{TRUTH.data_era}"


@functools.cache
def toy_pulls() -> dict[str, np.ndarray]:
    """Pulls of R, f_B, the weighted simulation Ds+ yield, and that yield fitted as if
    its bins were Poisson counts (variances = values), over N_TOYS toys."""
    rng = np.random.default_rng(20260517)
    sim_yield = TRUTH.sim_events_ds * TRUTH.sim_weight
    pulls: dict[str, list[float]] = {"R": [], "f_B": [], "sim": [], "sim_as_counts": []}
    for _ in range(N_TOYS):
        hists = toy_histograms(rng, TRUTH)
        era = measure_era(hists, [DATA], [SIM], systematics=False)
        ratio: RatioMeasurement = era["ratio"]
        assert ratio is not None, era["failed"]
        pulls["R"].append((ratio.ratio - TRUTH.ratio) / ratio.stat_error)
        fraction = era["fraction"]
        assert fraction.converged, fraction.reason
        pulls["f_B"].append((fraction.fraction - TRUTH.fraction_from_b) / fraction.error)
        sim = ratio.simulation_fit
        pulls["sim"].append((sim.value("n_ds") - sim_yield) / sim.error("n_ds"))
        h = hists["h_mass"][{"dataset": SIM, "systematic": "nominal"}]
        naive = fit_weighted(h.values(), h.values(), h.axes[0].edges)
        assert naive.converged, naive.reason
        pulls["sim_as_counts"].append((naive.value("n_ds") - sim_yield) / naive.error("n_ds"))
    return {k: np.array(v) for k, v in pulls.items()}


@pytest.mark.slow
@pytest.mark.parametrize("quantity", ["R", "f_B", "sim"])
def test_pulls_are_unbiased_with_width_one(quantity):
    pulls = toy_pulls()[quantity]
    assert abs(pulls.mean()) < 0.1 + 2 * pulls.std() / np.sqrt(len(pulls)), pulls.mean()
    assert abs(pulls.std(ddof=1) - 1) < 0.1, pulls.std(ddof=1)


@pytest.mark.slow
def test_weighted_fit_errors_cover_where_counting_entries_does_not():
    """68 % of the toys' simulation yields lie within their error with (sumw, sumw2); fitting
    the sums of weights as Poisson counts misstates the error (here: too large, as the
    weights are ~0.3), which this test must tell apart."""
    pulls = toy_pulls()
    inside = np.mean(np.abs(pulls["sim"]) < 1)
    assert abs(inside - 0.683) < 0.07, inside
    assert np.std(pulls["sim_as_counts"], ddof=1) < 0.8
