"""The commands as users call them, with the default fit engine (zfit): ``tau3mu run``
fits after the numba selection in the same fresh process, ``tau3mu fit`` refits, with
``--minos``. The yields recover the generated truth and equal the iminuit engine's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
YIELDS = ("n_ds", "n_dplus", "n_bkg")


def tau3mu(*args: str) -> subprocess.CompletedProcess[str]:
    """``tau3mu ARGS`` in a fresh process, as a user runs it; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "tau3mu.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def only_fit(folder) -> tuple[str, dict]:
    ((dataset, fit),) = json.loads((folder / "fit.json").read_text()).items()
    return dataset, fit


@pytest.fixture(scope="module")
def zfit_run(tmp_path_factory) -> dict:
    """``tau3mu run`` with its defaults but the iterative executor, on 0.5 fb^-1 of
    generated Run 3 data (~90k events): the fit is zfit's."""
    from tau3mu.synth import generate_dataset

    data = generate_dataset(tmp_path_factory.mktemp("data"), files=1, lumi=0.5, seed=99)
    out = tmp_path_factory.mktemp("zfit-run")
    tau3mu("run", data["datasets_json"], "--out", str(out), "--executor", "iterative")
    report = json.loads((out / "report.json").read_text())
    return {"out": out, "report": report}


def test_run_fits_with_zfit_and_recovers_the_generated_yields(zfit_run):
    dataset, fit = only_fit(zfit_run["out"])
    assert fit["engine"] == "zfit"
    assert fit["result"] == "ok", fit
    truth = zfit_run["report"]["truth"][dataset]
    for key, name in (("ds", "n_ds"), ("dplus", "n_dplus")):
        value, error = fit["params"][name]["value"], fit["params"][name]["error"]
        assert abs(value - truth[key]) < 3 * error, (name, value, error, truth[key])


@pytest.fixture(scope="module")
def iminuit_refit(zfit_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("iminuit-refit")
    tau3mu(
        "fit", str(zfit_run["out"] / "histograms.pkl"), "--fit-engine", "iminuit", "--out", str(out)
    )
    return out


def test_zfit_yields_equal_iminuits_within_a_tenth_of_a_sigma(zfit_run, iminuit_refit):
    _, zfit = only_fit(zfit_run["out"])
    _, iminuit = only_fit(iminuit_refit)
    assert iminuit["engine"] == "iminuit"
    assert iminuit["result"] == "ok", iminuit
    for name in YIELDS:
        ours, theirs = zfit["params"][name], iminuit["params"][name]
        assert abs(ours["value"] - theirs["value"]) < 0.1 * theirs["error"], name
        assert ours["error"] == pytest.approx(theirs["error"], rel=0.15), name


def test_fit_command_minos_with_zfit(zfit_run, tmp_path):
    """``tau3mu fit --minos``: the same minimum as the run's fit, and Minos intervals
    around it that the independent iminuit engine's Minos reproduces. (The profile
    likelihood of a yield is not parabolic where the Crystal Ball tails trade events
    with the background: the intervals may be asymmetric, so they are compared with
    the other engine's, not with the parabolic error.)"""
    pkl = str(zfit_run["out"] / "histograms.pkl")
    tau3mu("fit", pkl, "--minos", "--out", str(tmp_path / "zfit"))
    tau3mu("fit", pkl, "--minos", "--fit-engine", "iminuit", "--out", str(tmp_path / "iminuit"))
    _, minos = only_fit(tmp_path / "zfit")
    _, other = only_fit(tmp_path / "iminuit")
    _, run = only_fit(zfit_run["out"])
    assert minos["engine"] == "zfit"
    assert minos["result"] == "ok", minos
    for name in YIELDS:
        fitted, again, check = minos["params"][name], run["params"][name], other["params"][name]
        assert again["lower"] is None  # the run asks for no Minos intervals (NaN: null)
        assert abs(fitted["value"] - again["value"]) < 0.01 * again["error"], name
        lower, upper, error = fitted["lower"], fitted["upper"], fitted["error"]
        assert lower < 0 < upper, (name, fitted)
        assert 0.5 * error < -lower < 2 * error, (name, fitted)
        assert 0.5 * error < upper < 2 * error, (name, fitted)
        assert lower == pytest.approx(check["lower"], rel=0.1), (name, fitted, check)
        assert upper == pytest.approx(check["upper"], rel=0.1), (name, fitted, check)
