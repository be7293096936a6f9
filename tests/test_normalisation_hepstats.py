"""The binned sWeights of :mod:`tau3mu.normalisation.splot` against hepstats's sPlot
(``hepstats.splot.compute_sweights``) with zfit's own PDFs of the fitted model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tau3mu.normalisation import fit_weighted, signal_sweights
from tau3mu.normalisation.era import summed
from tau3mu.normalisation.massfit import expected_counts
from tau3mu.normalisation.toys import ToyTruth, toy_histograms

#: hepstats's sWeights of the fitted model at the bin centres, each bin's events there
#: (``sample_weight``: the bin's count); zfit in its own process (TensorFlow beside
#: ROOT and the XRootD client in one process is not safe)
HEPSTATS_SWEIGHTS = """
import json, sys
import numpy as np
from hepstats.splot import compute_sweights
from tau3mu.fit.engine_zfit import import_zfit
zfit = import_zfit()
given = json.loads(sys.stdin.read())
p, centres = given["params"], np.asarray(given["centres"])
obs = zfit.Space("mass", limits=tuple(given["range"]))
def crystal_ball(name, k):
    return zfit.pdf.CrystalBall(obs=obs, mu=p[f"mean_{k}"], sigma=p[f"sigma_{k}"],
                                alpha=p[f"alpha_{k}"], n=p[f"n_cb_{k}"], name=name)
yields = {y: zfit.Parameter(y, p[y]) for y in ("n_ds", "n_dplus", "n_bkg")}
parts = [crystal_ball("ds", "ds").create_extended(yields["n_ds"]),
         crystal_ball("dplus", "dplus").create_extended(yields["n_dplus"]),
         zfit.pdf.Exponential(obs=obs, lam=p["slope"]).create_extended(yields["n_bkg"])]
model = zfit.pdf.SumPDF(parts)
data = zfit.Data.from_numpy(obs=obs, array=centres)
weights = compute_sweights(model, data, sample_weight=np.asarray(given["counts"]))
print("RESULT" + json.dumps({y.name: w.tolist() for y, w in weights.items()}))
"""


@pytest.mark.slow
def test_binned_sweights_agree_with_hepstats():
    """The toy data's mass fit (iminuit), its sWeights per mass bin from our code and from
    hepstats with zfit's Crystal Balls and exponential at the fitted values, evaluated
    at the bin centres with each bin's count as ``sample_weight`` (hepstats's sum over
    events becomes our sum over bins). What binning explains: ours use each component's
    integral over the bin, hepstats its density at the centre (times the bin width, which
    cancels); the two differ by about (width/sigma)^2/24 relative at a Gaussian peak
    (1.1 % here: 5.8 MeV bins, 11 MeV widths), so each component's weights agree within
    twice that of its largest weight."""
    toy = toy_histograms(np.random.default_rng(23), ToyTruth())
    values, variances = summed(toy["h_mass"], ["data_2017B"])
    edges = toy["h_mass"].axes["mass"].edges
    result = fit_weighted(values, variances, edges, engine="iminuit")
    assert result.converged
    params = {name: p["value"] for name, p in result.params.items()}
    components = expected_counts(edges, params)
    ours = {name: signal_sweights(values, components, name) for name in components}
    width = float(np.max(np.diff(edges)))
    # the midpoint rule's relative error at a Gaussian peak of the fitted width
    midpoint = (width / min(params["sigma_ds"], params["sigma_dplus"])) ** 2 / 24
    assert midpoint < 0.02

    given = {
        "params": params,
        "range": [float(edges[0]), float(edges[-1])],
        "centres": (0.5 * (edges[1:] + edges[:-1])).tolist(),
        "counts": values.tolist(),
    }
    proc = subprocess.run(
        [sys.executable, "-c", HEPSTATS_SWEIGHTS],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    theirs = {name: np.asarray(w) for name, w in json.loads(line[len("RESULT") :]).items()}
    for name in components:
        scale = np.abs(ours[name]).max()
        np.testing.assert_allclose(
            ours[name], theirs[name], atol=2 * midpoint * scale, err_msg=name
        )
    # the weights differ: a test that compares a thing with itself could not fail
    assert not np.allclose(ours["n_ds"], theirs["n_ds"], rtol=0, atol=1e-12)
