"""Real ``dask scheduler`` / ``dask worker`` processes: connecting, the grid proxy on every
worker, the package on workers that lack it."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
import time

import pytest
from services.dask import dask_cluster_processes, proxy_state
from services.network import free_port

from tau3mu.cluster import (
    ClusterError,
    close_client,
    ensure_package_on_workers,
    htcondor_cluster,
    make_client,
    pickled_by_value,
)
from tau3mu.credentials import (
    DEFAULT_CERT_DIR,
    ProxyError,
    ProxyWarning,
    proxy_environment,
    read_proxy,
)
from tau3mu.local_workers import LOCAL_WORKER_SATURATION, WARM_MODULES, local_cluster
from tau3mu.proxy_plugin import X509ProxyPlugin, remove_proxy, upload_proxy

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def processes():
    with dask_cluster_processes(n_workers=2) as cluster:
        yield cluster


@pytest.fixture
def proxy(tmp_path):
    secret = (
        b"-----BEGIN CERTIFICATE-----\nnot-a-real-proxy-"
        + os.urandom(12).hex().encode()
        + b"\n-----END\n"
    )
    path = tmp_path / "x509up_u1000"
    path.write_bytes(secret)
    path.chmod(0o600)
    return path, secret


def test_connect_and_compute(processes):
    with make_client(scheduler=processes.address, timeout=10, quiet=True) as client:
        assert len(client.scheduler_info()["workers"]) >= 2
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        assert sorted(client.gather(client.map(lambda x: x * x, range(5)))) == [0, 1, 4, 9, 16]


def test_proxy_on_every_worker_also_later_ones(processes, proxy, caplog, capsys):
    path, secret = proxy
    digest = hashlib.sha256(secret).hexdigest()
    with (
        caplog.at_level(logging.DEBUG),
        make_client(scheduler=processes.address, quiet=True) as client,
    ):
        plugin = upload_proxy(client, str(path), cert_dir="/opt/certs")
        states = client.run(proxy_state)
        assert len(states) == len(processes.workers)
        for state in states.values():
            assert state["exists"]
            assert state["mode"] == 0o600
            assert state["sha256"] == digest
            assert state["cert_dir"] == "/opt/certs"
            assert state["path"] != str(path)  # the worker's own copy
        # a worker that joins after the upload gets it as well
        n = len(processes.workers)
        processes.add_worker()
        client.wait_for_workers(n + 1, timeout=60)
        late = client.run(proxy_state)
        assert len(late) == n + 1
        assert all(s["sha256"] == digest and s["mode"] == 0o600 for s in late.values())
        shown = (
            repr(plugin)
            + str(plugin)
            + repr(vars(plugin))
            + repr(client)
            + str(client.scheduler_info())
        )
    text = secret.decode()
    for haystack in (shown, caplog.text, processes.logs(), "".join(capsys.readouterr())):
        assert text not in haystack
        assert "not-a-real-proxy" not in haystack
    assert plugin.fingerprint in caplog.text  # logged by fingerprint only


def test_proxy_default_path_and_errors(tmp_path, monkeypatch, proxy):
    path, secret = proxy
    monkeypatch.setenv("X509_USER_PROXY", str(path))
    assert read_proxy() == secret
    monkeypatch.delenv("X509_USER_PROXY")
    with pytest.raises(ProxyError, match="X509_USER_PROXY"):
        read_proxy()
    with pytest.raises(ProxyError, match="nope"):
        read_proxy(tmp_path / "nope")
    path.chmod(0o644)
    with pytest.warns(ProxyWarning, match="0644"):
        assert read_proxy(path) == secret
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ProxyError, match="empty"):
        read_proxy(tmp_path / "empty")


def test_plugin_setup_and_teardown_locally(tmp_path, monkeypatch, proxy):
    """The plugin's own contract, on a stand-in worker object: 0600 whatever the umask."""
    _, secret = proxy
    monkeypatch.setenv("X509_USER_PROXY", "/previous")
    monkeypatch.delenv("X509_CERT_DIR", raising=False)

    class Worker:
        local_directory = str(tmp_path)
        address = "local"

    plugin = X509ProxyPlugin(secret)
    old = os.umask(0)
    try:
        plugin.setup(Worker())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(plugin.path).st_mode) == 0o600
    assert open(plugin.path, "rb").read() == secret  # noqa: SIM115
    assert os.environ["X509_USER_PROXY"] == plugin.path
    assert os.environ["X509_CERT_DIR"] == "/etc/grid-security/certificates"
    written = plugin.path
    plugin.teardown(Worker())
    assert not os.path.exists(written)
    assert os.environ["X509_USER_PROXY"] == "/previous"
    assert "X509_CERT_DIR" not in os.environ


