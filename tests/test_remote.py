"""The analysis over root:// from a real xrootd server, and on real Dask processes."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from same_output import assert_same_output
from services.dask import dask_cluster_processes as dask_processes
from services.dask import proxy_state
from services.xrootd import xrootd_available, xrootd_server

from tau3mu.cli import main
from tau3mu.execution import run_dask_awkward, run_runner
from tau3mu.processors.dsphipi import DsPhiPiProcessor

needs_xrootd = pytest.mark.skipif(
    not xrootd_available(), reason="xrootd-server not installed (make test installs it)"
)


@pytest.fixture(scope="module")
def served(run3_dataset):
    (spec,) = run3_dataset["datasets"].values()
    with xrootd_server(Path(spec["rootpath"])) as server:
        yield server


def _remote_fileset(run3_dataset, server):
    ((name, spec),) = run3_dataset["datasets"].items()
    files = {server.url(spec["rootpath"] + f): spec["treename"] for f in spec["files"].split()}
    return {name: {"files": files, "metadata": {"type": "data"}}}


@pytest.fixture(scope="module")
def local_result(run3_dataset, fileset_of):
    return run_runner(fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=3000)


@pytest.mark.xrootd
@needs_xrootd
@pytest.mark.parametrize("executor", ["iterative", "futures", "dask"])
def test_runner_over_xrootd_equals_local(executor, served, run3_dataset, local_result, dask_client):
    fileset = _remote_fileset(run3_dataset, served)
    assert next(iter(next(iter(fileset.values()))["files"])).startswith("root://localhost:")
    out = run_runner(
        fileset,
        DsPhiPiProcessor(),
        executor=executor,
        client=dask_client if executor == "dask" else None,
        workers=2,
        chunksize=3000,
    )
    assert_same_output(local_result, out)
    assert out.metrics["bytesread"] > 0


@pytest.mark.xrootd
@needs_xrootd
def test_dask_awkward_over_xrootd_equals_local(served, run3_dataset, local_result, dask_client):
    out = run_dask_awkward(
        _remote_fileset(run3_dataset, served),
        DsPhiPiProcessor(),
        client=dask_client,
        chunksize=3000,
    )
    assert_same_output(local_result, out)


@pytest.mark.xrootd
@needs_xrootd
def test_run_command_with_prefix(served, run3_dataset, tmp_path, local_result):
    """input.json with a local rootpath and --prefix root://host/ reads through the server."""
    (spec,) = run3_dataset["datasets"].values()
    datasets_json = Path(run3_dataset["datasets_json"])
    before = datasets_json.read_bytes()
    code = main(
        [
            "run",
            run3_dataset["datasets_json"],
            "--prefix",
            f"root://localhost:{served.port}/",
            "--out",
            str(tmp_path),
            "--executor",
            "iterative",
            "--no-fit",
            "--no-progress",
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    (files,) = (d["files"] for d in report["datasets"].values())
    local = [spec["rootpath"] + f for f in spec["files"].split()]
    assert files == [f"root://localhost:{served.port}/{path}" for path in local]
    assert json.loads((tmp_path / "cutflow.json").read_text()) == local_result.cutflow
    assert datasets_json.read_bytes() == before  # --prefix does not rewrite the user's file


# -- real dask scheduler and worker processes ---------------------------------------------
@pytest.fixture(scope="module")
def processes():
    with dask_processes(n_workers=2) as cluster:
        yield cluster


@pytest.mark.distributed
def test_run_against_an_existing_scheduler(processes, run3_dataset, tmp_path, local_result):
    code = main(
        [
            "run",
            run3_dataset["datasets_json"],
            "--scheduler",
            processes.address,
            "--out",
            str(tmp_path),
            "--no-fit",
            "--no-progress",
            "--chunksize",
            "3000",
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "cutflow.json").read_text()) == local_result.cutflow
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["workers"] == 2
    assert report["executor"] == "dask"


@pytest.mark.distributed
def test_dask_awkward_mode_on_a_scheduler(
    processes, run3_dataset, tmp_path, local_result, capsys, monkeypatch
):
    """--mode dask-awkward on real worker processes: the Runner's cutflow, the columns the
    graph reads in report.json, and the progress of the cluster's tasks."""
    monkeypatch.setenv("TTY_COMPATIBLE", "0")  # progress as in a log: lines
    argv = ["run", run3_dataset["datasets_json"], "--scheduler", processes.address]
    argv += ["--mode", "dask-awkward", "--out", str(tmp_path), "--no-fit", "--chunksize", "3000"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "cutflow.json").read_text()) == local_result.cutflow
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mode"] == "dask-awkward"
    assert "Cand2MuTrk_mass" in report["columns"]
    assert "Processing: 100%" in capsys.readouterr().out


@pytest.mark.distributed
def test_dask_awkward_progress_follows_its_own_client(
    processes, dask_client, run3_dataset, fileset_of, local_result, capsys, monkeypatch
):
    """The progress bar watches the run's scheduler even when a newer Client of another
    cluster is this process's default (it used to watch that one, and wait forever)."""
    import threading

    from distributed import Client

    monkeypatch.setenv("TTY_COMPATIBLE", "0")  # progress as in a log: lines
    with Client(processes.address) as mine, Client(dask_client.scheduler.address):
        done: dict = {}

        def run():
            done["out"] = run_dask_awkward(
                fileset_of(run3_dataset),
                DsPhiPiProcessor(),
                client=mine,
                chunksize=3000,
                progress=True,
            )

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(timeout=180)
        assert not thread.is_alive(), "the progress bar waits on the wrong scheduler"
    assert_same_output(local_result, done["out"])
    assert "Processing: 100%" in capsys.readouterr().out


@pytest.mark.distributed
def test_performance_report_of_its_own_client(processes, dask_client, tmp_path):
    """The report is the run's scheduler's, even when a newer Client of another cluster is
    this process's default."""
    from distributed import Client

    from tau3mu.pipeline import performance_report_or_warn

    def tau3mu_marker_task(x: int) -> int:  # its name is looked for in the report
        return x + 1

    path = tmp_path / "report.html"
    with (
        Client(processes.address) as mine,
        Client(dask_client.scheduler.address),
        performance_report_or_warn(str(path), mine),
    ):
        assert mine.gather(mine.map(tau3mu_marker_task, range(20))) == list(range(1, 21))
    assert "tau3mu_marker_task" in path.read_text()


@pytest.mark.distributed
def test_run_with_proxy_leaves_none_on_the_workers(processes, run3_dataset, tmp_path, capsys):
    """``tau3mu run --x509-proxy`` on an existing scheduler: the proxy is taken off the
    workers when the run ends, and its content is nowhere in what the run shows or writes."""
    import hashlib

    from distributed import Client

    secret = (
        b"-----BEGIN CERTIFICATE-----\nnot-a-real-proxy-" + os.urandom(8).hex().encode() + b"\n"
    )
    proxy = tmp_path / "x509up_u1000"
    proxy.write_bytes(secret)
    proxy.chmod(0o600)
    out = tmp_path / "out"
    argv = ["run", run3_dataset["datasets_json"], "--scheduler", processes.address]
    argv += ["--out", str(out), "--no-fit", "--no-progress", "--x509-proxy", str(proxy)]
    assert main(argv) == 0
    with Client(processes.address) as client:
        states = client.run(proxy_state)
    assert states
    digest = hashlib.sha256(secret).hexdigest()
    assert not any(s["exists"] or s["sha256"] == digest for s in states.values())
    shown = "".join(capsys.readouterr()) + "".join(p.read_text() for p in out.glob("*.json"))
    assert "not-a-real-proxy" not in shown + processes.logs()


@pytest.mark.distributed
def test_proxy_reaches_every_worker_with_mode_0600(processes, tmp_path, caplog):
    from distributed import Client

    from tau3mu.proxy_plugin import upload_proxy

    secret = (
        b"-----BEGIN CERTIFICATE-----\nnot-a-real-proxy-" + os.urandom(8).hex().encode() + b"\n"
    )
    proxy = tmp_path / "x509up_u1000"
    proxy.write_bytes(secret)
    proxy.chmod(0o600)

    def inspect() -> dict:
        path = os.environ.get("X509_USER_PROXY")
        return {
            "path": path,
            "mode": stat.S_IMODE(os.stat(path).st_mode) if path else None,
            "content": open(path, "rb").read() if path else None,
            "cert_dir": os.environ.get("X509_CERT_DIR"),
        }

    with Client(processes.address) as client:
        plugin = upload_proxy(client, str(proxy), cert_dir="/etc/grid-security/certificates")
        assert secret.decode() not in repr(plugin)
        states = client.run(inspect)
        assert len(states) == 2
        for state in states.values():
            assert state["mode"] == 0o600
            assert state["content"] == secret
            assert state["cert_dir"] == "/etc/grid-security/certificates"
            assert state["path"] != str(proxy)  # the worker's own copy
        # a worker that joins later gets it too
        processes.add_worker()
        client.wait_for_workers(3, timeout=60)
        states = client.run(inspect)
        assert len(states) == 3
        assert all(s["content"] == secret for s in states.values())
    assert secret.decode() not in caplog.text


@pytest.mark.distributed
def test_unreachable_scheduler_fails_fast(tmp_path, run3_dataset, capsys):
    from services.network import free_port

    tic = time.monotonic()
    code = main(
        [
            "run",
            run3_dataset["datasets_json"],
            "--scheduler",
            f"tcp://127.0.0.1:{free_port()}",
            "--out",
            str(tmp_path),
            "--no-fit",
        ]
    )
    assert code == 2
    assert time.monotonic() - tic < 30
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
