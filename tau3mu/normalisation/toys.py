"""Toy data and simulation histograms of one era with known truth: closure tests of the
normalisation (R, f_B) and of its command, on the histogram layout a run writes.

Events are drawn one by one (mass from the Crystal Ball + exponential model of
:mod:`tau3mu.fit`, ct from exponentials, a muon pT) and filled into ``hist``
histograms with the ``dataset`` and ``systematic`` axes; simulation events carry a
weight (normalisation x a muon scale factor drawn per event, and its up/down
variation), data events weight 1. The scale factor per event is log-normal with mean 1
(``sf_spread`` its spread), so the simulation's expected weighted Ds+ yield is
``sim_events_ds x sim_weight``. Data's Ds+ yield is ``ratio`` times simulation's
expected weighted yield; its fraction from b hadrons is ``fraction_from_b``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tau3mu.config import DPLUS_MASS, DS_MASS, MassAxis

__all__ = ["CT_EDGES", "ToyTruth", "toy_histograms", "toy_report"]

#: ct binning of the toys (cm)
CT_EDGES = np.linspace(0.0, 0.3, 31)
#: mean ct (cm) of prompt Ds+, of the b hadron's added flight, and of the background
CT_PROMPT, CT_B, CT_BACKGROUND = 0.015, 0.05, 0.008
ORIGINS = (0, 1, 2)


@dataclass(frozen=True)
class ToyTruth:
    """What a toy is drawn from; yields are expected event counts."""

    era: str = "2017"
    data_era: str = "2017B"
    ratio: float = 0.85
    fraction_from_b: float = 0.25
    simulation_fraction_from_b: float = 0.3
    sim_events_ds: float = 20000.0
    sim_events_dplus: float = 3000.0
    sim_events_background: float = 2000.0
    sim_weight: float = 0.3
    sf_spread: float = 0.05
    sf_variation: float = 0.03
    data_dplus: float = 1800.0
    data_background: float = 60000.0
    alpha: float = 1.8
    n_cb: float = 3.0
    sigma: float = 0.0115
    slope: float = -1.3

    @property
    def data_ds(self) -> float:
        """The expected data Ds+ yield: ratio x simulation's expected weighted yield."""
        return self.ratio * self.sim_events_ds * self.sim_weight


def _mass(rng: np.random.Generator, n: int, truth: ToyTruth, component: str) -> np.ndarray:
    from tau3mu.crystalball import crystal_ball_cdf

    axis = MassAxis()
    grid = np.linspace(axis.start, axis.stop, 20001)
    if component == "background":
        cdf = np.expm1(truth.slope * (grid - grid[0]))
    else:
        mean = DS_MASS if component == "ds" else DPLUS_MASS
        cdf = crystal_ball_cdf(grid, truth.alpha, truth.n_cb, mean, truth.sigma)
    cdf = (cdf - cdf[0]) / (cdf[-1] - cdf[0])
    return np.interp(rng.uniform(size=n), cdf, grid)


def _events(rng: np.random.Generator, truth: ToyTruth, expected: dict, f_b: float) -> dict:
    """Columns mass, ct, origin, mu_pt of Poisson-many events of each component."""
    parts = []
    for component, mean in expected.items():
        n = int(rng.poisson(mean))
        origin = np.zeros(n, dtype=int)
        ct = rng.exponential(CT_BACKGROUND, n)
        pt = 3.0 + rng.exponential(2.0, n)
        if component == "ds":
            origin = np.where(rng.uniform(size=n) < f_b, 2, 1)
            ct = rng.exponential(CT_PROMPT, n) + np.where(origin == 2, rng.exponential(CT_B, n), 0)
            pt = 3.0 + rng.exponential(4.0, n)
        parts.append(
            {"mass": _mass(rng, n, truth, component), "ct": ct, "origin": origin, "mu_pt": pt}
        )
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _book() -> dict[str, Any]:
    import hist

    axis = MassAxis()

    def book(*axes: Any) -> Any:
        return hist.Hist(
            hist.axis.StrCategory([], name="dataset", growth=True),
            hist.axis.StrCategory([], name="systematic", growth=True),
            *axes,
            storage=hist.storage.Weight(),
        )

    mass = hist.axis.Regular(axis.bins, axis.start, axis.stop, name="mass")
    return {
        "h_mass": book(mass),
        "h_ct": book(
            hist.axis.IntCategory(list(ORIGINS), name="origin"),
            mass,
            hist.axis.Variable(CT_EDGES, name="ct"),
        ),
        "h_mu_pt": book(mass, hist.axis.Regular(50, 0.0, 25.0, name="mu_pt")),
    }


def _fill(hists: dict, dataset: str, systematic: str, ev: dict, weight: Any) -> None:
    common = {"dataset": dataset, "systematic": systematic, "mass": ev["mass"], "weight": weight}
    hists["h_mass"].fill(**common)
    hists["h_ct"].fill(**common, origin=ev["origin"], ct=ev["ct"])
    hists["h_mu_pt"].fill(**common, mu_pt=ev["mu_pt"])


def toy_histograms(rng: np.random.Generator, truth: ToyTruth = ToyTruth()) -> dict[str, Any]:
    """One toy: histograms of dataset ``data_<data_era>`` (nominal) and ``mc_<era>``
    (nominal, sf_up, sf_down)."""
    hists = _book()
    sim = _events(
        rng,
        truth,
        {
            "ds": truth.sim_events_ds,
            "dplus": truth.sim_events_dplus,
            "background": truth.sim_events_background,
        },
        truth.simulation_fraction_from_b,
    )
    # log-normal: positive, mean 1, relative spread ~sf_spread
    spread = truth.sf_spread
    sf = np.exp(spread * rng.standard_normal(len(sim["mass"])) - spread**2 / 2)
    for systematic, shift in (("nominal", 0.0), ("sf_up", 1.0), ("sf_down", -1.0)):
        weight = truth.sim_weight * (sf + shift * truth.sf_variation)
        _fill(hists, f"mc_{truth.era}", systematic, sim, weight)
    data = _events(
        rng,
        truth,
        {"ds": truth.data_ds, "dplus": truth.data_dplus, "background": truth.data_background},
        truth.fraction_from_b,
    )
    _fill(hists, f"data_{truth.data_era}", "nominal", data, np.ones(len(data["mass"])))
    return hists


def toy_report(truth: ToyTruth = ToyTruth()) -> dict[str, Any]:
    """The ``report.json`` content a run of the toy's datasets would write."""
    lumi = 4.8
    return {
        "datasets": {
            f"data_{truth.data_era}": {
                "files": [],
                "type": "data",
                "era": truth.data_era,
                "lumi": lumi,
            },
            f"mc_{truth.era}": {
                "files": [],
                "type": "mc",
                "era": truth.era,
                "lumi": None,
                "xsec": truth.sim_weight * 1e6 / (1000.0 * lumi),
                "ngen": 1e6,
            },
        },
        "weights": {
            f"mc_{truth.era}": {
                "xsec_pb": truth.sim_weight * 1e6 / (1000.0 * lumi),
                "ngen": 1e6,
                "lumi_fb": lumi,
                "lumi_source": "data of the era",
                "scale": truth.sim_weight,
                "muon_sf": "toy",
                "pileup": None,
            }
        },
    }
