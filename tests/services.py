"""Real services for the tests: an xrootd server and Dask scheduler/worker processes.

Nothing here is a mock: the tests talk to Debian's ``xrootd`` and to ``dask scheduler``
and ``dask worker`` processes on loopback, started and stopped by their PIDs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    text = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s\n{text}")


@dataclass
class XRootDServer:
    """A running ``xrootd`` exporting one folder; ``stop()``/``start()`` for fault tests."""

    export: Path
    port: int
    workdir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"root://localhost:{self.port}/"

    def url_of(self, path: str | Path) -> str:
        return f"root://localhost:{self.port}/{Path(path).resolve()}"

    def start(self) -> None:
        config = self.workdir / "xrootd.cfg"
        config.write_text(
            f"all.export {self.export.resolve()}\n"
            f"xrd.port {self.port}\n"
            f"all.adminpath {self.workdir}/admin\n"
            f"all.pidpath {self.workdir}/run\n"
            "xrd.allow host localhost\n"
            "xrd.allow host 127.0.0.1\n"
        )
        log = self.workdir / "xrootd.log"
        command = ["xrootd", "-c", str(config), "-l", str(log), "-n", f"tau3mu{self.port}"]
        if os.geteuid() == 0:  # xrootd refuses to run as root
            command = ["runuser", "-u", "xrootd", "--", *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.port, 20, log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def xrootd_available() -> bool:
    return shutil.which("xrootd") is not None


@contextlib.contextmanager
def xrootd_server(export: Path) -> Iterator[XRootDServer]:
    """Serve ``export`` (and what is below it) on a free loopback port."""
    workdir = Path(tempfile.mkdtemp(prefix="tau3mu-xrootd-"))
    for sub in ("admin", "run"):
        (workdir / sub).mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, "xrootd", "xrootd")
        for sub in ("admin", "run"):
            shutil.chown(workdir / sub, "xrootd", "xrootd")
        os.chmod(workdir, 0o777)
        # the xrootd user must be able to read the exported files
        for path in [export, *export.rglob("*")]:
            os.chmod(path, os.stat(path).st_mode | 0o005 | (0o001 if path.is_dir() else 0))
        parent = export.resolve()
        while parent != parent.parent:
            os.chmod(parent, os.stat(parent).st_mode | 0o001)
            parent = parent.parent
    server = XRootDServer(export=export, port=free_port(), workdir=workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class DaskProcesses:
    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]
    workdir: Path

    def add_worker(self) -> subprocess.Popen:
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nworkers", "1",
             "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
             "--local-directory", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.workers.append(worker)
        return worker


@contextlib.contextmanager
def dask_processes(n_workers: int = 2, timeout: float = 60) -> Iterator[DaskProcesses]:
    """A ``dask scheduler`` and ``n_workers`` ``dask worker`` processes on loopback."""
    from distributed import Client

    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tau3mu-dask-"))
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    cluster = DaskProcesses(f"tcp://127.0.0.1:{port}", scheduler, [], workdir)
    try:
        wait_for_port(port, timeout)
        for _ in range(n_workers):
            cluster.add_worker()
        with Client(cluster.address, timeout=timeout) as client:
            client.wait_for_workers(n_workers, timeout=timeout)
        yield cluster
    finally:
        for process in [*cluster.workers, scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*cluster.workers, scheduler]:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
