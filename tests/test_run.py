"""``tau3mu run`` end to end, as a user calls it: outputs readable without this package."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import subprocess
import sys
import time

import awkward as ak
import numpy as np
import pytest
import uproot

from tau3mu.cli import main


@pytest.fixture(scope="module")
def run_output(run3_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(
        [
            "run",
            run3_dataset["datasets_json"],
            "--out",
            str(out),
            "--executor",
            "iterative",
            "--chunksize",
            "4000",
            "--fit-engine",
            "iminuit",
            "--no-progress",
        ]
    )
    assert code == 0
    return out


def test_writes_every_output(run_output):
    names = {p.name for p in run_output.iterdir()}
    assert {
        "histograms.root",
        "histograms.pkl",
        "cutflow.json",
        "fit.json",
        "mass_fit.png",
        "mass_fit.pdf",
        "report.json",
    } <= names
    assert "snapshot.root" in names
    assert not any(n.startswith("snapshot_") for n in names)  # one file for all datasets
    assert not any(n.endswith(".part") for n in names)  # no half-written leftovers


def test_histograms_root_is_plain_th1(run_output, run3_dataset):
    ((name, _),) = run3_dataset["datasets"].items()
    with uproot.open(run_output / "histograms.root") as f:
        h = f[f"h_mass_{name}"]
        assert h.classname.startswith("TH1")
        counts, edges = h.to_numpy()
    assert len(counts) == 62
    assert edges[0] == pytest.approx(1.65)
    assert edges[-1] == pytest.approx(2.01)
    with open(run_output / "histograms.pkl", "rb") as handle:
        hists = pickle.load(handle)
    np.testing.assert_array_equal(
        hists["h_mass"][{"dataset": name, "systematic": "nominal"}].values(), counts
    )


def test_cutflow_report_and_snapshot_agree(run_output, run3_dataset):
    cutflow = json.loads((run_output / "cutflow.json").read_text())
    ((_name, steps),) = cutflow.items()
    report = json.loads((run_output / "report.json").read_text())
    assert steps["events"]["events"] == report["events"] == run3_dataset["events"]
    assert report["executor"] == "iterative"
    assert "Cand2MuTrk_mass" in report["columns"]
    assert "Cand2MuTrk_pt" not in report["columns"]  # not needed, not read
    assert report["versions"]["coffea"]
    tree = uproot.open(run_output / "snapshot.root")["ntuple"]
    assert tree.num_entries == steps["best_candidate"]["events"]
    assert {"dataset", "run", "lumi", "event", "BestTriplet_mass"} <= set(tree.keys())
    assert report["snapshot"]["rows"] == {_name: tree.num_entries}


def strict_json(text: str):
    """Parse as JavaScript's JSON.parse would: NaN and Infinity are not JSON."""

    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("name", ["fit.json", "report.json", "cutflow.json"])
def test_json_outputs_are_strict_json(run_output, name):
    assert strict_json((run_output / name).read_text())


def test_report_times(run_output):
    report = strict_json((run_output / "report.json").read_text())
    assert 0 < report["processing_time_s"] <= report["wall_time_s"]
    assert report["fit_time_s"] > 0
    assert report["total_time_s"] >= report["wall_time_s"] + report["fit_time_s"]


def test_fit_json_and_refit_command(run_output, tmp_path):
    fit = json.loads((run_output / "fit.json").read_text())
    ((_, result),) = fit.items()
    assert result["result"] == "ok"
    assert result["params"]["n_ds"]["value"] > 0
    assert (
        main(
            [
                "fit",
                str(run_output / "histograms.pkl"),
                "--out",
                str(tmp_path),
                "--fit-engine",
                "iminuit",
            ]
        )
        == 0
    )
    refit = json.loads((tmp_path / "fit.json").read_text())
    ((_, again),) = refit.items()
    assert again["params"]["n_ds"]["value"] == pytest.approx(
        result["params"]["n_ds"]["value"], rel=1e-6
    )
    assert (
        main(
            [
                "fit",
                str(run_output / "histograms.root"),
                "--out",
                str(tmp_path),
                "--fit-engine",
                "iminuit",
            ]
        )
        == 0
    )


