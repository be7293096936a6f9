"""Normalisation of simulation: eras, xsec/ngen in input.json, L from the data of the era,
the pileup weights, and the weights a run applies, checked against independent sums."""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot

from tau3mu.datasets import Dataset, DatasetError, load_datasets, to_fileset
from tau3mu.eras import data_eras_of
from tau3mu.weights import NormalisationError, simulation_scales, weights_report


@pytest.mark.parametrize(
    ("sim", "data", "expected"),
    [
        (
            "2017",
            ["2017B", "2017C", "2018A", "2017", "2017B-v2"],
            ["2017B", "2017C", "2017", "2017B-v2"],
        ),
        ("2017B", ["2017B", "2017C", "2017BC"], ["2017B"]),
        ("2022", ["2022C", "2022F", "2023B", "20221"], ["2022C", "2022F"]),
        ("2022preEE", ["2022C", "2022D", "2022E"], ["2022C", "2022D"]),
        ("2022postEE", ["2022D", "2022E", "2022F", "2022G-v1"], ["2022E", "2022F", "2022G-v1"]),
        ("2023preBPix", ["2023B", "2023C", "2023D"], ["2023B", "2023C"]),
        ("2023postBPix", ["2023C", "2023D"], ["2023D"]),
        ("2018", ["2017B", "2016H"], []),
    ],
)
def test_data_eras_of_a_simulation_era(sim, data, expected):
    assert data_eras_of(sim, data) == expected


def _dataset(name, kind, era, lumi=None, xsec=None, ngen=None):
    return Dataset(
        name=name, files=["/x.root"], treename="Events", era=era, lumi=lumi, type=kind,
        xsec=xsec, ngen=ngen,
    )  # fmt: skip


def test_scale_is_xsec_times_the_lumi_of_the_eras_data_over_ngen():
    datasets = [
        _dataset("B", "data", "2017B", lumi=4.8),
        _dataset("C", "data", "2017C", lumi=9.6),
        _dataset("other year", "data", "2018A", lumi=100.0),
        _dataset("mc", "mc", "2017", xsec=1.25e4, ngen=2.5e6),
        _dataset("mc target", "mc", "2017", lumi=1.0, xsec=3.0, ngen=6.0),
        _dataset("mc postEE", "mc", "2022postEE", xsec=2.0, ngen=8.0),
        _dataset("F", "data", "2022F", lumi=18.0),
        _dataset("D", "data", "2022D", lumi=3.0),
    ]
    scales = simulation_scales(datasets)
    assert list(scales) == ["mc", "mc target", "mc postEE"]
    # by hand: pb x (1000 pb^-1 per fb^-1) x fb^-1 / events
    assert scales["mc"].lumi_fb == 4.8 + 9.6
    assert scales["mc"].scale == pytest.approx(1.25e4 * 1000 * 14.4 / 2.5e6, rel=1e-15)
    assert scales["mc"].lumi_source == "data: B (4.8 fb^-1), C (9.6 fb^-1)"
    assert scales["mc target"].scale == pytest.approx(3.0 * 1000 * 1.0 / 6.0, rel=1e-15)
    assert scales["mc target"].lumi_source == "own lumi"
    assert scales["mc postEE"].scale == pytest.approx(2.0 * 1000 * 18.0 / 8.0, rel=1e-15)
    assert simulation_scales(datasets[:3]) == {}  # data only: nothing to normalise


def test_the_run_default_era_applies_to_datasets_without_one():
    datasets = [
        _dataset("d", "data", None, lumi=2.0),
        _dataset("m", "mc", None, xsec=1.0, ngen=4.0),
    ]
    assert simulation_scales(datasets, default_era="2017B")["m"].scale == 1000 * 2.0 / 4.0


