"""Bad input and faults, each injected: clear errors, exact skip reports, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from tau3mu.cli import main
from tau3mu.execution import run_runner
from tau3mu.faults import InputFileError
from tau3mu.processors.dsphipi import DsPhiPiProcessor
from tau3mu.synth import simulate
from tau3mu.synth.run3 import run3_branches, write_run3
from tau3mu.testing import dask_cluster_processes as dask_processes
from tau3mu.testing import xrootd_available, xrootd_server


def _write(path: Path, branches: dict) -> Path:
    with uproot.recreate(path) as f:
        types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
        f.mktree("Events", types, counter_name=lambda c: f"n{c}")
        f["Events"].extend(branches)
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return write_run3(tmp_path_factory.mktemp("good") / "good.root", simulate(31, 0, 3000))


def _bad_files(directory: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, expected words in the message)."""
    out = {}
    out["missing"] = (directory / "missing.root", "file not found")
    text = directory / "not_root.root"
    text.write_text("this is not a ROOT file\n" * 100)
    out["not_root"] = (text, "cannot be opened as a ROOT file")
    truncated = directory / "truncated.root"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    out["truncated"] = (truncated, "truncated")
    no_tree = directory / "no_tree.root"
    with uproot.recreate(no_tree) as f:
        f["Other"] = {"x": np.arange(5)}
    out["no_tree"] = (no_tree, "no tree 'Events'")
    branches = run3_branches(simulate(32, 0, 200))
    branches["Muon"] = ak.without_field(branches["Muon"], "isPF")
    out["missing_branch"] = (_write(directory / "missing_branch.root", branches), "Muon_isPF")
    empty = run3_branches(simulate(33, 0, 10))
    out["empty"] = (
        _write(directory / "empty.root", {k: v[:0] for k, v in empty.items()}),
        "empty tree",
    )
    return out


@pytest.fixture(scope="module")
def bad(tmp_path_factory, good):
    return _bad_files(tmp_path_factory.mktemp("bad"), good)


@pytest.mark.parametrize(
    "kind", ["missing", "not_root", "truncated", "no_tree", "missing_branch", "empty"]
)
def test_bad_file_stops_the_run_naming_file_and_problem(kind, bad, good):
    path, words = bad[kind]
    fileset = {"d": {"files": {str(good): "Events", str(path): "Events"}}}
    with pytest.raises(InputFileError) as info:
        run_runner(fileset, DsPhiPiProcessor())
    message = str(info.value)
    assert str(path) in message
    assert words.lower() in message.lower() or (kind == "truncated" and "unreadable" in message)


def test_skip_bad_files_reports_each_and_accounts_for_every_event(bad, good, tmp_path, capsys):
    files = [str(good)] + [str(p) for p, _ in bad.values()]
    code = main(
        [
            "run",
            *files,
            "--tree",
            "Events",
            "--out",
            str(tmp_path),
            "--executor",
            "iterative",
            "--skip-bad-files",
            "--no-fit",
            "--no-progress",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    report = json.loads((tmp_path / "report.json").read_text())
    accounting = report["accounting"]
    skipped = {Path(s["file"]).name for s in accounting["skipped_files"]}
    assert skipped == {p.name for p, _ in bad.values()}
    for path, _ in bad.values():
        assert f"SKIPPED file {path}" in err
    assert accounting["balanced"]
    assert accounting["input_events"] == 3000 == accounting["processed_events"]
    cutflow = json.loads((tmp_path / "cutflow.json").read_text())
    assert cutflow["files"]["events"]["events"] == 3000


def test_failing_chunk_is_skipped_and_counted(tmp_path, good):
    """A chunk with unequal per-candidate vectors (Run 2) is reported with its events."""
    pytest.importorskip("ROOT")
    from tau3mu.synth import run2

    original = run2.run2_columns

    def corrupt(*args, **kwargs):
        columns = original(*args, **kwargs)
        kind, (offsets, data) = columns["Tr_Pt"]
        event = 150 + int(np.flatnonzero(np.diff(offsets)[150:] > 1)[0])
        keep = np.ones(len(data), dtype=bool)
        keep[offsets[event]] = False
        new = offsets.copy()
        new[event + 1 :] -= 1
        columns["Tr_Pt"] = (kind, (new, np.ascontiguousarray(data[keep])))
        return columns

    run2.run2_columns = corrupt
    try:
        path = run2.write_run2(tmp_path / "corrupt.root", simulate(2, 0, 400), seed=2)
    finally:
        run2.run2_columns = original
    fileset = {"d": {"files": {str(path): "Tree3Mu/ntuple"}}}
    out = run_runner(fileset, DsPhiPiProcessor(), chunksize=100, skip_bad_files=True, retries=0)
    accounting = out.metrics["accounting"]
    assert accounting["balanced"]
    (chunk,) = accounting["skipped_chunks"]
    assert chunk["entries"] == [100, 200]
    assert chunk["events"] == 100
    assert "Tr_Pt" in chunk["error"]
    assert out.cutflow["d"]["events"]["events"] == 300


def test_nan_inf_and_placeholders_do_not_crash(tmp_path):
    events = simulate(41, 0, 1000)
    c = events.candidates.columns
    c["vtx_chi2"][::7] = np.nan
    c["flight_sig"][::11] = np.inf
    c["mass"][::13] = np.nan
    c["mu1_refit_pt"][::5] = -99.0
    path = write_run3(tmp_path / "weird.root", events)
    out = run_runner({"d": {"files": {str(path): "Events"}}}, DsPhiPiProcessor())
    mass = ak.to_numpy(out.snapshot["d"]["BestTriplet_mass"])
    assert np.all(np.isfinite(mass))
    assert np.all(np.isfinite(ak.to_numpy(out.snapshot["d"]["BestTriplet_vtx_chi2"])))
    assert out.cutflow["d"]["events"]["events"] == 1000


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            '{"d": {"rootpath": "/x/", "flies": "a.root", "treename": "Events"}}',
            "did you mean 'files'",
        ),
        ('{"d": {"rootpath": "/x/", "treename": "Events"}}', "missing key(s) ['files']"),
        (
            '{"d": {"rootpath": "/x/", "files": "a.root", "treename": "Events", "type": "MC"}}',
            "'type' must be",
        ),
        ('{"d": {"rootpath": "/x/", "files": "a.root",, "treename": "Events"}}', "line 1, column"),
    ],
)
def test_datasets_json_mistakes(tmp_path, content, words, capsys):
    config = tmp_path / "input.json"
    config.write_text(content)
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "input.json" in err


