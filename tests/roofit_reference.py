"""An independent RooFit fit of the mass model, the test-side reference for the fit engines.

The same model as ``tau3mu.fit`` (docs/physics.md, "Fit"), written with RooFit's own classes and
sharing nothing with the zfit or iminuit engines but the parameter ranges, the fixed tail
exponents and the start values:

- Ds+ and D+: ``RooCBShape`` (power-law tail on the low side for alpha > 0, as
  numba-stats' and zfit's Crystal Ball);
- background: ``RooExponential``, exp(slope * m), normalised over the fit range;
- ``RooAddPdf`` of the three with their yields: an extended model;
- data: a ``RooDataHist`` of the bin counts on the histogram's binning.

Our engines compare each bin's count with the model integrated over the bin. RooFit with
a ``RooDataHist`` would evaluate the density at the bin centre times the bin width; with
``IntegrateBins`` (ROOT >= 6.24) it wraps the model in a ``RooBinSamplingPdf`` that
integrates it over each bin, so the likelihoods are the same function.

ROOT is imported only here and only in the process that runs this file: the tests run it
as a subprocess (``python tests/roofit_reference.py < request.json``), away from numba
and TensorFlow, and ``tau3mu`` itself never imports ROOT.
Input (stdin, JSON): ``{"edges": [...], "histograms": [[counts...], ...]}``;
output (stdout, one line ``RESULT`` + JSON): one entry per histogram.

The data/simulation ratio (``docs/physics.md``, "Normalisation"): a request
``{"edges": [...], "ratio": {"data": [...], "simulation": [...], "simulation_variances":
[...]}}`` fits the weighted simulation histogram (bin errors sqrt(sum w^2) in the TH1,
``SumW2Error(True)``: the covariance corrected for the weights) and then the data with
the Ds+ and D+ tail onsets fixed to simulation's; the output holds both fits and R.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np

#: precision of the per-bin integration (relative)
INTEGRATION_PRECISION = 1e-7


def fit_roofit(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    strategy: int = 1,
    variances: np.ndarray | None = None,
    fixed: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Fit bin counts with RooFit; values and Hesse errors of every parameter.

    ``variances``: the bins' sums of squared weights of a weighted histogram (the fit then
    corrects its covariance with ``SumW2Error``); ``fixed``: parameters held at values.
    """
    import ROOT

    from tau3mu.fit import FIXED, SHAPE_DEFAULTS, YIELDS, start_values

    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    entries = float(counts.sum())
    lo, hi = float(edges[0]), float(edges[-1])

    mass = ROOT.RooRealVar("mass", "m(#mu#mu#pi)", lo, hi, "GeV")
    mass.setBinning(ROOT.RooBinning(len(edges) - 1, edges))
    th1 = ROOT.TH1D("h_mass_reference", "", len(edges) - 1, edges)
    th1.SetDirectory(ROOT.nullptr)
    for i, count in enumerate(counts, start=1):
        th1.SetBinContent(i, count)
        th1.SetBinError(i, math.sqrt(count if variances is None else variances[i - 1]))
    data = ROOT.RooDataHist("data", "data", ROOT.RooArgList(mass), ROOT.RooFit.Import(th1))

    starts = {name: spec[0] for name, spec in SHAPE_DEFAULTS.items()}
    starts.update(start_values(counts, edges))
    var: dict[str, Any] = {}
    for name, (_, lower, upper) in SHAPE_DEFAULTS.items():
        var[name] = ROOT.RooRealVar(
            name, name, float(np.clip(starts[name], lower, upper)), lower, upper
        )
    for name in YIELDS:
        upper = max(entries, 2.0)
        var[name] = ROOT.RooRealVar(
            name, name, float(np.clip(starts[name], 1.0, upper)), 1.0, upper
        )
    for name in FIXED:
        var[name].setConstant(True)
    for name, value in (fixed or {}).items():
        var[name].setVal(value)
        var[name].setConstant(True)

    ds = ROOT.RooCBShape(
        "ds", "Ds+", mass, var["mean_ds"], var["sigma_ds"], var["alpha_ds"], var["n_cb_ds"]
    )
    dplus = ROOT.RooCBShape(
        "dplus",
        "D+",
        mass,
        var["mean_dplus"],
        var["sigma_dplus"],
        var["alpha_dplus"],
        var["n_cb_dplus"],
    )
    background = ROOT.RooExponential("background", "background", mass, var["slope"])
    model = ROOT.RooAddPdf(
        "model",
        "model",
        ROOT.RooArgList(ds, dplus, background),
        ROOT.RooArgList(var["n_ds"], var["n_dplus"], var["n_bkg"]),
    )
    options = [
        ROOT.RooFit.Extended(True),
        ROOT.RooFit.Save(True),
        ROOT.RooFit.Minimizer("Minuit2", "migrad"),
        ROOT.RooFit.Strategy(strategy),
        ROOT.RooFit.IntegrateBins(INTEGRATION_PRECISION),
        ROOT.RooFit.PrintLevel(-1),
        ROOT.RooFit.PrintEvalErrors(-1),
    ]
    if variances is not None:
        options.append(ROOT.RooFit.SumW2Error(True))
    # Offset("bin"): each bin's term relative to the saturated model (as iminuit's cost
    # and zfit's loss do). Without it the NLL is ~-8e5 on a 2017B-size spectrum, and
    # Minuit2's numerical derivatives, whose steps scale with |NLL|, stopped at EDMs of
    # 1e-3..4e-2 (0.1-0.2 sigma from the minimum) with Hesse errors off by up to 30 %
    result = model.fitTo(data, *options, ROOT.RooFit.Offset("bin"), ROOT.RooFit.Hesse(True))
    params = {
        name: {
            "value": v.getVal(),
            "error": math.nan if v.isConstant() else v.getError(),
        }
        for name, v in var.items()
    }
    return {
        "status": int(result.status()),
        "status_history": [
            [str(result.statusLabelHistory(i)), int(result.statusCodeHistory(i))]
            for i in range(result.numStatusHistory())
        ],
        "cov_quality": int(result.covQual()),
        "edm": float(result.edm()),
        "params": params,
    }


def fit_ratio(request: dict[str, Any], edges: np.ndarray) -> dict[str, Any]:
    """Simulation (weighted) first, then data with simulation's tail onsets; R."""
    sim = fit_roofit(
        np.asarray(request["simulation"]),
        edges,
        variances=np.asarray(request["simulation_variances"]),
    )
    tails = {name: sim["params"][name]["value"] for name in ("alpha_ds", "alpha_dplus")}
    data = fit_roofit(np.asarray(request["data"]), edges, fixed=tails)
    n_data, n_sim = data["params"]["n_ds"], sim["params"]["n_ds"]
    ratio = n_data["value"] / n_sim["value"]
    relative = math.hypot(n_data["error"] / n_data["value"], n_sim["error"] / n_sim["value"])
    return {"simulation": sim, "data": data, "R": ratio, "stat_error": ratio * relative}


def main() -> None:
    request = json.load(sys.stdin)
    edges = np.asarray(request["edges"], dtype=np.float64)
    if "ratio" in request:
        out: Any = fit_ratio(request["ratio"], edges)
    else:
        out = [fit_roofit(np.asarray(c), edges) for c in request["histograms"]]
    print("RESULT" + json.dumps(out))


if __name__ == "__main__":
    main()