def test_unreachable_scheduler_fails_fast():
    address = f"tcp://127.0.0.1:{free_port()}"
    tic = time.monotonic()
    with pytest.raises(ClusterError) as err:
        make_client(scheduler=address, timeout=2)
    assert time.monotonic() - tic < 15
    assert f"cannot reach scheduler {address} within 2 s" in str(err.value)


def test_a_port_that_is_not_a_scheduler_fails_fast():
    """Something that accepts the connection but never answers Dask's handshake; the
    failed attempt leaves dask's default scheduler as it found it (another test's client,
    such as the session's ``dask_client``, may be the default before and after)."""
    import socket

    import dask

    scheduler_before = dask.config.get("scheduler", None)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        tic = time.monotonic()
        with pytest.raises(ClusterError, match="does not speak Dask's protocol") as err:
            make_client(scheduler=address, timeout=2)
        assert time.monotonic() - tic < 15
    assert address in str(err.value)
    # dask's default scheduler is left as it was: computations later in this process work
    assert dask.config.get("scheduler", None) == scheduler_before
    assert dask.delayed(sum)([1, 2]).compute() == 3


def test_bad_executor_and_missing_htcondor(monkeypatch):
    with pytest.raises(ClusterError, match="unknown executor"):
        make_client("spark")
    with pytest.raises(ClusterError, match="needs scheduler"):
        make_client("scheduler")
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # as if not installed
    with pytest.raises(ClusterError, match=r"pip install 'tau3mu\[htcondor\]'"):
        make_client("htcondor")


@pytest.mark.parametrize(
    ("options", "cores", "memory", "limit"),
    [
        ({}, 1, 2_000_000_000, "1.86GiB"),
        ({"threads_per_worker": 2, "memory_limit": "4GB"}, 2, 4_000_000_000, "3.73GiB"),
    ],
    ids=["defaults", "two-threads-4GB"],
)
def test_htcondor_job_script(options, cores, memory, limit):
    """The HTCondor cluster of ``--htcondor`` (no job submitted): each job one Dask worker
    of this Python, with the threads, memory and disk asked of HTCondor, connecting to
    this cluster's scheduler; extra submit directives reach the script."""
    flavour = {"+JobFlavour": '"espresso"'}
    with htcondor_cluster(dashboard=False, job_extra_directives=flavour, **options) as cluster:
        script = cluster.job_script()
        address = cluster.scheduler_address
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env condor_submit"
    for line in (
        f"MY.DaskWorkerCores = {cores}",
        f"MY.DaskWorkerMemory = {memory}",
        "MY.DaskWorkerDisk = 2000000000",
        "RequestCpus = MY.DaskWorkerCores",
        '+JobFlavour = "espresso"',
        "Queue",
    ):
        assert line in lines, (line, script)
    (arguments,) = [x for x in lines if x.startswith("Arguments = ")]
    worker = f"{sys.executable} -m distributed.cli.dask_worker {address} "
    assert worker in arguments
    assert f"--nthreads {cores} --memory-limit {limit} --nanny" in arguments


