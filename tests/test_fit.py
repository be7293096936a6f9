"""The mass fit: closure on toys, agreement of the zfit and iminuit engines, honest failures."""

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

SPECTRA = {
    "spec": {},
    "low_stats": {"n_ds": 1000.0, "n_dplus": 350.0, "n_bkg": 13000.0},
    "flat_background": {"slope": 0.0},
    "steep_background": {"slope": -6.0},
    "no_dplus": {"n_dplus": 0.0},
}


#: toys per spectrum: the mean pull is known to ~0.1, its spread to ~0.07
N_TOYS = 100
#: spectra whose yield pulls are biased beyond the toys' statistical error: on 200 toys
#: with these seeds, +0.25 +- 0.06 (spec, Ds), +0.17 +- 0.06 (low_stats, D+) and
#: +0.38 +- 0.08 (no_dplus, Ds); the other two spectra and yields are +0.0-0.2. The
#: toys are drawn from the fitted model itself, so this is the estimator's own bias; its
#: cause (a small-sample bias with the tail onsets floating?) is not established
BIASED = {
    "spec": "Ds+ pull +0.36 +- 0.09 on these 100 toys",
    "low_stats": "D+ pull +0.29 +- 0.09 on these 100 toys",
    "no_dplus": "Ds+ pull +0.43 +- 0.09 on these 100 toys",
}


@functools.cache
def _toy_pulls(spectrum: str) -> np.ndarray:
    """Pulls of (n_ds, n_dplus) over N_TOYS toys of ``spectrum``, fitted with iminuit; the
    toys with a yield held at its bound (no error) dropped. Every fit must converge."""
    rng = np.random.default_rng(zlib.crc32(spectrum.encode()))  # stable across processes
    truth = {**TRUTH, **SPECTRA[spectrum]}
    pulls = []
    for _ in range(N_TOYS):
        result = fit.fit_counts_iminuit(fit.toy_counts(rng, EDGES, truth), EDGES)
        assert result.converged, result.reason
        pulls.append([(result.value(n) - truth[n]) / result.error(n) for n in ("n_ds", "n_dplus")])
    pulls = np.array(pulls)
    # a yield held at its bound (peak judged absent) has no error: allowed rarely where
    # the peak is there, and the right answer where it is not
    present = [True, truth["n_dplus"] > 0]
    held = np.isnan(pulls[:, present]).any(axis=1)
    assert held.sum() <= 0.02 * N_TOYS, held.sum()
    # at the D+ yield's lower bound (no D+ generated) the pull is one-sided: Ds+ only
    return pulls[~held][:, : 2 if present[1] else 1]


@pytest.mark.parametrize("spectrum", list(SPECTRA))
def test_toy_fits_converge_with_unit_pull_spread(spectrum):
    """Every toy converges; the yields' pulls spread by 1 within three times the error of a
    standard deviation, std/sqrt(2(n-1))."""
    for column in _toy_pulls(spectrum).T:
        std = column.std(ddof=1)
        assert abs(std - 1) < 3 / np.sqrt(2 * (len(column) - 1)), std


@pytest.mark.parametrize(
    "spectrum",
    [
        pytest.param(
            s, marks=pytest.mark.xfail(raises=AssertionError, reason=BIASED[s], strict=True)
        )
        if s in BIASED
        else s
        for s in SPECTRA
    ],
)
def test_toy_yields_are_unbiased(spectrum):
    """The yields' pulls have mean 0 within three times its error, std/sqrt(n)."""
    for column in _toy_pulls(spectrum).T:
        mean, error = column.mean(), column.std(ddof=1) / np.sqrt(len(column))
        assert abs(mean) < 3 * error, (mean, error)


def test_failed_fit_is_reported_as_failed_without_numbers(tmp_path):
    counts = np.zeros(len(EDGES) - 1)
    counts[10] = 3
    for result in (fit.fit_counts_iminuit(counts, EDGES), fit.fit_counts(counts, EDGES)):
        assert not result.converged
        assert "entries" in result.reason
        out = result.to_dict()
        assert out["result"] == "failed"
        assert "params" not in out
    result.to_json(tmp_path / "fit.json")
    assert json.loads((tmp_path / "fit.json").read_text())["result"] == "failed"


