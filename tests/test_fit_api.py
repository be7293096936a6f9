"""The fit API the normalisation uses: weighted histograms fitted with their variances
(coverage on toys), fixed parameters, the tails of one fit for another, the poly2
background, both engines on all of it, and ``tau3mu fit`` on weighted histograms."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import zlib

import numpy as np
import pytest
from spectra import EDGES, TRUTH

from tau3mu import fit


#: weights of simulated events: mean 0.5, mean square 1/3, so that a weighted bin's
#: variance (sum w^2) is 2/3 of its content (sum w), not the content
def _uniform_weights(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size)


N_WEIGHTED_TOYS = 150


@functools.cache
def _weighted_pulls() -> tuple[np.ndarray, np.ndarray]:
    """Ds+ yield pulls over weighted toys: fitted with the variances, and fitted as if the
    sums of weights were Poisson counts."""
    rng = np.random.default_rng(zlib.crc32(b"weighted"))
    truth = 0.5 * TRUTH["n_ds"]  # the expected sum of weights of the Ds+ peak
    with_variances, as_counts = [], []
    for _ in range(N_WEIGHTED_TOYS):
        sumw, sumw2 = fit.weighted_toy(rng, EDGES, TRUTH, _uniform_weights)
        weighted = fit.fit_counts_iminuit(sumw, EDGES, variances=sumw2)
        naive = fit.fit_counts_iminuit(sumw, EDGES)
        assert weighted.converged, weighted.reason
        assert naive.converged, naive.reason
        with_variances.append((weighted.value("n_ds") - truth) / weighted.error("n_ds"))
        as_counts.append((naive.value("n_ds") - truth) / naive.error("n_ds"))
    return np.array(with_variances), np.array(as_counts)


def test_weighted_fit_errors_cover():
    """Weighted toys fitted with their variances: the Ds+ yield's pulls have width 1
    within 0.1 and mean 0 within three errors; fitting the sums of weights as counts
    (what the variances correct) gives errors that are too large, a width off by more
    than 0.1, which this test would see."""
    pulls, naive = _weighted_pulls()
    assert abs(pulls.std(ddof=1) - 1) < 0.1, pulls.std(ddof=1)
    assert abs(pulls.mean()) < 3 / np.sqrt(len(pulls)), pulls.mean()
    assert abs(naive.std(ddof=1) - 1) > 0.1, naive.std(ddof=1)


def test_weight_storage_histograms_with_and_without_weights():
    """fit_mass on hist's Weight storage: unit weights are fitted exactly as counts (the
    same numbers as without variances), weights with their variances."""
    import hist

    rng = np.random.default_rng(21)
    sumw, sumw2 = fit.weighted_toy(rng, EDGES, TRUTH, _uniform_weights)
    counts = fit.toy_counts(rng, EDGES, TRUTH)
    for values, variances in ((counts, counts), (sumw, sumw2)):
        h = hist.Hist(hist.axis.Variable(EDGES, name="mass"), storage=hist.storage.Weight())
        h.view()["value"], h.view()["variance"] = values, variances
        got = fit.fit_mass(h, engine="iminuit").to_dict()
        weighted = variances is not counts
        want = fit.fit_counts_iminuit(values, EDGES, variances=sumw2 if weighted else None)
        got.pop("fit_time_s"), want.to_dict().pop("fit_time_s")
        assert json.dumps(got["params"]) == json.dumps(want.to_dict()["params"])
        assert ("weighted" in got["strategy"]) is weighted


def test_fixed_parameters_are_held_and_bad_ones_are_errors():
    from tau3mu.errors import OptionError

    counts = fit.toy_counts(np.random.default_rng(22), EDGES, TRUTH)
    tails = {"alpha_ds": 1.8, "n_cb_ds": 2.0, "alpha_dplus": 1.7, "n_cb_dplus": 4.0}
    result = fit.fit_counts_iminuit(counts, EDGES, fixed=tails)
    assert result.converged, result.reason
    for name, value in tails.items():
        assert result.is_fixed(name), name
        assert result.value(name) == value, name
    assert not result.is_fixed("n_ds")
    for bad in ({"alpha": 1.0}, {"alpha_ds": 11.0}, {"n_cb_ds": float("nan")}):
        with pytest.raises(OptionError, match="fixed"):
            fit.fit_counts_iminuit(counts, EDGES, fixed=bad)
    with pytest.raises(OptionError, match="background"):
        fit.fit_counts_iminuit(counts, EDGES, background="poly3")
    with pytest.raises(OptionError, match="engine"):
        fit.fit_spectrum(counts, EDGES, engine="roofit")


def test_tail_parameters_of_the_peaks_measured():
    """The tails of a simulation fit pass as ``fixed`` to the data fit; a peak absent
    from the simulation gives none."""
    rng = np.random.default_rng(23)
    simulation = fit.fit_counts_iminuit(fit.toy_counts(rng, EDGES, TRUTH), EDGES)
    tails = fit.tail_parameters(simulation)
    assert set(tails) == set(fit.TAILS)
    assert tails["alpha_ds"] == simulation.value("alpha_ds")
    data = fit.fit_counts_iminuit(fit.toy_counts(rng, EDGES, TRUTH), EDGES, fixed=tails)
    assert all(data.is_fixed(name) for name in tails)
    assert all(data.value(name) == tails[name] for name in tails)
    ds_only = {**TRUTH, "n_dplus": 0.0}
    alone = fit.fit_counts_iminuit(fit.toy_counts(rng, EDGES, ds_only), EDGES)
    assert alone.is_fixed("n_dplus") or alone.value("n_dplus") < 3 * alone.error("n_dplus")
    assert set(fit.tail_parameters(alone)) == {"alpha_ds", "n_cb_ds"}
    failed = fit.fit_counts_iminuit(np.zeros(len(EDGES) - 1), EDGES)
    with pytest.raises(ValueError, match="converge"):
        fit.tail_parameters(failed)


def test_poly2_background_model_and_fit():
    """The Bernstein background's CDF runs from 0 to 1, monotonically; toys drawn with it
    are fitted back within errors, and the exponential truth is fitted by it too."""
    from tau3mu.fit.model import background_cdf

    shape = {"bkg_b1": 0.6, "bkg_b2": 0.4}
    x = np.linspace(EDGES[0], EDGES[-1], 101)
    cdf = background_cdf(x, shape, EDGES[0], EDGES[-1])
    assert cdf[0] == 0
    assert cdf[-1] == pytest.approx(1, abs=1e-15)
    assert np.all(np.diff(cdf) > 0)
    rng = np.random.default_rng(24)
    truth = {**{k: v for k, v in TRUTH.items() if k != "slope"}, **shape}
    for generated in (truth, TRUTH):
        result = fit.fit_counts_iminuit(
            fit.toy_counts(rng, EDGES, generated), EDGES, background="poly2"
        )
        assert result.converged, result.reason
        assert "slope" not in result.params
        assert "bkg_b1" in result.params
        for name in ("n_ds", "n_dplus"):
            assert abs(result.value(name) - generated[name]) < 3 * result.error(name), name


ENGINES_ON_THE_NEW_API = """
import json, sys
import numpy as np
from tau3mu import fit
truth = json.loads(sys.argv[1])
edges = np.linspace(1.65, 2.01, 63)
rng = np.random.default_rng(6)
tails = {"alpha_ds": 1.8, "n_cb_ds": 2.5}
out = []
for case in ("weighted", "poly2", "weighted poly2 fixed"):
    if case.startswith("weighted"):
        sumw, sumw2 = fit.weighted_toy(rng, edges, truth, lambda r, n: r.uniform(0.0, 1.0, n))
    else:
        sumw, sumw2 = fit.toy_counts(rng, edges, truth), None
    options = {"variances": sumw2, "background": "poly2" if "poly2" in case else "exponential",
               "fixed": tails if "fixed" in case else None}
    z, m = fit.fit_counts(sumw, edges, **options), fit.fit_counts_iminuit(sumw, edges, **options)
    out.append({"case": case, "zfit": z.to_dict(), "iminuit": m.to_dict()})
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_zfit_and_iminuit_agree_on_weighted_poly2_and_fixed_fits():
    """The fit API's options in both engines, on the same histograms: yields within a
    tenth of an error, errors within 15 %, fixed parameters held in both."""
    proc = subprocess.run(
        [sys.executable, "-c", ENGINES_ON_THE_NEW_API, json.dumps(TRUTH)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    for case in json.loads(line[len("RESULT") :]):
        z, m = case["zfit"], case["iminuit"]
        assert z["result"] == m["result"] == "ok", (case["case"], z, m)
        assert z["params"].keys() == m["params"].keys()
        for name in ("n_ds", "n_dplus", "n_bkg"):
            zp, mp = z["params"][name], m["params"][name]
            assert abs(zp["value"] - mp["value"]) < 0.1 * mp["error"], (case["case"], name)
            assert zp["error"] == pytest.approx(mp["error"], rel=0.15), (case["case"], name)
        if "fixed" in case["case"]:
            assert z["params"]["alpha_ds"]["fixed"]
            assert m["params"]["alpha_ds"]["value"] == 1.8


@pytest.mark.parametrize(
    "command", [["fit", "histograms.pkl"], ["run", "datasets.json", "--out", "out"], ["demo"]]
)
def test_one_fit_engine_option_for_every_command(command):
    """``--fit-engine`` names the engine of every command that fits, defined once
    (:func:`tau3mu.fit.add_fit_engine_option`); ``--engine`` is not a second name."""
    from tau3mu.cli import build_parser

    parser = build_parser()
    assert parser.parse_args([*command, "--fit-engine", "iminuit"]).fit_engine == "iminuit"
    assert parser.parse_args(command).fit_engine == "zfit"
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--engine", "iminuit"])


def test_fit_command_fits_a_weighted_histogram_with_its_variances(tmp_path):
    """``tau3mu fit`` on the histograms.pkl and histograms.root of a run with a weighted
    (simulation) and an unweighted (data) dataset: the weighted one is fitted with its
    variances, the other as counts, from either file."""
    import hist

    from tau3mu.cli import main
    from tau3mu.outputs import write_histograms

    rng = np.random.default_rng(25)
    sumw, sumw2 = fit.weighted_toy(rng, EDGES, TRUTH, _uniform_weights)
    counts = fit.toy_counts(rng, EDGES, TRUTH)
    h = hist.Hist(
        hist.axis.StrCategory(["sim", "data"], name="dataset"),
        hist.axis.StrCategory(["nominal"], name="systematic"),
        hist.axis.Variable(EDGES, name="mass"),
        storage=hist.storage.Weight(),
    )
    h.view()["value"][0, 0], h.view()["variance"][0, 0] = sumw, sumw2
    h.view()["value"][1, 0], h.view()["variance"][1, 0] = counts, counts
    written = write_histograms(tmp_path, {"h_mass": h}, simulation={"sim"})
    want = {
        "sim": fit.fit_counts_iminuit(sumw, EDGES, variances=sumw2),
        "data": fit.fit_counts_iminuit(counts, EDGES),
    }
    for kind, path in written.items():
        out = tmp_path / kind
        assert main(["fit", str(path), "--fit-engine", "iminuit", "--out", str(out)]) == 0
        got = json.loads((out / "fit.json").read_text())
        for dataset, result in want.items():
            for name in fit.YIELDS:
                assert got[dataset]["params"][name]["value"] == pytest.approx(
                    result.value(name), rel=1e-6
                ), (kind, dataset, name)
        assert "weighted" in got["sim"]["strategy"]
        assert "weighted" not in got["data"]["strategy"]
