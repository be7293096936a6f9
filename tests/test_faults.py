"""Bad input and faults, each injected: clear errors, exact skip reports, nothing lost."""

from __future__ import annotations

import json
import logging
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
from services.dask import dask_cluster_processes as dask_processes
from services.xrootd import xrootd_available, xrootd_server

from tau3mu.accounting import AccountingError, check_accounting
from tau3mu.chunks import ChunkError
from tau3mu.cli import main
from tau3mu.execution import run_runner
from tau3mu.inspection import InputFileError, inspect_inputs
from tau3mu.processors.dsphipi import DsPhiPiProcessor
from tau3mu.synth import simulate
from tau3mu.synth.run3 import run3_branches, write_run3


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
    branches["Muon"] = ak.without_field(branches["Muon"], "isMedium")
    out["missing_branch"] = (_write(directory / "missing_branch.root", branches), "Muon_isMedium")
    loop = directory / "loop.root"
    loop.symlink_to(directory / "loop_back.root")
    (directory / "loop_back.root").symlink_to(loop)
    out["symlink_loop"] = (loop, "too many levels of symbolic links")
    folder = directory / "folder.root"
    folder.mkdir()
    out["folder"] = (folder, "cannot be opened as a ROOT file")
    return out


@pytest.fixture(scope="module")
def bad(tmp_path_factory, good):
    return _bad_files(tmp_path_factory.mktemp("bad"), good)


@pytest.mark.parametrize(
    "kind",
    ["missing", "not_root", "truncated", "no_tree", "missing_branch", "symlink_loop", "folder"],
)
def test_bad_file_stops_the_run_naming_file_and_problem(kind, bad, good):
    path, words = bad[kind]
    fileset = {"d": {"files": {str(good): "Events", str(path): "Events"}}}
    with pytest.raises(InputFileError) as info:
        run_runner(fileset, DsPhiPiProcessor())
    message = str(info.value)
    assert str(path) in message
    assert words.lower() in message.lower() or (kind == "truncated" and "unreadable" in message)