def test_result_json_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    result = fit.fit_counts_iminuit(fit.toy_counts(rng, EDGES, TRUTH), EDGES)
    result.to_json(tmp_path / "fit.json")
    again = fit.load_result(tmp_path / "fit.json")
    assert json.dumps(again.params) == json.dumps(result.params)  # NaN-aware
    assert again.converged
    assert again.ndf == result.ndf
    assert set(result.correlation["n_ds"]) >= {"n_ds", "n_dplus", "n_bkg"}
    assert result.correlation["n_ds"]["n_ds"] == pytest.approx(1.0)


@pytest.mark.parametrize(("beta", "m"), [(0.3, 1.2), (1.8, 3.0), (2.5, 25.0), (9.9, 1.01)])
def test_crystal_ball_cdf_is_scipys_and_numba_stats(beta, m):
    """The closed form against two independent implementations, tail and core."""
    from numba_stats import crystalball as numba_cb
    from scipy.stats import crystalball as scipy_cb

    from tau3mu.crystalball import crystal_ball_cdf

    x = np.linspace(EDGES[0] - 0.1, EDGES[-1] + 0.1, 401)
    ours = crystal_ball_cdf(x, beta, m, 1.97, 0.012)
    np.testing.assert_allclose(ours, scipy_cb.cdf(x, beta, m, loc=1.97, scale=0.012), atol=1e-13)
    np.testing.assert_allclose(ours, numba_cb.cdf(x, beta, m, 1.97, 0.012), atol=1e-13)
    z = (x - 1.97) / 0.012
    assert (z < -beta).any()
    assert (z > -beta).any()  # both the tail and the core are compared
    assert np.all(np.diff(ours) >= 0)
    assert 0 <= ours[0] < ours[-1] <= 1


PLOT_ALONE = """
import sys
import numpy as np
from tau3mu import fit
from tau3mu.fitplot import plot_fit
edges = np.linspace(1.65, 2.01, 63)
result = fit.FitResult.from_dict(__import__("json").loads(sys.argv[1]))
plot_fit(np.ones(62), edges, result, sys.argv[2], lumi=4.8)
print("numba_stats" in sys.modules, "zfit" in sys.modules)
"""