# -- faults while running ----------------------------------------------------------------
@pytest.mark.xrootd
@pytest.mark.skipif(not xrootd_available(), reason="xrootd-server not installed")
def test_xrootd_restart_during_run_is_retried(run3_dataset, fileset_of):
    reference = run_runner(fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=1000)
    ((name, spec),) = run3_dataset["datasets"].items()
    with xrootd_server(Path(spec["rootpath"])) as server:
        files = {server.url(spec["rootpath"] + f): "Events" for f in spec["files"].split()}
        fileset = {name: {"files": files, "metadata": {"type": "data"}}}

        def bounce():
            time.sleep(1.0)
            server.stop()
            time.sleep(2.0)
            server.start()

        slow = DsPhiPiProcessor()
        original = slow.process

        def process(events):
            time.sleep(0.3)  # make the run long enough to span the outage
            return original(events)

        slow.process = process
        thread = threading.Thread(target=bounce)
        thread.start()
        out = run_runner(fileset, slow, chunksize=1000, retries=5, xrootd_timeout=10)
        thread.join()
    assert out.cutflow == reference.cutflow
    np.testing.assert_array_equal(out.hists["h_mass"].values(), reference.hists["h_mass"].values())


@pytest.mark.distributed
def test_worker_killed_mid_run_gives_the_same_result(run3_dataset, fileset_of):
    from distributed import Client

    reference = run_runner(fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=500)
    with dask_processes(n_workers=2) as cluster, Client(cluster.address) as client:
        victim = cluster.workers[0]

        def kill():
            time.sleep(4.0)
            os.kill(victim.pid, signal.SIGKILL)
            cluster.add_worker()

        thread = threading.Thread(target=kill)
        slow = DsPhiPiProcessor()
        original = slow.process

        def process(events):
            time.sleep(0.5)
            return original(events)

        slow.process = process
        thread.start()
        out = run_runner(
            fileset_of(run3_dataset), slow, executor="dask", client=client, chunksize=500
        )
        thread.join()
        assert victim.poll() is not None  # it really died
    assert out.cutflow == reference.cutflow
    np.testing.assert_array_equal(out.hists["h_mass"].values(), reference.hists["h_mass"].values())


RESUMABLE = """
import signal, sys, time
import numpy as np
from tau3mu.datasets import load_datasets, to_fileset
from tau3mu.execution import run_runner
from tau3mu.outputs import write_json
from tau3mu.processors.dsphipi import DsPhiPiProcessor

# a shell that starts a job in the background has it ignore SIGINT; Ctrl-C is what we test
signal.signal(signal.SIGINT, signal.default_int_handler)


class Slow(DsPhiPiProcessor):
    def process(self, events):
        time.sleep(float(sys.argv[4]))
        return super().process(events)

out = run_runner(to_fileset(load_datasets(sys.argv[1])), Slow(), chunksize=300, checkpoint=sys.argv[2])
write_json(sys.argv[3] + ".json", out.cutflow)
np.save(sys.argv[3] + ".npy", out.hists["h_mass"].values())
"""


def test_interrupted_run_resumes_from_checkpoints(run3_dataset, fileset_of, tmp_path):
    """Ctrl-C (SIGINT) to the client mid-run; the rerun skips finished chunks, same result."""
    script = tmp_path / "resumable.py"
    script.write_text(RESUMABLE)
    checkpoints = tmp_path / "ckpt"
    args = [
        sys.executable,
        str(script),
        run3_dataset["datasets_json"],
        str(checkpoints),
        str(tmp_path / "out"),
    ]
    first = subprocess.Popen([*args, "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(checkpoints.rglob("*.pkl"))) < 8:
        time.sleep(0.1)
    # Ctrl-C, again if needed: Python drops a KeyboardInterrupt that lands in a __del__
    # (it prints "Exception ignored"), and a user would press it a second time
    for _ in range(5):
        first.send_signal(signal.SIGINT)
        try:
            first.wait(3)
            break
        except subprocess.TimeoutExpired:
            continue
    first.wait(60)
    assert first.returncode != 0, first.stderr.read().decode()[-2000:]
    done = len(list(checkpoints.rglob("*.pkl")))
    total = run3_dataset["events"] // 300
    assert 8 <= done < total
    assert not (tmp_path / "out.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in checkpoints.rglob("*.pkl")}
    second = subprocess.run([*args, "0.3"], capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    # the finished chunks were loaded, not recomputed and rewritten; the rest were added
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    assert len(list(checkpoints.rglob("*.pkl"))) == total
    clean = run_runner(fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=300)
    assert json.loads((tmp_path / "out.json").read_text()) == clean.cutflow
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), clean.hists["h_mass"].values())
