"""Muon ID scale factors from the real Muon POG 2017 file, clamped into its domain."""

from __future__ import annotations

import json
import pickle

import awkward as ak
import correctionlib
import numpy as np
import pytest
import uproot

from tau3mu.corrections import DEFAULT_CORRECTION, MuonScaleFactors


@pytest.fixture(scope="module")
def scale_factors(pog_sf_file):
    return MuonScaleFactors(pog_sf_file)


@pytest.fixture(scope="module")
def raw(pog_sf_file):
    return correctionlib.CorrectionSet.from_file(str(pog_sf_file))[DEFAULT_CORRECTION]


def test_domain_read_from_file(scale_factors):
    assert scale_factors.domains["pt"].low == pytest.approx(3.0)
    assert scale_factors.domains["abseta"].high == pytest.approx(2.4)


def test_the_real_file_errors_below_3_gev(raw):
    """The reason clamping exists: the POG file's pt flow is "error"."""
    with pytest.raises(RuntimeError, match=r"Index below bounds in Binning for input argument 1"):
        raw.evaluate(1.5, 2.5, "nominal")


@pytest.mark.parametrize("variation", ["nominal", "systup", "systdown"])
@pytest.mark.parametrize(("eta", "pt"), [(0.3, 3.5), (-1.0, 7.2), (2.2, 25.0), (1.25, 4.0)])
def test_inside_domain_equals_correctionlib(scale_factors, raw, eta, pt, variation):
    assert scale_factors.evaluate(eta, pt, variation) == pytest.approx(
        raw.evaluate(abs(eta), pt, variation)
    )


def test_below_domain_is_clamped_to_lowest_bin(scale_factors, raw):
    assert scale_factors.evaluate(1.5, 2.2) == pytest.approx(raw.evaluate(1.5, 3.0, "nominal"))


def test_event_weights_count_clamped_values(scale_factors, raw):
    mu1 = (ak.Array([0.5, 1.9, -2.1]), ak.Array([4.0, 2.5, 2.1]))
    mu2 = (ak.Array([1.0, 0.1, 1.5]), ak.Array([3.5, 6.0, 12.0]))
    weights, clamped = scale_factors.event_weights([mu1, mu2])
    assert int(clamped) == 2
    expected = [
        raw.evaluate(0.5, 4.0, "nominal") * raw.evaluate(1.0, 3.5, "nominal"),
        raw.evaluate(1.9, 3.0, "nominal") * raw.evaluate(0.1, 6.0, "nominal"),
        raw.evaluate(2.1, 3.0, "nominal") * raw.evaluate(1.5, 12.0, "nominal"),
    ]
    np.testing.assert_allclose(ak.to_numpy(weights["nominal"]), expected)
    assert set(weights) == {"nominal", "sf_up", "sf_down"}
    assert np.all(ak.to_numpy(weights["sf_up"]) >= ak.to_numpy(weights["nominal"]))
    assert np.all(ak.to_numpy(weights["sf_down"]) <= ak.to_numpy(weights["nominal"]))


def test_works_on_jagged_arrays(scale_factors):
    out = scale_factors.evaluate(ak.Array([[0.5, 2.0], [], [1.3]]), ak.Array([[2.5, 4], [], [50]]))
    assert ak.num(out).tolist() == [2, 0, 1]


def test_pickles_without_the_file(scale_factors, tmp_path, pog_sf_file):
    """Remote workers do not share the client's disk: the object carries the JSON text."""
    copy = tmp_path / "sf.json"
    copy.write_text(pog_sf_file.read_text())
    sf = MuonScaleFactors(copy)
    copy.unlink()
    clone = pickle.loads(pickle.dumps(sf))
    assert clone.evaluate(0.5, 4.0) == pytest.approx(scale_factors.evaluate(0.5, 4.0))


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        MuonScaleFactors(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json is not valid JSON"):
        MuonScaleFactors(bad)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"schema_version": 2, "corrections": []}))
    with pytest.raises(KeyError, match="NUM_MediumID_DEN_TrackerMuons"):
        MuonScaleFactors(empty)


# -- the shipped files and the choice per year ---------------------------------------------
def _dataset(name: str, era: str, kind: str = "mc"):
    from tau3mu.datasets import Dataset

    return Dataset(name=name, files=["/nowhere/a.root"], treename="Events", era=era, type=kind)


def test_the_shipped_2017_file_is_the_repository_data_file(pog_sf_file):
    from importlib import resources

    from tau3mu.corrections import shipped_muon_sf

    shipped = shipped_muon_sf(2017)
    assert shipped is not None
    assert shipped.read_bytes() == pog_sf_file.read_bytes()
    packaged = resources.files("tau3mu.data").joinpath(pog_sf_file.name)
    assert packaged.read_bytes() == pog_sf_file.read_bytes()
    assert shipped_muon_sf(2018) is None
    assert shipped_muon_sf(2022) is None