def test_plain_files_and_globs(run3_dataset, tmp_path, capsys):
    (spec,) = run3_dataset["datasets"].values()
    pattern = spec["rootpath"] + "*.root"
    code = main(
        [
            "run",
            pattern,
            "--out",
            str(tmp_path),
            "--executor",
            "iterative",
            "--no-fit",
            "--no-progress",
            "--performance-report",
            str(tmp_path / "report.html"),
        ]
    )
    assert code == 0
    cutflow = json.loads((tmp_path / "cutflow.json").read_text())
    assert cutflow["files"]["events"]["events"] == run3_dataset["events"]
    # no Dask client, no report: said on screen, not silently ignored
    assert "--performance-report" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def test_unknown_dataset_is_a_clear_error(run3_dataset, tmp_path, capsys):
    code = main(
        [
            "run",
            run3_dataset["datasets_json"],
            "--dataset",
            "DoubleMuonLowMas",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'DoubleMuonLowMas'" in err
    assert "did you mean" in err


# -- two datasets, on a local Dask cluster and with the futures executor -----------------
#: the run3 files as two datasets, simulation first: input order is not alphabetical
TWO = ("Zeta_DsPhiPi_MC", "Alpha_DoubleMuonLowMass")


@pytest.fixture(scope="module")
def two_datasets_json(run3_dataset, tmp_path_factory) -> str:
    (spec,) = run3_dataset["datasets"].values()
    config = {
        # xsec x 1000 x lumi / ngen = 1 exactly: the weights are the scale factors
        TWO[0]: {**spec, "type": "mc", "lumi": 0.0512345, "xsec": 1.0, "ngen": 1000 * 0.0512345},
        TWO[1]: {**spec, "type": "data"},
    }
    path = tmp_path_factory.mktemp("two") / "two.json"
    path.write_text(json.dumps(config))
    return str(path)


def run_cli(argv: list[str]) -> dict:
    """``tau3mu`` with ``argv``; its exit code, stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


@pytest.fixture(scope="module")
def dask_run(two_datasets_json, pog_sf_file, tmp_path_factory):
    """``tau3mu run`` with the default executor (a local Dask cluster of 2 workers), muon
    scale factors and a performance report."""
    out = tmp_path_factory.mktemp("dask-run")
    before = _worker_processes()
    run = run_cli(
        [
            "run",
            two_datasets_json,
            "--out",
            str(out),
            "--workers",
            "2",
            "--chunksize",
            "3000",
            "--muon-sf",
            str(pog_sf_file),
            "--no-fit",
            "--no-progress",
            "--performance-report",
            str(out / "dask-report.html"),
        ]
    )
    assert run["code"] == 0, run["stderr"]
    deadline = time.monotonic() + 20
    while (left := _worker_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    return {**run, "out": out, "workers_left": left}


def _worker_processes() -> set[int]:
    """PIDs of this process's Dask worker processes (multiprocessing children)."""
    psutil = pytest.importorskip("psutil")
    found = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(child.cmdline()):
                found.add(child.pid)
    return found


def test_local_cluster_is_closed_and_its_dashboard_shown(dask_run):
    """The run closes the local cluster it started (not only its client): no worker process
    is left to be killed at exit; the dashboard link was printed when it started."""
    assert dask_run["workers_left"] == set()
    (line,) = (x for x in dask_run["stderr"].splitlines() if x.startswith("Dask: local cluster"))
    assert "2 worker(s) connected, dashboard http://" in line
    assert line.rstrip().endswith("/status")


@pytest.mark.root
def test_histograms_root_read_by_root(dask_run):
    """ROOT reads TH1s of 62 bins on [1.65, 2.01] GeV; the simulation has its scale-factor
    variations (from the real POG file), the data none."""
    ROOT = pytest.importorskip("ROOT")
    f = ROOT.TFile.Open(str(dask_run["out"] / "histograms.root"))
    try:
        names = {key.GetName() for key in f.GetListOfKeys()}
        mc, data = TWO
        assert {f"h_mass_{mc}_sf_up", f"h_mass_{mc}_sf_down"} <= names
        assert not any(n.startswith(f"h_mass_{data}_") for n in names)
        # control histograms too carry simulation's variations (bands on data/simulation)
        assert {f"h_mu_pt_{mc}_sf_up", f"h_mu_pt_{mc}_sf_down"} <= names
        assert not any(n.startswith(f"h_mu_pt_{data}_") for n in names)
        integrals = {}
        for name in (
            f"h_mass_{data}",
            f"h_mass_{mc}",
            f"h_mass_{mc}_sf_up",
            f"h_mass_{mc}_sf_down",
        ):
            h = f.Get(name)
            assert h.InheritsFrom("TH1"), name
            assert h.GetNbinsX() == 62
            assert h.GetXaxis().GetXmin() == pytest.approx(1.65)
            assert h.GetXaxis().GetXmax() == pytest.approx(2.01)
            integrals[name.removeprefix("h_mass_")] = h.Integral()
    finally:
        f.Close()
    # the same events: data counts 1 each, simulation its scale factors (about 0.99)
    assert integrals[data] > 100
    assert integrals[f"{mc}_sf_down"] < integrals[mc] < integrals[f"{mc}_sf_up"]
    assert integrals[mc] == pytest.approx(integrals[data], rel=0.1)
    assert integrals[mc] != integrals[data]


@pytest.fixture(scope="module")
def processor_snapshot(run3_dataset, fileset_of):
    """The processor's own snapshot of the run3 files (both datasets read the same files)."""
    from tau3mu.execution import run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    ((_, snapshot),) = run_runner(fileset_of(run3_dataset), DsPhiPiProcessor()).snapshot.items()
    return snapshot


def _same_rows(table, reference):
    for name in ("run", "lumi", "event", "BestTriplet_mass"):
        np.testing.assert_array_equal(np.asarray(table[name]), ak.to_numpy(reference[name]))


def test_snapshot_is_one_tree_read_by_uproot(dask_run, processor_snapshot):
    """snapshot.root: one TTree ``ntuple`` with every dataset's best candidates; the
    ``dataset`` branch's meaning in the file (TObjString and title) and in report.json."""
    out = dask_run["out"]
    assert sorted(p.name for p in out.glob("snapshot*")) == ["snapshot.root"]
    report = strict_json((out / "report.json").read_text())
    meaning = {"0": TWO[0], "1": TWO[1]}
    assert report["snapshot"]["datasets"] == meaning
    assert report["snapshot"]["tree"] == "ntuple"
    with uproot.open(out / "snapshot.root") as f:
        assert json.loads(str(f["datasets"])) == meaning
        tree = f["ntuple"]
        assert "0=Zeta_DsPhiPi_MC, 1=Alpha_DoubleMuonLowMass" in tree.title
        table = tree.arrays(library="np")
    assert table["dataset"].dtype == np.int32
    for index, name in enumerate(TWO):
        rows = {k: v[table["dataset"] == index] for k, v in table.items()}
        _same_rows(rows, processor_snapshot)
        assert report["snapshot"]["rows"][name] == len(processor_snapshot)
    mc = table["dataset"] == 0
    assert not np.array_equal(table["weight_sf_up"][mc], table["weight"][mc])
    # data: no variation applies, the variations are the nominal weight (1)
    np.testing.assert_array_equal(table["weight_sf_up"][~mc], table["weight"][~mc])
    assert np.all(table["weight"][~mc] == 1)


@pytest.mark.root
def test_snapshot_read_by_root(dask_run, processor_snapshot):
    ROOT = pytest.importorskip("ROOT")
    path = str(dask_run["out"] / "snapshot.root")
    f = ROOT.TFile.Open(path)
    try:
        meaning = json.loads(str(f.Get("datasets").GetString()))
    finally:
        f.Close()
    assert meaning == {"0": TWO[0], "1": TWO[1]}
    frame = ROOT.RDataFrame("ntuple", path)
    counts = {i: frame.Filter(f"dataset == {i}").Count() for i in (0, 1)}
    masses = frame.Filter("dataset == 1").Take["double"]("BestTriplet_mass")
    assert {i: c.GetValue() for i, c in counts.items()} == {
        0: len(processor_snapshot),
        1: len(processor_snapshot),
    }
    np.testing.assert_array_equal(
        np.asarray(list(masses.GetValue())), ak.to_numpy(processor_snapshot["BestTriplet_mass"])
    )


@pytest.fixture(scope="module")
def futures_run(two_datasets_json, pog_sf_file, tmp_path_factory):
    """``tau3mu run --executor futures`` (2 processes), parquet snapshot, iminuit fit."""
    out = tmp_path_factory.mktemp("futures-run")
    run = run_cli(
        [
            "run",
            two_datasets_json,
            "--out",
            str(out),
            "--executor",
            "futures",
            "--workers",
            "2",
            "--chunksize",
            "3000",
            "--muon-sf",
            str(pog_sf_file),
            "--snapshot-format",
            "parquet",
            "--fit-engine",
            "iminuit",
            "--no-progress",
        ]
    )
    assert run["code"] == 0, run["stderr"]
    return {**run, "out": out}


@pytest.mark.parametrize("run", ["dask_run", "futures_run"])
def test_datasets_in_input_order(run, request):
    """Whatever order the chunks finish in, every output lists the datasets as the input does."""
    done = request.getfixturevalue(run)
    out = done["out"]
    assert list(strict_json((out / "cutflow.json").read_text())) == list(TWO)
    report = strict_json((out / "report.json").read_text())
    assert list(report["datasets"]) == list(TWO)
    with open(out / "histograms.pkl", "rb") as handle:
        hists = pickle.load(handle)
    for h in hists.values():
        assert list(h.axes["dataset"]) == list(TWO)
    printed = [done["stdout"].index(f"Cutflow of {name}") for name in TWO]
    assert printed == sorted(printed)
    with uproot.open(out / "histograms.root") as f:
        keys = [k for k in f.keys(cycle=False) if k.startswith("h_mass_")]
    assert keys.index(f"h_mass_{TWO[0]}") < keys.index(f"h_mass_{TWO[1]}")


def test_fit_per_dataset_in_input_order(futures_run):
    out = futures_run["out"]
    fit = strict_json((out / "fit.json").read_text())
    assert list(fit) == list(TWO)
    report = strict_json((out / "report.json").read_text())
    assert list(report["outputs"]["plots"]) == list(TWO)
    for name in TWO:
        for suffix in (".png", ".pdf"):
            figure = out / f"mass_fit_{name}{suffix}"
            assert str(figure) in report["outputs"]["plots"][name]
            assert figure.stat().st_size > 10_000
    # mass_fit.png is the first dataset's, on every run
    assert (out / "mass_fit.png").read_bytes() == (out / f"mass_fit_{TWO[0]}.png").read_bytes()
    assert (out / "mass_fit.pdf").read_bytes() == (out / f"mass_fit_{TWO[0]}.pdf").read_bytes()


def test_performance_report_is_written(dask_run):
    report = dask_run["out"] / "dask-report.html"
    assert report.is_file(), dask_run["stderr"]
    html = report.read_text()
    assert len(html) > 20_000
    assert "<title>Dask Performance Report</title>" in html
    assert "Task Stream" in html
    assert json.loads((dask_run["out"] / "report.json").read_text())["executor"] == "dask"


def test_performance_report_failure_is_a_warning(dask_client, tmp_path, capsys):
    """A report that cannot be written (here: its path is a folder) warns, the body's
    results stand, and the folder is left as it was."""
    from tau3mu.pipeline import performance_report_or_warn

    with performance_report_or_warn(str(tmp_path), dask_client):
        assert dask_client.submit(sum, [1, 2]).result(timeout=60) == 3
    err = capsys.readouterr().err
    assert f"Dask performance report {tmp_path} not written" in err
    assert tmp_path.is_dir()
    assert list(tmp_path.iterdir()) == []
    assert not list(tmp_path.parent.glob("*.part"))  # no temporary file left behind


# -- grid proxy -----------------------------------------------------------------------
@pytest.mark.parametrize("problem", ["missing", "folder", "empty", "missing from the environment"])
def test_unusable_proxy_is_one_line_before_any_cluster(
    problem, run3_dataset, tmp_path, monkeypatch, capsys
):
    """Checked before a cluster starts (--executor dask would start one): exit 2, the
    file and the problem on one line, no traceback."""
    proxy = tmp_path / "x509up_u1000"
    if problem == "folder":
        proxy.mkdir()
    elif problem == "empty":
        proxy.write_bytes(b"")
    argv = ["run", run3_dataset["datasets_json"], "--out", str(tmp_path / "out"), "--no-fit"]
    argv += ["--executor", "dask"]
    if problem == "missing from the environment":
        monkeypatch.setenv("X509_USER_PROXY", str(proxy))
    else:
        argv += ["--x509-proxy", str(proxy)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(f"tau3mu run: grid proxy {proxy}")
    assert len(err.splitlines()) == 1
    assert "Traceback" not in captured.out + captured.err
    assert "Dask:" not in err  # no cluster was started
    assert not (tmp_path / "out" / "report.json").exists()


def test_proxy_without_dask_workers(run3_dataset, tmp_path, capsys):
    """The futures executor: the proxy is checked, the run reads through it, its path (never
    its content) is in report.json, and this process's environment is left as it was."""
    secret = b"-----BEGIN CERTIFICATE-----\nnot-a-real-proxy-" + os.urandom(8).hex().encode()
    proxy = tmp_path / "x509up_u1000"
    proxy.write_bytes(secret)
    proxy.chmod(0o600)
    before = {k: os.environ.get(k) for k in ("X509_USER_PROXY", "X509_CERT_DIR")}
    argv = ["run", run3_dataset["datasets_json"], "--out", str(tmp_path / "out"), "--no-fit"]
    argv += ["--executor", "futures", "--workers", "1", "--no-progress"]
    argv += ["--x509-proxy", str(proxy), "--x509-cert-dir", str(tmp_path)]
    assert main(argv) == 0
    assert {k: os.environ.get(k) for k in before} == before
    report = (tmp_path / "out" / "report.json").read_text()
    assert json.loads(report)["x509_proxy"] == str(proxy)
    shown = report + "".join(capsys.readouterr())
    assert "not-a-real-proxy" not in shown


# -- --dataset ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["--dataset", "B", "A"],
        ["--dataset", "B", "--dataset", "A"],
        ["--dataset", "B", "A", "--dataset", "A"],  # named twice: once
    ],
)
def test_dataset_option_takes_several_names(argv):
    from tau3mu.cli import build_parser

    args = build_parser().parse_args(["run", "in.json", "--out", "o", *argv])
    assert list(dict.fromkeys(args.dataset)) == ["B", "A"]


def test_dataset_order_is_the_options(two_datasets_json, tmp_path):
    """``--dataset A B`` selects both, in that order (here the reverse of the file's)."""
    argv = ["run", two_datasets_json, "--dataset", TWO[1], TWO[0], "--out", str(tmp_path)]
    run = run_cli([*argv, "--executor", "iterative", "--no-fit", "--no-progress", "--no-muon-sf"])
    assert run["code"] == 0, run["stderr"]
    assert list(strict_json((tmp_path / "cutflow.json").read_text())) == [TWO[1], TWO[0]]
    report = strict_json((tmp_path / "report.json").read_text())
    assert list(report["datasets"]) == [TWO[1], TWO[0]]
    assert report["fit_time_s"] is None
    assert report["total_time_s"] >= report["wall_time_s"]


def test_snapshot_parquet_is_one_file(futures_run, processor_snapshot):
    """--snapshot-format parquet: snapshot.parquet with a string ``dataset`` column."""
    pq = pytest.importorskip("pyarrow.parquet")
    out = futures_run["out"]
    assert sorted(p.name for p in out.glob("snapshot*")) == ["snapshot.parquet"]
    table = pq.read_table(out / "snapshot.parquet")
    assert json.loads(table.schema.metadata[b"tau3mu.datasets"]) == {"0": TWO[0], "1": TWO[1]}
    columns = {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}
    assert list(dict.fromkeys(columns["dataset"])) == list(TWO)  # in input order
    for name in TWO:
        _same_rows(
            {k: v[columns["dataset"] == name] for k, v in columns.items()}, processor_snapshot
        )
    again = ak.from_parquet(out / "snapshot.parquet")
    assert set(again["dataset"].tolist()) == set(TWO)
    report = strict_json((out / "report.json").read_text())
    assert report["outputs"]["snapshot"] == str(out / "snapshot.parquet")


# -- the other paths ------------------------------------------------------------------
def test_dask_awkward_mode(run3_dataset, run_output, tmp_path):
    """--mode dask-awkward (here without a cluster: the synchronous scheduler) gives the
    Runner's cutflow, histograms and columns read, with a progress bar."""
    argv = ["run", run3_dataset["datasets_json"], "--out", str(tmp_path), "--mode", "dask-awkward"]
    run = run_cli([*argv, "--executor", "iterative", "--chunksize", "4000", "--no-fit"])
    assert run["code"] == 0, run["stderr"]
    report = strict_json((tmp_path / "report.json").read_text())
    assert report["mode"] == "dask-awkward"
    # not a terminal (run_cli captures stdout): the graph's progress as lines
    assert "Processing: 100%" in run["stdout"]
    assert "\r" not in run["stdout"]
    runner = set(strict_json((run_output / "report.json").read_text())["columns"])
    # the same branches as the Runner: the graph reads nothing the selection does not need
    assert set(report["columns"]) == runner
    assert report["events"] == run3_dataset["events"]
    assert strict_json((tmp_path / "cutflow.json").read_text()) == strict_json(
        (run_output / "cutflow.json").read_text()
    )
    with (
        uproot.open(tmp_path / "histograms.root") as mine,
        uproot.open(run_output / "histograms.root") as runner,
    ):
        for key in runner.keys(cycle=False):
            np.testing.assert_array_equal(mine[key].values(), runner[key].values())
    assert (
        uproot.open(tmp_path / "snapshot.root")["ntuple"].num_entries
        == report["snapshot"]["rows"][next(iter(report["datasets"]))]
    )


def test_futures_executor_report(futures_run, run3_dataset):
    report = strict_json((futures_run["out"] / "report.json").read_text())
    assert report["executor"] == "futures"
    assert report["workers"] == 2
    assert report["events"] == 2 * run3_dataset["events"]
    assert report["bytes_read"] > 0
    assert "Dask:" not in futures_run["stderr"]  # no cluster for the futures executor


@pytest.mark.slow
def test_demo_on_a_small_dataset(tmp_path):
    """``tau3mu demo --events N``: generates N data events and their simulation, runs
    them (in this process: one worker needs no cluster), fits with the default engine
    (zfit) and normalises: R and f_B printed beside what was generated. In a fresh
    process, as users run it: TensorFlow is not imported into the test process, where
    ROOT may be."""
    from tau3mu.demo_command import GENERATED_FB, GENERATED_R

    argv = ["demo", "--out", str(tmp_path), "--events", "8000", "--workers", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "tau3mu.cli", *argv], capture_output=True, text=True, timeout=600
    )
    run = {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
    assert run["code"] == 0, run["stderr"][-3000:]
    assert "generating 8,000 events of synthetic run3 data" in run["stdout"]
    assert re.search(r"generating [\d,]+ events of its simulation", run["stdout"])
    assert "executor: iterative (this process), chosen: --workers 1" in run["stderr"]
    assert "Dask:" not in run["stderr"]
    assert "with iterative on 1 worker(s)" in run["stdout"]
    results = tmp_path / "results"
    report = strict_json((results / "report.json").read_text())
    data, simulation = "synthetic_run3_2022", "synthetic_run3_2022_mc"
    assert report["datasets"][simulation]["type"] == "mc"
    generated = strict_json(next((tmp_path / "data").glob("*/truth.json")).read_text())
    assert report["events"] == sum(generated[d]["events"] for d in (data, simulation))
    assert report["workers"] == 1
    fits = strict_json((results / "fit.json").read_text())
    assert {fit["engine"] for fit in fits.values()} == {"zfit"}
    assert fits[data]["result"] == "ok", fits[data]
    truth = report["truth"][data]
    for key, name in (("ds", "n_ds"), ("dplus", "n_dplus")):
        value, error = fits[data]["params"][name]["value"], fits[data]["params"][name]["error"]
        assert abs(value - truth[key]) < 3 * error, (name, value, error, truth[key])
    era = strict_json((results / "normalisation.json").read_text())["eras"]["2022"]
    assert era["status"] == "ok", era["reason"]
    assert f"R   = {era['R']:.3f}" in run["stdout"]
    assert f"generated {GENERATED_R:.3f}" in run["stdout"]
    assert f"generated {GENERATED_FB:.3f}" in run["stdout"]
    for name in ("histograms.root", "snapshot.root", "mass_fit.png", "cutflow.json"):
        assert (results / name).is_file()
    assert (results / "normalisation" / "ratio_per_era.png").is_file()
