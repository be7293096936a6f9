"""The normalisation (``docs/physics.md``, "Normalisation"): which datasets form an era,
the weighted fits, sWeights, R's systematics, ``tau3mu normalise`` and its errors, and
the ratio against RooFit. Toy closure: test_normalisation_toys.py."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tau3mu.cli import main
from tau3mu.errors import OptionError
from tau3mu.normalisation import (
    NormalisationInputError,
    era_groups,
    fit_weighted,
    measure_ratio,
    signal_sweights,
    sweighted,
)
from tau3mu.normalisation.era import measure_era, summed
from tau3mu.normalisation.massfit import expected_counts
from tau3mu.normalisation.toys import ToyTruth, toy_histograms, toy_report

SIM, DATA = "mc_2017", "data_2017B"


@pytest.fixture(scope="module")
def toy():
    return toy_histograms(np.random.default_rng(17), ToyTruth())


def test_era_groups_and_what_cannot_be_normalised():
    report = toy_report()["datasets"]
    assert era_groups(report) == {"2017": {"data": [DATA], "simulation": [SIM]}}
    with pytest.raises(NormalisationInputError, match="no simulation dataset"):
        era_groups({DATA: report[DATA]})
    with pytest.raises(NormalisationInputError, match=r"'2018'.*no data dataset"):
        era_groups({**report, "mc_2018": {**report[SIM], "era": "2018"}})


def test_sweights_sum_to_one_over_components_and_give_the_fitted_yield(toy):
    values, variances = summed(toy["h_mass"], [DATA])
    edges = toy["h_mass"].axes["mass"].edges
    result = fit_weighted(values, variances, edges)
    params = {name: p["value"] for name, p in result.params.items()}
    components = expected_counts(edges, params)
    weights = {name: signal_sweights(values, components, name) for name in components}
    # exact at the likelihood's maximum; Minuit stops within its tolerance of it
    np.testing.assert_allclose(sum(weights.values()), 1.0, atol=1e-3)
    assert float(values @ weights["n_ds"]) == pytest.approx(result.value("n_ds"), rel=2e-3)


def test_sweighted_control_variable_is_the_true_ds_distribution(toy):
    """The toy's Ds+ muon pT is 3 GeV + an exponential of mean 4 GeV, the background's of
    mean 2 GeV: the sWeighted data histogram follows the Ds+ one (chi2 per bin ~ 1)."""
    truth = ToyTruth()
    h = toy["h_mu_pt"]
    edges = toy["h_mass"].axes["mass"].edges
    mass = summed(toy["h_mass"], [DATA])
    result = fit_weighted(*mass, edges)
    params = {name: p["value"] for name, p in result.params.items()}
    weights = signal_sweights(mass[0], expected_counts(edges, params))
    values, variances = sweighted(*summed(h, [DATA]), weights)
    pt_edges = h.axes["mu_pt"].edges
    cdf = 1 - np.exp(-np.clip(pt_edges - 3.0, 0, None) / 4.0)
    expected = values.sum() * np.diff(cdf)  # the shape; the yield is the fit's
    used = expected > 20  # where the sWeighted bins' variances are a Gaussian error
    chi2 = np.sum((values[used] - expected[used]) ** 2 / variances[used])
    ndf = used.sum() - 1
    assert chi2 < ndf + 3 * np.sqrt(2 * ndf), (chi2, ndf)
    assert values.sum() == pytest.approx(result.value("n_ds"), rel=0.01)
    assert abs(result.value("n_ds") - truth.data_ds) < 3 * result.error("n_ds")


def test_every_systematic_is_a_refit(toy):
    """Each systematic of R comes from refits; the scale-factor one moves the simulation
    weights by sf_variation, so R by that fraction."""
    truth = ToyTruth()
    edges = toy["h_mass"].axes["mass"].edges
    sim = {s: summed(toy["h_mass"], [SIM], s) for s in ("nominal", "sf_up", "sf_down")}
    measured = measure_ratio(summed(toy["h_mass"], [DATA]), sim, edges)
    assert not measured.failed, measured.failed
    assert set(measured.systematics) == {"scale_factors", "tails", "background", "mass_window"}
    assert all(0 < v < 0.2 * measured.ratio for v in measured.systematics.values())
    up = measured.variations["sf_up"]
    assert measured.ratio / up - 1 == pytest.approx(truth.sf_variation, abs=0.005)
    assert measured.syst_error == pytest.approx(
        np.sqrt(sum(v**2 for v in measured.systematics.values()))
    )


def test_tails_systematic_floats_the_exponents():
    """Toys with a true Crystal Ball exponent n = 1.5: the simulation fit with n held at 3
    misses the Ds+ yield, with n floating (``free``) it finds it and n; the tails
    systematic holds the variations with n floating in simulation, and no others."""
    truth = ToyTruth(n_cb=1.5)
    toy = toy_histograms(np.random.default_rng(29), truth)
    edges = toy["h_mass"].axes["mass"].edges
    sim = {s: summed(toy["h_mass"], [SIM], s) for s in ("nominal", "sf_up", "sf_down")}
    generated = truth.sim_events_ds * truth.sim_weight
    held = fit_weighted(*sim["nominal"], edges)
    floating = fit_weighted(*sim["nominal"], edges, free=("n_cb_ds", "n_cb_dplus"))
    assert held.is_fixed("n_cb_ds")
    assert not floating.is_fixed("n_cb_ds")
    assert abs(held.value("n_ds") - generated) > 3 * held.error("n_ds")
    assert abs(floating.value("n_ds") - generated) < 2 * floating.error("n_ds")
    assert abs(floating.value("n_cb_ds") - 1.5) < 3 * floating.error("n_cb_ds")
    measured = measure_ratio(summed(toy["h_mass"], [DATA]), sim, edges)
    assert not measured.failed, measured.failed
    tails = ("tails_floating", "alpha_ds_up", "alpha_ds_down", "n_floating", "n_cb_ds_up")
    shifts = {
        name: abs(measured.variations[name] - measured.ratio) for name in (*tails, "n_cb_ds_down")
    }
    assert measured.systematics["tails"] == max(shifts.values())
    assert shifts["n_cb_ds_up"] > 0
    assert shifts["n_cb_ds_down"] > 0
    with pytest.raises(OptionError, match="alpha_ds not held by default"):
        fit_weighted(*sim["nominal"], edges, free=("alpha_ds",))
    with pytest.raises(OptionError, match="n_cb_ds also given as fixed"):
        fit_weighted(*sim["nominal"], edges, free=("n_cb_ds",), fixed={"n_cb_ds": 2.0})


FREE_TAILS_BOTH_ENGINES = """
import json
import numpy as np
from tau3mu.fit import fit_spectrum
from tau3mu.normalisation.era import summed
from tau3mu.normalisation.toys import ToyTruth, toy_histograms
toy = toy_histograms(np.random.default_rng(29), ToyTruth(n_cb=1.5))
values, variances = summed(toy["h_mass"], ["mc_2017"])
edges = toy["h_mass"].axes["mass"].edges
out = {engine: fit_spectrum(values, edges, engine=engine, variances=variances,
                            free=("n_cb_ds",)).to_dict() for engine in ("zfit", "iminuit")}
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_both_engines_float_the_exponent_alike():
    """``free`` in the zfit engine (its own process, as every zfit fit in tests) and the
    iminuit engine on the same weighted histogram: n_cb_ds floats in both, n_cb_dplus
    stays held, the Ds+ yield and n agree within a tenth of their errors."""
    proc = subprocess.run(
        [sys.executable, "-c", FREE_TAILS_BOTH_ENGINES], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    fits = json.loads(line[len("RESULT") :])
    for fit in fits.values():
        assert fit["result"] == "ok", fit
        assert not fit["params"]["n_cb_ds"]["fixed"]
        assert fit["params"]["n_cb_dplus"]["fixed"]
    for name in ("n_ds", "n_cb_ds"):
        z, m = fits["zfit"]["params"][name], fits["iminuit"]["params"][name]
        assert abs(z["value"] - m["value"]) < 0.1 * m["error"], (name, z, m)


def test_f_b_needs_both_origins_in_simulation():
    """Simulation without Ds+ from b hadrons has no template for them: R is measured, f_B
    not, with the reason."""
    hists = toy_histograms(np.random.default_rng(3), ToyTruth(simulation_fraction_from_b=0.0))
    era = measure_era(hists, [DATA], [SIM], systematics=False)
    assert era["ratio"] is not None
    assert not era["fraction"].converged
    assert "none from b hadrons" in era["fraction"].reason


def _write_run(folder: Path, hists: dict, report: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "histograms.pkl").open("wb") as handle:
        pickle.dump(hists, handle)
    (folder / "report.json").write_text(json.dumps(report))
    return folder


@pytest.mark.slow
def test_normalise_writes_the_result_and_figures(tmp_path, toy, capsys):
    truth = ToyTruth()
    run = _write_run(tmp_path / "run", toy, toy_report(truth))
    # the iminuit engine: zfit would load TensorFlow into this process, after which importing
    # the XRootD client (any later tau3mu run in it) crashes
    assert main(["normalise", str(run), "--fit-engine", "iminuit"]) == 0
    assert "2017: R = " in capsys.readouterr().out
    result = json.loads((run / "normalisation.json").read_text())
    era = result["eras"]["2017"]
    assert era["status"] == "ok"
    assert abs(era["R"] - truth.ratio) < 4 * np.hypot(era["stat_error"], era["syst_error"])
    assert abs(era["f_B"]["value"] - truth.fraction_from_b) < 4 * era["f_B"]["error"]
    assert era["lumi_fb"] == 4.8
    assert era["weights"][SIM]["scale"] == truth.sim_weight
    assert era["inputs"][SIM]["ngen"] == 1e6
    assert era["n_ds_data"]["error"] > 0
    assert era["n_ds_simulation"]["error"] > 0
    for stem in ("ratio_per_era", "ct_fit_2017", "h_mu_pt_2017", "h_ct_2017"):
        assert f"normalisation/{stem}.png" in result["figures"]
        assert (run / "normalisation" / f"{stem}.png").stat().st_size > 10_000


def test_normalise_says_what_it_cannot_do(tmp_path, toy, capsys):
    report = toy_report()
    data_only = {"datasets": {DATA: report["datasets"][DATA]}}
    cases = {
        "data_only": (data_only, "no simulation dataset"),
        "no_data": (
            {**report, "datasets": {SIM: report["datasets"][SIM]}},
            "simulation era '2017' (mc_2017) has no data dataset",
        ),
    }
    for name, (content, message) in cases.items():
        run = _write_run(tmp_path / name, toy, content)
        assert main(["normalise", str(run), "--no-figures"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert message in err, err
        assert not (run / "normalisation.json").exists()
    assert main(["normalise", str(tmp_path / "absent")]) == 2
    assert "histograms.pkl: not found" in capsys.readouterr().err


@pytest.mark.root
@pytest.mark.slow
def test_roofit_gives_the_same_ratio(toy):
    """R from RooFit (tests/roofit_reference.py: SumW2Error for the weighted simulation,
    IntegrateBins) on the same histograms, within 0.3 of R's statistical error; the same
    configuration on our side: tail exponents fixed at 3, the onsets from simulation."""
    pytest.importorskip("ROOT")
    edges = toy["h_mass"].axes["mass"].edges
    data = summed(toy["h_mass"], [DATA])
    sim = summed(toy["h_mass"], [SIM])
    request = {
        "edges": edges.tolist(),
        "ratio": {
            "data": data[0].tolist(),
            "simulation": sim[0].tolist(),
            "simulation_variances": sim[1].tolist(),
        },
    }
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("roofit_reference.py"))],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    roofit = json.loads(line[len("RESULT") :])
    for which in ("simulation", "data"):
        assert roofit[which]["status"] in (0, 1), roofit[which]["status_history"]
        assert roofit[which]["cov_quality"] == 3, roofit[which]["status_history"]
    sim_fit = fit_weighted(*sim, edges)
    tails = {name: sim_fit.value(name) for name in ("alpha_ds", "alpha_dplus")}
    data_fit = fit_weighted(*data, edges, fixed=tails)
    ratio = data_fit.value("n_ds") / sim_fit.value("n_ds")
    error = ratio * np.hypot(
        data_fit.error("n_ds") / data_fit.value("n_ds"),
        sim_fit.error("n_ds") / sim_fit.value("n_ds"),
    )
    assert abs(roofit["R"] - ratio) < 0.3 * error, (roofit["R"], ratio, error)
    assert roofit["stat_error"] == pytest.approx(error, rel=0.15)
    assert roofit["simulation"]["params"]["n_ds"]["error"] == pytest.approx(
        sim_fit.error("n_ds"), rel=0.15
    )


def test_fraction_gradient_is_the_template_fits_response(toy):
    """The linearised df_B/dD_x that f_B's sWeight error uses against the template fit's
    own response to each sWeighted bin (finite differences of the fit): the variance it
    gives, sum g_x^2 var_x, within 5 %; bin by bin within 30 % of the largest (a
    least-squares linearisation of a likelihood fit: first order only)."""
    from tau3mu.normalisation.splot import fit_fraction_from_b
    from tau3mu.normalisation.sweight_errors import fraction_gradient

    era = measure_era(toy, [DATA], [SIM], systematics=False)
    (data, variances), prompt, from_b = era["ct"]
    edges = era["ct_edges"]
    fraction = era["fraction"]
    g = fraction_gradient(variances, prompt, from_b, fraction.n_prompt, fraction.n_from_b)
    numeric = np.empty(len(data))
    for x in range(len(data)):
        step = 0.05 * np.sqrt(variances[x])
        shifted = [data.copy(), data.copy()]
        shifted[0][x] += step
        shifted[1][x] -= step
        up, down = (fit_fraction_from_b((d, variances), prompt, from_b, edges) for d in shifted)
        numeric[x] = (up.fraction - down.fraction) / (2 * step)
    assert np.sum(g**2 * variances) == pytest.approx(np.sum(numeric**2 * variances), rel=0.05)
    np.testing.assert_allclose(g, numeric, atol=0.3 * np.abs(numeric).max())


@pytest.mark.slow
def test_run_normalises_generated_data_and_simulation(tmp_path, pog_sf_file, capsys):
    """Generated Run 3 data of 2022C (R = 0.85, f_B = 0.25, through the 2017 scale
    factors) and simulation of 2022, run as a physicist runs them (tau3mu run, weights
    xsec x L / ngen x SFs x w_PU): the run's normalise step writes normalisation.json and
    its figures, names them in report.json and prints R and f_B; R and f_B within 4 of
    their errors of what was generated, every input recorded; tau3mu normalise on the
    saved outputs gives the same numbers; with --no-fit nothing is normalised."""
    common = ["generate", str(tmp_path), "--layout", "run3", "--fb", "0.25", "--jobs", "1"]
    common += ["--muon-sf", str(pog_sf_file)]
    assert main([*common, "--era", "2022C", "--lumi", "0.5", "--files", "2", "--seed", "31",
                 "--efficiency-ratio", "0.85"]) == 0  # fmt: skip
    assert (
        main([*common, "--era", "2022", "--mc", "--events-per-file", "60000", "--seed", "32"]) == 0
    )
    out = tmp_path / "out"
    run = ["run", str(tmp_path / "datasets.json"), "--muon-sf", str(pog_sf_file), "--no-progress"]
    run += ["--pileup", str(tmp_path / "pileup_weights.json"), "--executor", "iterative"]
    capsys.readouterr()
    assert main([*run, "--out", str(out), "--fit-engine", "iminuit"]) == 0
    printed = capsys.readouterr().out
    truth = json.loads((tmp_path / "truth.json").read_text())
    (mc,) = [name for name, t in truth.items() if t["type"] == "mc"]
    result = json.loads((out / "normalisation.json").read_text())
    era = result["eras"]["2022"]
    assert era["status"] == "ok", era["reason"]
    total = np.hypot(era["stat_error"], era["syst_error"])
    assert abs(era["R"] - 0.85) < 4 * total, (era["R"], total)
    assert abs(era["f_B"]["value"] - 0.25) < 4 * era["f_B"]["error"], era["f_B"]
    assert f"2022: R = {era['R']:.3f} +- {era['stat_error']:.3f} (stat)" in printed
    assert f"f_B = {era['f_B']['value']:.3f} +- {era['f_B']['error']:.3f}" in printed
    assert era["lumi_fb"] == 0.5
    assert era["inputs"][mc]["type"] == "mc"
    assert era["weights"][mc]["ngen"] == truth[mc]["ngen"]
    assert era["weights"][mc]["xsec_pb"] == pytest.approx(truth[mc]["xsec"])
    outputs = json.loads((out / "report.json").read_text())["outputs"]
    assert outputs["normalisation"] == str(out / "normalisation.json")
    assert str(out / "normalisation" / "ratio_per_era.png") in outputs["normalisation_figures"]
    assert all(Path(f).is_file() for f in outputs["normalisation_figures"])

    again = tmp_path / "again"
    again.mkdir()
    for name in ("histograms.pkl", "report.json"):
        (again / name).write_bytes((out / name).read_bytes())
    assert main(["normalise", str(again), "--fit-engine", "iminuit", "--no-figures"]) == 0
    saved = json.loads((again / "normalisation.json").read_text())["eras"]["2022"]
    assert (saved["R"], saved["f_B"]["value"]) == (era["R"], era["f_B"]["value"])

    plain = tmp_path / "plain"
    assert main([*run, "--out", str(plain), "--no-fit"]) == 0
    assert "Normalisation" not in capsys.readouterr().out
    assert not (plain / "normalisation.json").exists()
    assert "normalisation" not in json.loads((plain / "report.json").read_text())["outputs"]

    # simulation alone, scaled to a luminosity of its own: fitted, not normalised
    alone = tmp_path / "alone.json"
    spec = json.loads((tmp_path / "datasets.json").read_text())[mc]
    alone.write_text(json.dumps({mc: {**spec, "lumi": 0.5}}))
    run[1] = str(alone)
    assert main([*run, "--out", str(plain), "--fit-engine", "iminuit"]) == 0
    printed = capsys.readouterr()
    assert "note: no normalisation: simulation era '2022'" in printed.err
    assert "Normalisation" not in printed.out
    assert not (plain / "normalisation.json").exists()
    assert "normalisation" not in json.loads((plain / "report.json").read_text())["outputs"]