def test_scale_factors_for_picks_the_shipped_file_per_year(pog_sf_file):
    from tau3mu.corrections import scale_factors_for

    chosen = scale_factors_for(
        [_dataset("data", "2017B", "data"), _dataset("mcB", "2017B"), _dataset("mcC", "2017C")]
    )
    assert list(chosen) == ["2017"]
    assert chosen["2017"].fingerprint() == MuonScaleFactors(pog_sf_file).fingerprint()
    assert scale_factors_for([_dataset("data", "2018A", "data")]) == {}


def test_scale_factors_for_an_unshipped_year_needs_an_option(pog_sf_file):
    from tau3mu.corrections import ScaleFactorError, scale_factors_for

    mc2018 = [_dataset("DsPhiPi_2018", "2018D")]
    with pytest.raises(ScaleFactorError) as err:
        scale_factors_for(mc2018)
    message = str(err.value)
    for word in ("'DsPhiPi_2018'", "2018", "--muon-sf FILE", "--no-muon-sf"):
        assert word in message
    assert scale_factors_for(mc2018, no_muon_sf=True) == {}
    given = scale_factors_for(mc2018, muon_sf=pog_sf_file)
    assert given["2018"].path == str(pog_sf_file)
    with pytest.raises(ScaleFactorError, match="exclude each other"):
        scale_factors_for(mc2018, muon_sf=pog_sf_file, no_muon_sf=True)
    with pytest.raises(ScaleFactorError, match="simulation without an era"):
        scale_factors_for([_dataset("no_era", None)])
    assert list(scale_factors_for([_dataset("no_era", None)], default_era="2017F")) == ["2017"]


def test_scale_factors_for_names_an_unusable_file(tmp_path):
    from tau3mu.corrections import ScaleFactorError, scale_factors_for

    bad = tmp_path / "sf.json"
    bad.write_text(json.dumps({"schema_version": 2, "corrections": []}))
    mc = [_dataset("mc", "2017")]
    with pytest.raises(ScaleFactorError, match=r"--muon-sf .*sf\.json.*no correction"):
        scale_factors_for(mc, muon_sf=bad)
    with pytest.raises(ScaleFactorError, match=r"--muon-sf .*missing\.json"):
        scale_factors_for(mc, muon_sf=tmp_path / "missing.json")


def test_run_refuses_unweighted_simulation_before_any_work(tmp_path, capsys):
    """Simulation of a year without a shipped file: exit 2 and one line, no file opened."""
    from tau3mu.cli import main

    datasets = tmp_path / "input.json"
    spec = {"rootpath": str(tmp_path), "files": "never.root", "treename": "Events"}
    mc2018 = {**spec, "era": "2018", "type": "mc", "lumi": 1.0, "xsec": 1.0, "ngen": 1.0}
    datasets.write_text(json.dumps({"mc2018": mc2018}))
    code = main(["run", str(datasets), "--out", str(tmp_path / "out"), "--executor", "iterative"])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "'mc2018'" in lines[0]
    assert "--no-muon-sf" in lines[0]
    assert "never.root" not in lines[0]  # refused before the inspection looks at files