def test_a_cut_root_written_run2_file_is_one_line(run2_files, tmp_path, capsys):
    """A Run 2 file cut short loses the keys and class descriptions ROOT writes at its
    end; uproot's error spans lines, the command's message does not."""
    cut = tmp_path / "cut.root"
    good = Path(run2_files[0])
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    code = main(["run", str(cut), "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("tau3mu run: ")
    assert str(cut) in line


def test_skip_bad_files_reports_each_and_accounts_for_every_event(bad, good, tmp_path, capsys):
    # a folder given as a path on the command line is a folder of inputs, not a bad file
    bad = {kind: entry for kind, entry in bad.items() if kind != "folder"}
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
    captured = capsys.readouterr()
    err = captured.err
    report = json.loads((tmp_path / "report.json").read_text())
    accounting = report["accounting"]
    skipped = {Path(s["file"]).name for s in accounting["skipped_files"]}
    assert skipped == {p.name for p, _ in bad.values()}
    for path, _ in bad.values():
        assert f"SKIPPED file {path}" in err
    assert accounting["balanced"]
    assert accounting["usable_events"] == 3000 == accounting["processed_events"]
    # files whose tree could be read are counted with their events, the rest as unknown
    events = {Path(s["file"]).name: s["events"] for s in accounting["skipped_files"]}
    assert events["missing_branch.root"] == 200
    assert events["missing.root"] is None
    assert events["not_root.root"] is None
    assert accounting["unreadable_files"] == sum(e is None for e in events.values())
    known = sum(e or 0 for e in events.values())
    assert accounting["skipped_file_events"] == known
    assert accounting["input_events"] == 3000 + known
    assert f"accounting: {3000 + known:,} input events = 3,000 processed" in captured.out
    cutflow = json.loads((tmp_path / "cutflow.json").read_text())
    assert cutflow["files"]["events"]["events"] == 3000


def _assert_the_corrupt_chunk_skipped(accounting: dict) -> None:
    """Exactly the chunk holding the short Tr_Pt vector, with its 100 events."""
    assert accounting["balanced"]
    (chunk,) = accounting["skipped_chunks"]
    assert chunk["entries"] == [100, 200]
    assert chunk["events"] == 100
    assert "Tr_Pt" in chunk["error"]


def test_failing_chunk_is_skipped_and_counted(corrupt_run2):
    """A chunk with unequal per-candidate vectors (Run 2) is reported with its events."""
    fileset = {"d": {"files": {str(corrupt_run2): "Tree3Mu/ntuple"}}}
    out = run_runner(fileset, DsPhiPiProcessor(), chunksize=100, skip_bad_files=True, retries=0)
    _assert_the_corrupt_chunk_skipped(out.metrics["accounting"])
    assert out.cutflow["d"]["events"]["events"] == 300


def test_failing_chunk_stops_the_run_naming_file_and_entries_without_retrying(corrupt_run2, caplog):
    """A failure of the file itself fails the same way every time: no retries, and a
    message with the file, the chunk's entries and the cause."""
    fileset = {"d": {"files": {str(corrupt_run2): "Tree3Mu/ntuple"}}}
    with (
        caplog.at_level(logging.WARNING, logger="tau3mu.chunks"),
        pytest.raises(ChunkError) as info,
    ):
        run_runner(fileset, DsPhiPiProcessor(), chunksize=100, retries=3)
    message = str(info.value)
    assert message.startswith(f"{corrupt_run2} entries 100-200: ")
    assert "Tr_Pt" in message
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


def test_cli_names_the_failing_chunk_without_a_traceback(corrupt_run2, tmp_path, capsys):
    (tmp_path / "report.json").write_text("{}")  # an earlier, complete run's
    code = main(
        [
            "run",
            str(corrupt_run2),
            "--tree",
            "Tree3Mu/ntuple",
            "--out",
            str(tmp_path),
            "--executor",
            "iterative",
            "--chunksize",
            "100",
            "--no-fit",
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"{corrupt_run2} entries 100-200" in err
    assert "Traceback" not in err
    # the folder no longer claims a complete run
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize("skip", [False, True], ids=["stop", "skip"])
def test_dask_awkward_names_or_skips_the_failing_chunk(skip, corrupt_run2):
    """A failed graph does not say which chunk failed; the run still names it (file and
    entries), or skips exactly it, as the Runner does."""
    from tau3mu.execution import run_dask_awkward

    fileset = {"d": {"files": {str(corrupt_run2): "Tree3Mu/ntuple"}}}
    if not skip:
        with pytest.raises(ChunkError) as info:
            run_dask_awkward(fileset, DsPhiPiProcessor(), chunksize=100)
        assert str(info.value).startswith(f"{corrupt_run2} entries 100-200: ")
        assert "Tr_Pt" in str(info.value)
        return
    out = run_dask_awkward(fileset, DsPhiPiProcessor(), chunksize=100, skip_bad_files=True)
    runner = run_runner(fileset, DsPhiPiProcessor(), chunksize=100, skip_bad_files=True)
    _assert_the_corrupt_chunk_skipped(out.metrics["accounting"])
    assert out.cutflow == runner.cutflow
    np.testing.assert_array_equal(out.hists["h_mass"].values(), runner.hists["h_mass"].values())


def test_skipped_chunks_are_not_checkpointed(corrupt_run2, tmp_path):
    """A resumed run tries a skipped chunk again: it stops if the user no longer skips."""
    fileset = {"d": {"files": {str(corrupt_run2): "Tree3Mu/ntuple"}}}
    checkpoint = str(tmp_path / "ckpt")
    first = run_runner(
        fileset, DsPhiPiProcessor(), chunksize=100, skip_bad_files=True, checkpoint=checkpoint
    )
    assert len(first.metrics["accounting"]["skipped_chunks"]) == 1
    assert len(list((tmp_path / "ckpt").rglob("*.pkl"))) == 3
    again = run_runner(
        fileset, DsPhiPiProcessor(), chunksize=100, skip_bad_files=True, checkpoint=checkpoint
    )
    assert again.metrics["accounting"]["resumed_chunks"] == 3
    assert (
        again.metrics["accounting"]["skipped_chunks"]
        == first.metrics["accounting"]["skipped_chunks"]
    )
    assert again.cutflow == first.cutflow
    with pytest.raises(ChunkError, match="entries 100-200"):
        run_runner(fileset, DsPhiPiProcessor(), chunksize=100, checkpoint=checkpoint)


def test_accounting_that_does_not_add_up_is_an_error(good):
    inspection = inspect_inputs({"d": {"files": {str(good): "Events"}}})
    cutflow = {"d": {"events": {"events": 2999, "candidates": 0}}}
    with pytest.raises(AccountingError, match="2999 processed"):
        check_accounting(inspection, cutflow, [])
    skipped = [{"file": str(good), "entries": [0, 1], "events": 1, "error": "x"}]
    assert check_accounting(inspection, cutflow, skipped)["balanced"]


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
            "'flies' is given: a misspelling of 'files'?",
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


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--dataset", "DsPhiPi"], "--dataset DsPhiPi selects datasets of a datasets JSON"),
        (["--mode", "dask-awkward", "--checkpoint", "ckpt"], "--checkpoint needs --mode runner"),
    ],
)
def test_options_a_run_would_ignore_are_refused(extra, words, good, tmp_path, capsys):
    args = ["run", str(good), "--tree", "Events", "--out", str(tmp_path / "out"), *extra]
    assert main(args) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.json").exists()


# -- faults while running ----------------------------------------------------------------
@pytest.fixture
def exported_run3(run3_dataset, tmp_path_factory):
    """(name, folder, files) of ``run3_dataset`` linked into a folder outside pytest's
    base temporary folder, for a server that is restarted: as root the server reads as
    another account, and pytest takes that account's access to its base folder away
    (mode 0700) whenever a session starts, which on a shared machine can be mid-test."""
    import shutil
    import tempfile

    ((name, spec),) = run3_dataset["datasets"].items()
    folder = Path(tempfile.mkdtemp(prefix="tau3mu-export-"))
    files = spec["files"].split()
    try:
        for file in files:
            try:
                os.link(spec["rootpath"] + file, folder / file)
            except OSError:  # another file system
                shutil.copy(spec["rootpath"] + file, folder / file)
        yield name, folder, files
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.xrootd
@pytest.mark.skipif(not xrootd_available(), reason="xrootd-server not installed")
@pytest.mark.parametrize("skip_bad_files", [False, True], ids=["stop", "skip"])
def test_xrootd_restart_during_run_is_retried(
    skip_bad_files, run3_dataset, exported_run3, fileset_of, monkeypatch, caplog
):
    """The server goes away for ~3 s mid-run. The XRootD client is told to give up after
    ~1 s, so our retries (1, 2, 4 s apart), not the client's, must bridge the outage,
    also when the user asked to skip bad files: an outage is not a bad file."""
    from tau3mu.xrootd import configure_xrootd_client

    reference = run_runner(fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=1000)
    name, folder, names = exported_run3
    try:
        # a run keeps the settings this process chose (here: give up after ~1 s)
        configure_xrootd_client(connection_window=1, connection_retry=1)
        with xrootd_server(folder) as server:
            files = {server.url(folder / f): "Events" for f in names}
            fileset = {name: {"files": files, "metadata": {"type": "data"}}}

            def bounce():
                time.sleep(1.0)
                server.stop()
                time.sleep(3.0)
                server.start()

            slow = DsPhiPiProcessor()
            original = slow.process

            def process(events):
                time.sleep(0.3)  # make the run long enough to span the outage
                return original(events)

            slow.process = process
            thread = threading.Thread(target=bounce)
            thread.start()
            with caplog.at_level(logging.WARNING, logger="tau3mu.chunks"):
                out = run_runner(
                    fileset,
                    slow,
                    chunksize=1000,
                    retries=5,
                    xrootd_timeout=10,
                    skip_bad_files=skip_bad_files,
                )
            thread.join()
    finally:
        configure_xrootd_client()
    delays = [
        float(r.getMessage().rsplit("retrying in ", 1)[1].split()[0])
        for r in caplog.records
        if "retrying in" in r.getMessage()
    ]
    assert delays, "the outage should have failed some attempts"
    assert delays == [2.0**i for i in range(len(delays))]  # 1, 2, 4 ... s
    assert out.metrics["accounting"]["skipped_chunks"] == []
    assert out.cutflow == reference.cutflow
    np.testing.assert_array_equal(out.hists["h_mass"].values(), reference.hists["h_mass"].values())


def _slowed(processor_instance: DsPhiPiProcessor, markers: Path, seconds: float) -> None:
    """Make each chunk leave a marker file when it starts, then take ``seconds`` longer
    (in whichever process runs it), so that a run spans an outage started mid-run."""
    original = processor_instance.process

    def process(events):
        meta = events.metadata
        (markers / f"{Path(meta['filename']).stem}-{meta['entrystart']}.{os.getpid()}").touch()
        time.sleep(seconds)
        return original(events)

    processor_instance.process = process


WORKER_SETTINGS = """
import json, sys
from XRootD.client import EnvGetInt
from tau3mu.chunks import retry_chunk
from tau3mu.xrootd import XROOTD_CLIENT_SETTINGS

before = {k: EnvGetInt(k) for k in XROOTD_CLIENT_SETTINGS}
retry_chunk(0, False, lambda: None)  # what a worker runs first, for every chunk
after = {k: EnvGetInt(k) for k in XROOTD_CLIENT_SETTINGS}
print(json.dumps({"before": before, "after": after}))
"""


def test_a_fresh_worker_process_gets_the_xrootd_settings_before_its_first_chunk(monkeypatch):
    """A futures or Dask worker is a process of its own that starts with the XRootD
    client's defaults (minutes of waiting after an outage); running a chunk sets tau3mu's
    values there, except the ones the user set as ``XRD_*`` environment variables."""
    pytest.importorskip("XRootD")
    from tau3mu.xrootd import XROOTD_CLIENT_SETTINGS

    for key in XROOTD_CLIENT_SETTINGS:
        monkeypatch.delenv(f"XRD_{key.upper()}", raising=False)
    monkeypatch.setenv("XRD_CONNECTIONRETRY", "9")  # the user's own value wins
    done = subprocess.run(
        [sys.executable, "-c", WORKER_SETTINGS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"]["ConnectionWindow"] == 120  # the client's default
    assert seen["after"] == {**XROOTD_CLIENT_SETTINGS, "ConnectionRetry": 9}


@pytest.mark.xrootd
@pytest.mark.skipif(not xrootd_available(), reason="xrootd-server not installed")
def test_xrootd_outage_costs_about_its_own_length(exported_run3, tmp_path, monkeypatch, caplog):
    """The server is stopped for 4 s once a few chunks have started (futures executor, 2
    worker processes, which get tau3mu's XRootD client settings themselves): the result
    is the clean run's and the run takes at most ``outage + one reconnection interval``
    longer (the client retries every ``ConnectionWindow`` seconds, then resumes its
    reads). The machine is shared and noisy, so the bound has a generous 3x margin; with
    the client's defaults a worker waited ~2 min, far outside it."""
    from tau3mu.xrootd import XROOTD_CLIENT_SETTINGS

    for key in XROOTD_CLIENT_SETTINGS:  # the test measures tau3mu's settings, not the user's
        monkeypatch.delenv(f"XRD_{key.upper()}", raising=False)
    outage = 4.0
    interval = XROOTD_CLIENT_SETTINGS["ConnectionWindow"]
    name, folder, names = exported_run3
    with xrootd_server(folder) as server:
        files = {server.url(folder / f): "Events" for f in names}
        fileset = {name: {"files": files, "metadata": {"type": "data"}}}

        def timed_run(markers: Path):
            slow = DsPhiPiProcessor()
            _slowed(slow, markers, 0.4)
            tic = time.monotonic()
            out = run_runner(fileset, slow, executor="futures", workers=2, chunksize=500)
            return out, time.monotonic() - tic

        for markers in ("clean", "outage"):
            (tmp_path / markers).mkdir()
        reference, clean_s = timed_run(tmp_path / "clean")
        outages: list[float] = []

        def bounce(markers: Path):
            deadline = time.monotonic() + 120
            while len(list(markers.iterdir())) < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            stopped = time.monotonic()
            server.stop()
            time.sleep(outage)
            server.start()
            outages.append(time.monotonic() - stopped)

        thread = threading.Thread(target=bounce, args=(tmp_path / "outage",))
        thread.start()
        try:
            with caplog.at_level(logging.WARNING, logger="tau3mu.chunks"):
                out, faulty_s = timed_run(tmp_path / "outage")
        finally:
            thread.join()
    (down,) = outages
    chunks = len(list((tmp_path / "outage").iterdir()))
    assert chunks > 4 + 2, "the outage should have begun before most chunks started"
    assert out.metrics["accounting"]["skipped_chunks"] == []
    assert out.cutflow == reference.cutflow
    np.testing.assert_array_equal(out.hists["h_mass"].values(), reference.hists["h_mass"].values())
    extra = faulty_s - clean_s
    assert extra <= 3 * (down + interval), (
        f"a {down:.1f} s outage made the run {extra:.1f} s longer ({clean_s:.1f} s clean, "
        f"{faulty_s:.1f} s with the outage); bound 3 x ({down:.1f} + {interval}) s"
    )


@pytest.mark.distributed
def test_worker_killed_mid_chunk_has_its_chunk_recomputed(run3_dataset, fileset_of, tmp_path):
    """SIGKILL the worker process while it is inside a chunk: another worker computes
    that chunk again, and the result is the clean run's."""
    from distributed import Client

    reference = run_runner(fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=1000)
    markers = tmp_path / "started"
    markers.mkdir()
    slow = DsPhiPiProcessor()
    original = slow.process

    def process(events):
        meta = events.metadata
        chunk = f"{Path(meta['filename']).stem}-{meta['entrystart']}"
        (markers / f"{chunk}.{os.getpid()}").touch()
        time.sleep(1.0)
        return original(events)

    slow.process = process
    killed: list[tuple[str, int]] = []

    def kill_the_first_busy_worker(workers: set[int]):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # only the cluster's worker processes: never this one
            started = sorted(p for p in markers.iterdir() if int(p.suffix[1:]) in workers)
            if started:
                chunk, pid = started[0].name.rsplit(".", 1)
                os.kill(int(pid), signal.SIGKILL)
                killed.append((chunk, int(pid)))
                return
            time.sleep(0.02)

    with dask_processes(n_workers=2) as cluster, Client(cluster.address) as client:
        workers = set(client.run(os.getpid).values())
        thread = threading.Thread(target=kill_the_first_busy_worker, args=(workers,))
        thread.start()
        out = run_runner(
            fileset_of(run3_dataset), slow, executor="dask", client=client, chunksize=1000
        )
        thread.join()
    assert killed, f"no chunk started on a worker process: {sorted(markers.iterdir())}"
    ((chunk, pid),) = killed
    runs = {int(p.name.rsplit(".", 1)[1]) for p in markers.glob(f"{chunk}.*")}
    assert pid in runs
    assert runs - {pid}, "the killed worker's chunk was not computed again"
    assert out.cutflow == reference.cutflow
    np.testing.assert_array_equal(out.hists["h_mass"].values(), reference.hists["h_mass"].values())


def _changed(change: str, fileset: dict, pog_sf_file: Path) -> tuple[dict, DsPhiPiProcessor]:
    """The same files, with one thing a chunk's output depends on changed."""
    from dataclasses import replace

    from tau3mu.config import SelectionConfig
    from tau3mu.corrections import MuonScaleFactors

    ((name, spec),) = fileset.items()
    if change == "scale factors":
        return fileset, DsPhiPiProcessor(scale_factors=MuonScaleFactors(pog_sf_file))
    if change == "a cut":
        config = SelectionConfig()
        config = replace(config, run3=replace(config.run3, min_flight_significance=4.0))
        return fileset, DsPhiPiProcessor(config)
    if change == "dataset metadata":
        metadata = {**spec["metadata"], "lumi": 2 * float(spec["metadata"].get("lumi", 1.0))}
        return {name: {**spec, "metadata": metadata}}, DsPhiPiProcessor()
    raise ValueError(change)


@pytest.mark.parametrize("change", ["scale factors", "a cut", "dataset metadata"])
def test_checkpoints_of_another_setup_are_not_reused(
    change, run3_dataset, fileset_of, pog_sf_file, tmp_path
):
    """A checkpoint is reused only by a run whose chunks would give the same output."""
    fileset = fileset_of(run3_dataset, type="mc", lumi=1.0)
    checkpoint = str(tmp_path / "ckpt")
    first = run_runner(fileset, DsPhiPiProcessor(), chunksize=3000, checkpoint=checkpoint)
    chunks = len(list((tmp_path / "ckpt").rglob("*.pkl")))
    assert chunks == 4
    assert first.metrics["accounting"]["resumed_chunks"] == 0

    changed_fileset, changed = _changed(change, fileset, pog_sf_file)
    fresh = run_runner(changed_fileset, changed, chunksize=3000)
    second = run_runner(changed_fileset, changed, chunksize=3000, checkpoint=checkpoint)
    assert second.metrics["accounting"]["resumed_chunks"] == 0
    assert len(list((tmp_path / "ckpt").rglob("*.pkl"))) == 2 * chunks
    third = run_runner(changed_fileset, changed, chunksize=3000, checkpoint=checkpoint)
    assert third.metrics["accounting"]["resumed_chunks"] == chunks
    for out in (second, third):
        assert out.cutflow == fresh.cutflow
        for hist_name, hist in fresh.hists.items():
            np.testing.assert_array_equal(out.hists[hist_name].values(), hist.values())
    if change == "scale factors":  # what a stale checkpoint would have hidden
        assert third.scale_factors == fresh.scale_factors != first.scale_factors


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


def test_killed_cli_run_resumes_from_checkpoints(run3_dataset, tmp_path):
    """``tau3mu run --checkpoint`` killed with SIGKILL mid-run, then started again: the
    finished chunks are loaded (and said so), the result is a clean run's."""
    checkpoint = tmp_path / "ckpt"
    command = [
        sys.executable,
        "-m",
        "tau3mu.cli",
        "run",
        run3_dataset["datasets_json"],
        "--executor",
        "iterative",
        "--chunksize",
        "200",
        "--no-fit",
        "--no-progress",
    ]
    first = subprocess.Popen(
        [*command, "--out", str(tmp_path / "killed"), "--checkpoint", str(checkpoint)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(checkpoint.rglob("*.pkl"))) < 5:
        time.sleep(0.005)
    first.send_signal(signal.SIGSTOP)  # freeze it at once, then kill it
    first.kill()
    first.wait(30)
    done = len(list(checkpoint.rglob("*.pkl")))
    total = run3_dataset["events"] // 200
    assert 5 <= done < total
    assert not (tmp_path / "killed" / "report.json").exists()

    resumed = subprocess.run(
        [*command, "--out", str(tmp_path / "resumed"), "--checkpoint", str(checkpoint)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"; {done} chunk(s) resumed from the checkpoint" in resumed.stdout
    report = json.loads((tmp_path / "resumed" / "report.json").read_text())
    assert report["accounting"]["resumed_chunks"] == done
    clean = subprocess.run(
        [*command, "--out", str(tmp_path / "clean")], capture_output=True, timeout=300
    )
    assert clean.returncode == 0
    assert json.loads((tmp_path / "resumed" / "cutflow.json").read_text()) == json.loads(
        (tmp_path / "clean" / "cutflow.json").read_text()
    )


def _failing_once(flag: Path, entrystart: int) -> DsPhiPiProcessor:
    """The analysis, except that the chunk of the second file starting at ``entrystart``
    fails (after a pause, so that the other chunks can finish) while ``flag`` exists. Its
    checkpoints are the plain processor's: the same class, cuts and options."""
    failing = DsPhiPiProcessor()
    original = failing.process

    def process(events):
        meta = events.metadata
        if (
            flag.exists()
            and meta["entrystart"] == entrystart
            and meta["filename"] == flag.read_text()
        ):
            time.sleep(2.0)
            raise RuntimeError("injected failure")
        return original(events)

    failing.process = process
    return failing


@pytest.mark.distributed
@pytest.mark.parametrize("executor", ["iterative", "futures", "dask"])
def test_stopped_run_resumes_from_checkpoints_on_every_executor(
    executor, run3_dataset, run3_files, fileset_of, dask_client, tmp_path
):
    """A run stopped by a failing chunk keeps the chunks it finished; the rerun (same
    processor, cuts and files) loads them, unchanged, computes the rest, and gives the
    clean run's cutflow and histograms. On the iterative and futures executors and on Dask
    workers (a real LocalCluster)."""
    fileset = fileset_of(run3_dataset)
    clean = run_runner(fileset, DsPhiPiProcessor(), chunksize=1000)
    total = run3_dataset["events"] // 1000
    flag = tmp_path / "fail"
    flag.write_text(run3_files[1])
    checkpoint = tmp_path / "ckpt"
    how = {
        "executor": executor,
        "workers": 2,
        "client": dask_client if executor == "dask" else None,
        "chunksize": 1000,
        "checkpoint": str(checkpoint),
        "retries": 0,
    }
    with pytest.raises(ChunkError, match=r"entries 5000-6000") as info:
        run_runner(fileset, _failing_once(flag, 5000), **how)
    assert run3_files[1] in str(info.value)
    finished = {p: p.stat().st_mtime_ns for p in checkpoint.rglob("*.pkl")}
    assert 1 <= len(finished) < total

    flag.unlink()
    resumed = run_runner(fileset, DsPhiPiProcessor(), **how)
    assert resumed.metrics["accounting"]["resumed_chunks"] == len(finished)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # loaded, not rewritten
    assert len(list(checkpoint.rglob("*.pkl"))) == total
    assert resumed.cutflow == clean.cutflow
    for name, hist in clean.hists.items():
        np.testing.assert_array_equal(resumed.hists[name].values(), hist.values(), err_msg=name)


@pytest.mark.distributed
def test_cli_checkpoint_with_the_default_executor(run3_dataset, tmp_path):
    """``tau3mu run --checkpoint`` with its default executor (a local Dask cluster): the
    workers save every chunk; a second run loads them all and writes the same outputs."""
    checkpoint = tmp_path / "ckpt"
    command = [sys.executable, "-m", "tau3mu.cli", "run", run3_dataset["datasets_json"]]
    command += ["--workers", "2", "--chunksize", "2000", "--no-fit", "--no-progress"]
    command += ["--checkpoint", str(checkpoint)]
    total = run3_dataset["events"] // 2000
    reports = []
    for run in ("first", "second"):
        done = subprocess.run(
            [*command, "--out", str(tmp_path / run)], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Dask: local cluster of 2 workers" in done.stderr
        reports.append(json.loads((tmp_path / run / "report.json").read_text()))
        assert len(list(checkpoint.rglob("*.pkl"))) == total
    assert reports[0]["executor"] == reports[1]["executor"] == "dask"
    assert [r["accounting"]["resumed_chunks"] for r in reports] == [0, total]
    assert f"; {total} chunk(s) resumed from the checkpoint" in done.stdout
    for name in ("cutflow.json", "histograms.pkl"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer from cause
    except BaseException as err:
        return err


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (TimeoutError("read timed out"), True),
        (OSError("[ERROR] Socket error"), True),
        (ValueError("I/O operation on closed file"), True),  # fsspec-xrootd after a restart
        (_raised_from(RuntimeError("chunk failed"), ConnectionResetError("reset")), True),
        (FileNotFoundError("gone"), False),
        (OSError("[FATAL] [3011] No such file or directory"), False),
        (OSError("[3010] not authorized"), False),
        (_raised_from(OSError("read failed"), PermissionError("denied")), False),
        (ValueError("bad basket"), False),
        (KeyError("Tr_Pt"), False),
    ],
)
def test_one_rule_for_what_is_worth_retrying(error, transient):
    """The Runner's chunk retries and the XRootD opens judge a failure by one rule."""
    from tau3mu import chunks, xrootd
    from tau3mu.retries import is_transient

    assert is_transient(error) is transient
    assert chunks.is_transient is xrootd.with_retries.__globals__["is_transient"] is is_transient
