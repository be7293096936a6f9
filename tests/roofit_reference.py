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
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np

#: precision of the per-bin integration (relative)
INTEGRATION_PRECISION = 1e-7


def fit_roofit(counts: np.ndarray, edges: np.ndarray, *, strategy: int = 1) -> dict[str, Any]:
    """Fit bin counts with RooFit; values and Hesse errors of every parameter."""
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
        th1.SetBinError(i, math.sqrt(count))
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


def main() -> None:
    request = json.load(sys.stdin)
    edges = np.asarray(request["edges"], dtype=np.float64)
    out = [fit_roofit(np.asarray(c), edges) for c in request["histograms"]]
    print("RESULT" + json.dumps(out))


if __name__ == "__main__":
    main()