def test_the_repository_names_nothing_outside_it():
    """Tests, code, docs and help read their data from the repository (data/)."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    me = Path(__file__).relative_to(repo).as_posix()
    # spelled in parts, so that this file does not name them itself
    outside = ("../" + "shared", "TAU3MU_" + "SHARED", "shared/" + "data", "shared/" + "SPEC")
    offenders = []
    for name in tracked:
        if name == me or not name.endswith((".py", ".md", ".toml", ".ipynb", ".txt", ".cfg")):
            continue
        text = (repo / name).read_text(encoding="utf-8", errors="replace")
        offenders += [f"{name}: {word}" for word in outside if word in text]
    assert offenders == []


def test_run_weights_2017_simulation_with_the_shipped_file(tmp_path, pog_sf_file):
    """No option: the shipped 2017 file, the same weights as naming it with --muon-sf."""
    from tau3mu.cli import main
    from tau3mu.synth import generate_dataset

    mc = generate_dataset(
        tmp_path / "mc", layout="run2", files=1, events_per_file=3000, seed=5, mc=True
    )
    ((name, spec),) = mc["datasets"].items()
    assert spec["type"] == "mc"
    assert spec["era"] == "2017"
    # no data of 2017 in this run: the simulation names its target luminosity
    datasets_json = tmp_path / "mc.json"
    datasets_json.write_text(json.dumps({name: {**spec, "lumi": 1.0}}))
    reports = {}
    for label, extra in (
        ("default", []),
        ("given", ["--muon-sf", str(pog_sf_file)]),
        ("none", ["--no-muon-sf"]),
    ):
        out = tmp_path / label
        argv = ["run", str(datasets_json), "--out", str(out), "--executor", "iterative"]
        assert main([*argv, "--no-fit", "--no-progress", *extra]) == 0
        reports[label] = json.loads((out / "report.json").read_text())
        with open(out / "histograms.pkl", "rb") as handle:
            reports[label]["h_mass"] = pickle.load(handle)["h_mass"][{"dataset": name}]
    from tau3mu.corrections import shipped_muon_sf

    assert reports["default"]["muon_sf"] == {"2017": str(shipped_muon_sf(2017))}
    assert reports["given"]["muon_sf"] == {"2017": str(pog_sf_file)}
    assert reports["none"]["muon_sf"] == {}
    default, given, none = (reports[k]["h_mass"] for k in ("default", "given", "none"))
    np.testing.assert_array_equal(default.values(), given.values())
    assert list(default.axes["systematic"]) == ["nominal", "sf_up", "sf_down"]
    assert list(none.axes["systematic"]) == ["nominal"]
    nominal = default[{"systematic": "nominal"}].sum().value
    assert nominal != none[{"systematic": "nominal"}].sum().value  # weights applied


# -- the weights of a run, event by event ---------------------------------------------------
@pytest.fixture(scope="module")
def simulation_run(run3_dataset, pog_sf_file, tmp_path_factory):
    """``tau3mu run --muon-sf`` on the run3 files declared as simulation: its snapshot (one
    row per selected event) and report."""
    from tau3mu.cli import main

    (spec,) = run3_dataset["datasets"].values()
    folder = tmp_path_factory.mktemp("simulation-run")
    datasets_json = folder / "mc.json"
    mc = {**spec, "type": "mc", "lumi": 1.0, "xsec": 1.0, "ngen": 1000.0}  # scale 1
    datasets_json.write_text(json.dumps({"DsPhiPi_MC": mc}))
    out = folder / "out"
    argv = ["run", str(datasets_json), "--out", str(out), "--executor", "iterative"]
    argv += ["--muon-sf", str(pog_sf_file), "--no-fit", "--no-progress"]
    assert main(argv) == 0
    with uproot.open(out / "snapshot.root") as f:
        snapshot = f["ntuple"].arrays(library="np")
    return snapshot, json.loads((out / "report.json").read_text())


def _edges_of(pog_sf_file) -> tuple[np.ndarray, list[np.ndarray]]:
    """The abseta edges of the analysis's correction, read from the file, and the pt edges
    of each abseta bin."""
    document = json.loads(pog_sf_file.read_text())
    (node,) = [c["data"] for c in document["corrections"] if c["name"] == DEFAULT_CORRECTION]
    assert (node["nodetype"], node["input"]) == ("binning", "abseta")
    assert all(child["input"] == "pt" for child in node["content"])
    pt_edges = [np.array(child["edges"], dtype=np.float64) for child in node["content"]]
    return np.array(node["edges"], dtype=np.float64), pt_edges


def _into(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values moved into [low, high), and which had to be moved."""
    moved = (values < low) | (values >= high)
    return np.clip(values, low, np.nextafter(high, -np.inf)), moved


def test_run_weights_are_the_files_scale_factors_event_by_event(simulation_run, raw, pog_sf_file):
    """Every selected event's weights in snapshot.root equal the product over its two muons
    of correctionlib's own evaluation of the file at (|eta|, pt) moved into the file's
    edges (pt into those of its |eta| bin), for the nominal, up and down variations;
    report.json counts exactly the muons that had to be moved."""
    snapshot, report = simulation_run
    eta_edges, pt_edges = _edges_of(pog_sf_file)
    factors = {"weight": 1.0, "weight_sf_up": 1.0, "weight_sf_down": 1.0}
    clamped = 0
    for muon in ("mu1", "mu2"):
        eta = np.abs(snapshot[f"BestTriplet_{muon}_eta"].astype(np.float64))
        abseta, eta_moved = _into(eta, eta_edges[0], eta_edges[-1])
        eta_bin = np.searchsorted(eta_edges, abseta, side="right") - 1
        low = np.array([pt_edges[b][0] for b in eta_bin])
        high = np.array([pt_edges[b][-1] for b in eta_bin])
        pt, pt_moved = _into(snapshot[f"BestTriplet_{muon}_pt"].astype(np.float64), low, high)
        clamped += int(np.sum(eta_moved | pt_moved))
        for column, key in (
            ("weight", "nominal"),
            ("weight_sf_up", "systup"),
            ("weight_sf_down", "systdown"),
        ):
            factors[column] = factors[column] * raw.evaluate(abseta, pt, key)
    rows = len(snapshot["event"])
    assert rows > 100
    for column, expected in factors.items():
        np.testing.assert_array_equal(snapshot[column], expected, err_msg=column)
    # the low-pt endcap muons the selection admits exist in this sample
    assert 0 < clamped < 2 * rows
    assert report["scale_factors"] == {"DsPhiPi_MC": {"muons": 2 * rows, "clamped": clamped}}