@pytest.mark.parametrize(
    ("datasets", "words"),
    [
        ([_dataset("m", "mc", "2017", ngen=1.0)], ["'m'", "['xsec']"]),
        ([_dataset("m", "mc", "2017")], ["'m'", "['xsec', 'ngen']"]),
        ([_dataset("m", "mc", "2017", xsec=1.0, ngen=1.0)], ["'m'", "no data of its era"]),
        (
            [_dataset("d", "data", "2017B"), _dataset("m", "mc", "2017", xsec=1.0, ngen=1.0)],
            ["'m'", "['d']", "no 'lumi'"],
        ),
        ([_dataset("m", "mc", None, xsec=1.0, ngen=1.0)], ["'m'", "no 'era'"]),
    ],
)
def test_what_cannot_be_normalised_is_named(datasets, words):
    with pytest.raises(NormalisationError) as err:
        simulation_scales(datasets)
    assert all(word in str(err.value) for word in words), str(err.value)


def test_xsec_and_ngen_in_the_original_input_format(tmp_path):
    spec = {"rootpath": str(tmp_path), "files": "a.root", "treename": "Events", "era": "2022"}
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"mc": {**spec, "type": "mc", "xsec": 3, "ngen": 1e6}}))
    (d,) = load_datasets(path)
    assert (d.xsec, d.ngen) == (3.0, 1e6)
    assert to_fileset([d])["mc"]["metadata"] | {} == {
        "type": "mc", "era": "2022", "lumi": None, "is_mc": True, "xsec": 3.0, "ngen": 1e6,
    }  # fmt: skip
    for bad in (0, -1.0, "3", True, float("nan")):
        path.write_text(json.dumps({"mc": {**spec, "type": "mc", "xsec": bad, "ngen": 1}}))
        with pytest.raises(DatasetError, match="'xsec' must be"):
            load_datasets(path)


def test_run_refuses_simulation_without_xsec_before_any_work(tmp_path, capsys):
    """exit 2 and one line naming the dataset and the keys; no file opened."""
    from tau3mu.cli import main

    spec = {"rootpath": str(tmp_path), "files": "never.root", "treename": "Events"}
    datasets = tmp_path / "input.json"
    content = {
        "d": {**spec, "era": "2022C", "lumi": 1.0},
        "m": {**spec, "era": "2022", "type": "mc"},
    }
    datasets.write_text(json.dumps(content))
    argv = ["run", str(datasets), "--out", str(tmp_path / "out"), "--no-muon-sf"]
    code = main([*argv, "--executor", "iterative", "--no-progress"])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "'m'" in lines[0]
    assert "['xsec', 'ngen']" in lines[0]
    assert "never.root" not in lines[0]
    assert not (tmp_path / "out").exists()


# -- pileup weights -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pileup_file(tmp_path_factory):
    from tau3mu.synth.pileup import write_pileup_weights

    return write_pileup_weights(tmp_path_factory.mktemp("pu") / "pu.json", "run3")


def test_pileup_weights_are_the_ratio_of_the_profiles(pileup_file):
    """Against scipy directly: data Gamma over the Run 3 simulation's Gamma, per bin."""
    from scipy import stats

    from tau3mu.corrections import PileupWeights
    from tau3mu.synth.pileup import DATA_MEAN, DATA_SHAPE, SIM_MEAN

    weights = PileupWeights(pileup_file)
    values = np.array([9.5, 12.2, 29.9, 30.0, 47.5, 60.1])
    k = np.floor(values)
    data = stats.gamma(DATA_SHAPE, scale=DATA_MEAN / DATA_SHAPE)
    sim = stats.gamma(SIM_MEAN)
    expected = (data.cdf(k + 1) - data.cdf(k)) / (sim.cdf(k + 1) - sim.cdf(k))
    np.testing.assert_allclose(weights.evaluate(values), expected, rtol=1e-9)
    # where simulation has no events (below 1e-12 per bin), and beyond the range
    assert sim.cdf(1.0) < 1e-12
    np.testing.assert_array_equal(weights.evaluate(np.array([0.5, 99.9, 250.0])), 0.0)
    # averaged over simulation's profile, 1: the weights change shapes, not yields
    draws = np.random.default_rng(3).gamma(SIM_MEAN, 1.0, 400_000)
    assert np.mean(weights.evaluate(draws)) == pytest.approx(1.0, abs=0.01)