def test_package_reaches_a_worker_without_it(processes, proxy):
    path, secret = proxy
    with make_client(scheduler=processes.address, quiet=True) as client:
        assert ensure_package_on_workers(client) is False  # all have it from the venv
        n = len(client.scheduler_info()["workers"])
        processes.add_worker(hide_package=True)
        client.wait_for_workers(n + 1, timeout=60)

        def has_tau3mu():
            import importlib.util

            return importlib.util.find_spec("tau3mu") is not None

        before = client.run(has_tau3mu)
        if all(before.values()):
            pytest.skip("tau3mu is installed non-editable here: no worker can be without it")
        assert ensure_package_on_workers(client) is True

        def selection_runs():
            import awkward as ak

            import tau3mu
            from tau3mu.kernels import delta_r  # numba, cache=True: needs files on disk

            one = ak.Array([[0.5, 1.0]])
            return tau3mu.__file__, float(ak.sum(delta_r(one, one, one, one)))

        results = client.run(selection_runs)
        assert all(dr == 0.0 for _, dr in results.values())
        hidden = [w for w, ok in before.items() if not ok]
        assert "tau3mu-package-" in results[hidden[0]][0]
        # the proxy plugin does not need tau3mu on the worker either
        upload_proxy(client, str(path))
        with pickled_by_value(sys.modules[proxy_state.__module__]):
            states = client.run(proxy_state)
        assert all(s["sha256"] == hashlib.sha256(secret).hexdigest() for s in states.values())


@pytest.mark.parametrize(
    ("given", "in_environment", "expected"),
    [
        ("/opt/certs", None, "/opt/certs"),
        (None, "/env/certs", "/env/certs"),
        ("/opt/certs", "/env/certs", "/opt/certs"),
        (None, None, DEFAULT_CERT_DIR if os.path.isdir(DEFAULT_CERT_DIR) else None),
    ],
)
def test_proxy_environment_in_this_process(
    proxy, monkeypatch, tmp_path, given, in_environment, expected
):
    """For executors without Dask workers: X509_USER_PROXY (absolute) and X509_CERT_DIR set
    while inside, the environment as it was afterwards."""
    path, _ = proxy
    monkeypatch.setenv("X509_USER_PROXY", "/previous")
    if in_environment:
        monkeypatch.setenv("X509_CERT_DIR", in_environment)
    else:
        monkeypatch.delenv("X509_CERT_DIR", raising=False)
    monkeypatch.chdir(path.parent)
    with proxy_environment(path.name, given) as resolved:
        assert resolved == path.resolve()
        assert os.environ["X509_USER_PROXY"] == str(path.resolve())
        assert os.environ.get("X509_CERT_DIR") == expected
    assert os.environ["X509_USER_PROXY"] == "/previous"
    assert os.environ.get("X509_CERT_DIR") == in_environment
    with pytest.raises(ProxyError, match="nope"), proxy_environment(tmp_path / "nope"):
        pass
    assert os.environ["X509_USER_PROXY"] == "/previous"


def test_remove_proxy_takes_it_off_every_worker(processes, proxy):
    path, secret = proxy
    digest = hashlib.sha256(secret).hexdigest()
    with make_client(scheduler=processes.address, quiet=True) as client:
        upload_proxy(client, str(path))
        paths = {s["path"] for s in client.run(proxy_state).values()}
        assert all(s["sha256"] == digest for s in client.run(proxy_state).values())
        assert remove_proxy(client) is True
        after = client.run(proxy_state)
    assert after
    assert not any(s["exists"] or s["sha256"] == digest for s in after.values())
    assert not any(os.path.exists(p) for p in paths)  # same machine: the copies are gone


def _imported(names):
    return [name for name in names if name in sys.modules]


def test_local_workers_start_warm_and_take_one_chunk_at_a_time():
    """A local cluster's workers have the processing modules imported before their first
    task (forked from a forkserver that imported them), and its scheduler hands a worker
    one task per thread at a time."""
    client = make_client(workers=2, dashboard=False, quiet=True)
    try:
        imported = client.run(_imported, WARM_MODULES)
        assert len(imported) == 2
        assert all(found == list(WARM_MODULES) for found in imported.values()), imported
        saturation = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.WORKER_SATURATION
        )
        assert saturation == LOCAL_WORKER_SATURATION
        pids = client.run(os.getpid)
        assert len(set(pids.values())) == 2
        assert os.getpid() not in pids.values()
    finally:
        close_client(client)


def test_threads_cluster_runs_in_this_process():
    """``processes=False``: the workers are threads of this process, no forkserver."""
    cluster = local_cluster(1, processes=False, dashboard=False)
    try:
        from distributed import Client

        with Client(cluster) as client:
            assert set(client.run(os.getpid).values()) == {os.getpid()}
    finally:
        cluster.close()