def test_plotting_a_fit_imports_neither_numba_stats_nor_zfit(tmp_path):
    """The figure of ``tau3mu fit`` / ``tau3mu run`` costs no compilation (~4-5 s)."""
    counts = fit.toy_counts(np.random.default_rng(4), EDGES, TRUTH)
    result = fit.fit_counts_iminuit(counts, EDGES)
    done = subprocess.run(
        [sys.executable, "-c", PLOT_ALONE, json.dumps(result.to_dict()), str(tmp_path / "f")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["False", "False"]


def test_plot_files(tmp_path):
    from tau3mu.fitplot import plot_fit

    rng = np.random.default_rng(4)
    counts = fit.toy_counts(rng, EDGES, TRUTH)
    written = plot_fit(
        counts, EDGES, fit.fit_counts_iminuit(counts, EDGES), tmp_path / "mass_fit", lumi=4.8
    )
    assert {p.suffix for p in written} == {".png", ".pdf"}
    assert all(p.stat().st_size > 10_000 for p in written)


def test_plot_is_cropped_to_its_artists_with_the_pad(tmp_path):
    """Nothing is cut off and no wide margin is left: on every side of the PNG the first
    drawn pixel lies about matplotlib's ``savefig.pad_inches`` from the edge."""
    import matplotlib.image
    import matplotlib.pyplot as plt

    from tau3mu.fitplot import plot_fit

    counts = fit.toy_counts(np.random.default_rng(4), EDGES, TRUTH)
    png = plot_fit(counts, EDGES, fit.fit_counts_iminuit(counts, EDGES), tmp_path / "m")[0]
    drawn = matplotlib.image.imread(png)[..., :3].min(axis=2) < 0.9
    rows, cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    margins = [rows[0], drawn.shape[0] - 1 - rows[-1], cols[0], drawn.shape[1] - 1 - cols[-1]]
    pad_px = plt.rcParams["savefig.pad_inches"] * 110
    assert all(0.5 * pad_px <= m <= 1.5 * pad_px for m in margins), (margins, pad_px)


ZFIT_VS_IMINUIT = """
import json, sys
import numpy as np
from tau3mu import fit
truths = json.loads(sys.argv[1])
edges = np.linspace(1.65, 2.01, 63)
rng = np.random.default_rng(5)
out = []
for truth in truths:
    counts = fit.toy_counts(rng, edges, truth)
    z, m = fit.fit_counts(counts, edges), fit.fit_counts_iminuit(counts, edges)
    out.append({"zfit": z.to_dict(), "iminuit": m.to_dict()})
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_zfit_and_iminuit_agree_within_a_tenth_of_a_sigma():
    """Independent engines on the same histograms; the zfit loss is compiled once and reused.

    zfit runs in its own process: TensorFlow and numba/ROOT in one process are not friends.
    The hard spectra need the shared remedies.
    """
    truths = [
        TRUTH,
        *({**TRUTH, **SPECTRA[s]} for s in ("low_stats", "steep_background", "no_dplus")),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", ZFIT_VS_IMINUIT, json.dumps(truths)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    results = json.loads(line[len("RESULT") :])
    for truth, pair in zip(truths, results, strict=True):
        z, m = pair["zfit"], pair["iminuit"]
        assert z["result"] == m["result"] == "ok", (z, m)
        for name in ("n_ds", "n_dplus", "n_bkg"):
            zp, mp = z["params"][name], m["params"][name]
            if np.isnan(zp["error"]) or np.isnan(mp["error"]):  # held as absent
                assert zp["value"] == mp["value"] == 1.0, name
                continue
            if truth[name] == 0:
                # a component that is not there has no mass, width or tail to find: the
                # engines may stop at different points of that flat valley, both with a
                # yield compatible with none
                assert zp["value"] < 2 * zp["error"], (name, zp)
                assert mp["value"] < 2 * mp["error"], (name, mp)
                continue
            assert abs(zp["value"] - mp["value"]) < 0.1 * mp["error"], name
            assert zp["error"] == pytest.approx(mp["error"], rel=0.15), name


@pytest.mark.root
@pytest.mark.slow
def test_roofit_and_iminuit_agree_within_a_tenth_of_a_sigma():
    """RooFit (tests/roofit_reference.py) and the iminuit engine on the same toy histograms.

    RooFit runs in its own process, as zfit does above: ROOT is imported only there.
    Its fit integrates the model over each bin (IntegrateBins), as our engines do.
    """
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("ROOT")
    reference = Path(__file__).with_name("roofit_reference.py")
    histograms = []
    for seed in range(2):
        rng = np.random.default_rng(100 + seed)
        for spectrum in ("spec", "low_stats", "steep_background"):
            histograms.append(fit.toy_counts(rng, EDGES, {**TRUTH, **SPECTRA[spectrum]}))
    request = {"edges": EDGES.tolist(), "histograms": [h.tolist() for h in histograms]}
    proc = subprocess.run(
        [sys.executable, str(reference)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    for counts, roofit in zip(histograms, json.loads(line[len("RESULT") :]), strict=True):
        # Minuit2 status 0, or 1 (covariance made positive definite during Migrad, then
        # recomputed by Hesse); a full, accurate covariance from Hesse either way
        assert roofit["status"] in (0, 1), roofit["status_history"]
        assert roofit["cov_quality"] == 3, roofit["status_history"]
        ours = fit.fit_counts_iminuit(counts, EDGES)
        assert ours.converged, ours.reason
        for name in ("n_ds", "n_dplus", "n_bkg"):
            rp, error = roofit["params"][name], ours.error(name)
            assert abs(rp["value"] - ours.value(name)) < 0.1 * error, (name, rp, error)
            assert rp["error"] == pytest.approx(error, rel=0.15), (name, rp, error)


def test_fit_recovers_the_generated_yields(tmp_path):
    """On generated ntuples, after the full selection, the fit finds the truth-matched counts."""
    from tau3mu.execution import run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor
    from tau3mu.synth import generate_dataset

    info = generate_dataset(tmp_path, files=1, lumi=0.5, seed=99)
    ((name, spec),) = info["datasets"].items()
    fileset = {
        name: {"files": {spec["rootpath"] + spec["files"]: "Events"}, "metadata": {"type": "data"}}
    }
    out = run_runner(fileset, DsPhiPiProcessor(), chunksize=50_000)
    h = out.hists["h_mass"][{"dataset": name, "systematic": "nominal"}]
    result = fit.fit_counts_iminuit(h.values(), h.axes[0].edges)
    assert result.converged
    truth = out.truth[name]
    for key, param in (("ds", "n_ds"), ("dplus", "n_dplus")):
        assert abs(result.value(param) - truth[key]) < 3 * result.error(param), (
            key,
            result.value(param),
            truth[key],
        )


CRYSTAL_BALL_FALL_BACK = """
import numpy as np
from tau3mu.fit.engine_zfit import import_zfit
from tau3mu.fit.zfit_pdfs import crystal_ball_pdf, fast_crystal_ball_available
zfit = import_zfit()
edges = np.linspace(1.65, 2.01, 63)
obs = zfit.Space("mass", binning=zfit.binned.VariableBinning(edges, name="mass"))
counts = []
for fast in (True, False):
    params = dict(mu=1.968, sigma=0.012, alpha=1.3, n=3.0)
    pdf = crystal_ball_pdf(obs, fast=fast, extended=5000.0, name=f"cb{fast}", **params)
    counts.append(np.asarray(pdf.counts()))
print(fast_crystal_ball_available(), float(np.max(np.abs(counts[0] / counts[1] - 1))))
"""


@pytest.mark.slow
def test_zfit_crystal_ball_fall_back_gives_the_same_bin_counts():
    """The fast binned Crystal Ball (zfit's analytic integral, outside zfit's documented
    API) and its fall-back on zfit's public ``BinnedFromUnbinnedPDF`` agree bin by bin."""
    done = subprocess.run(
        [sys.executable, "-c", CRYSTAL_BALL_FALL_BACK],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    available, difference = done.stdout.split()[-2:]
    assert available == "True"  # so that the comparison above used the fast PDF
    assert float(difference) < 1e-6  # relative, per bin (the fall-back integrates numerically)


def test_iminuit_engine_cost_is_iminuits_bit_for_bit():
    """The iminuit engine's numpy cost equals iminuit's own ``ExtendedBinnedNLL`` (which
    iminuit evaluates with numba) exactly, unweighted and weighted, at random points."""
    from iminuit.cost import ExtendedBinnedNLL

    from tau3mu.fit.engine_iminuit import poisson_cost

    rng = np.random.default_rng(26)
    names = fit.PARAMETER_ORDER

    def model(x, *values):
        return fit.model_cdf(x, dict(zip(names, values, strict=True)), EDGES[0], EDGES[-1])

    sumw, sumw2 = fit.weighted_toy(rng, EDGES, TRUTH, lambda r, n: r.uniform(0.0, 1.0, n))
    counts = fit.toy_counts(rng, EDGES, TRUTH)
    pairs = [
        (ExtendedBinnedNLL(counts, EDGES, model), poisson_cost(model, EDGES, counts)),
        (
            ExtendedBinnedNLL(np.stack([sumw, sumw2], axis=-1), EDGES, model),
            poisson_cost(model, EDGES, sumw, sumw2),
        ),
    ]
    for _ in range(300):
        values = [
            TRUTH[n] + rng.normal(0, 0.003)
            if n.startswith("mean")
            else TRUTH[n] * rng.uniform(0.7, 1.3)
            for n in names
        ]
        for theirs, ours in pairs:
            assert ours(*values) == theirs(*values)


COLD_IMINUIT_FIT = """
import sys
from tau3mu.cli import main
code = main(sys.argv[1:])
print(code, *(name in sys.modules for name in ("numba", "zfit", "tensorflow", "coffea", "dask")))
"""


def test_cold_iminuit_fit_imports_no_numba_zfit_or_dask(tmp_path):
    """``tau3mu fit --fit-engine iminuit`` loads what a fit and its figure need, not the
    JIT compiler, TensorFlow or the analysis's execution stack."""
    import hist

    from tau3mu.outputs import write_histograms

    h = hist.Hist(
        hist.axis.StrCategory(["data"], name="dataset"),
        hist.axis.StrCategory(["nominal"], name="systematic"),
        hist.axis.Variable(EDGES, name="mass"),
        storage=hist.storage.Weight(),
    )
    counts = fit.toy_counts(np.random.default_rng(27), EDGES, TRUTH)
    h.view()["value"][0, 0] = h.view()["variance"][0, 0] = counts
    written = write_histograms(tmp_path, {"h_mass": h})
    args = ["fit", str(written["pickle"]), "--fit-engine", "iminuit", "--out", str(tmp_path / "o")]
    done = subprocess.run(
        [sys.executable, "-c", COLD_IMINUIT_FIT, *args], capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[-6:] == ["0", "False", "False", "False", "False", "False"]