def test_unusable_pileup_files_are_named(tmp_path, pileup_file, pog_sf_file):
    from tau3mu.corrections import PileupWeights, ScaleFactorError

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ScaleFactorError, match="not a correctionlib file"):
        PileupWeights(bad)
    with pytest.raises(ScaleFactorError, match="cannot read"):
        PileupWeights(tmp_path / "missing.json")
    doc = json.loads(pileup_file.read_text())
    doc["corrections"].append({**doc["corrections"][0], "name": "second"})
    bad.write_text(json.dumps(doc))
    with pytest.raises(ScaleFactorError, match="expected one correction"):
        PileupWeights(bad)
    with pytest.raises(ScaleFactorError, match="has inputs"):
        PileupWeights(pog_sf_file, "NUM_MediumID_DEN_TrackerMuons")


# -- a run's weights, event by event ---------------------------------------------------------
@pytest.fixture(scope="module")
def normalised_run(tmp_path_factory, pileup_file):
    """``tau3mu run --pileup`` on generated data of 2022C and simulation of 2022."""
    from tau3mu.cli import main
    from tau3mu.synth import generate_dataset

    folder = tmp_path_factory.mktemp("normalised")
    generate_dataset(folder, layout="run3", events_per_file=4000, era="2022C", seed=21)
    generate_dataset(folder, layout="run3", events_per_file=3000, era="2022", seed=22, mc=True)
    out = folder / "out"
    argv = ["run", str(folder / "datasets.json"), "--out", str(out), "--no-muon-sf"]
    argv += ["--pileup", str(pileup_file), "--executor", "iterative", "--no-fit", "--no-progress"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    with uproot.open(out / "snapshot.root") as f:
        snapshot = f["ntuple"].arrays(library="np")
    return folder, report, snapshot


def test_simulation_weight_is_xsec_lumi_over_ngen_times_pileup_weight(normalised_run, pileup_file):
    """Each simulated event's weight against correctionlib on the file's own
    Pileup_nTrueInt (read with uproot) and the datasets file's numbers."""
    import correctionlib

    folder, report, snapshot = normalised_run
    spec = json.loads((folder / "datasets.json").read_text())
    (data,) = [k for k, v in spec.items() if v["type"] == "data"]
    (mc,) = [k for k, v in spec.items() if v["type"] == "mc"]
    scale = spec[mc]["xsec"] * 1000 * spec[data]["lumi"] / spec[mc]["ngen"]
    block = report["weights"][mc]
    assert block["scale"] == pytest.approx(scale, rel=1e-14)
    assert block["lumi_source"] == f"data: {data} ({spec[data]['lumi']:g} fb^-1)"
    assert block["pileup"]["file"] == str(pileup_file)
    assert block["muon_sf"] is None
    assert set(report["weights"]) == {mc}
    true_pileup = {}
    for name in spec[mc]["files"].split():
        with uproot.open(folder / name) as f:
            a = f["Events"].arrays(["event", "Pileup_nTrueInt"], library="np")
        true_pileup |= dict(zip(a["event"].tolist(), a["Pileup_nTrueInt"].tolist(), strict=True))
    evaluator = correctionlib.CorrectionSet.from_file(str(pileup_file))["pileup_weights"]
    is_mc = snapshot["dataset"] == list(spec).index(mc)
    events = snapshot["event"][is_mc]
    expected = scale * evaluator.evaluate(np.array([true_pileup[e] for e in events.tolist()]))
    np.testing.assert_allclose(snapshot["weight"][is_mc], expected, rtol=1e-6)
    assert np.all(snapshot["weight"][~is_mc] == 1.0)  # data


def test_weights_report_block_names_every_input():
    scales = simulation_scales(
        [_dataset("d", "data", "2017B", lumi=2.0), _dataset("m", "mc", "2017", xsec=1.0, ngen=4.0)]
    )
    block = weights_report(scales, muon_sf={}, eras={"m": "2017"})
    assert block == {
        "m": {
            "xsec_pb": 1.0, "ngen": 4.0, "lumi_fb": 2.0, "lumi_source": "data: d (2 fb^-1)",
            "scale": 500.0, "muon_sf": None, "pileup": None,
        }
    }  # fmt: skip
