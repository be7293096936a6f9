"""Real services for tests and notebooks: an ``xrootd`` server and Dask processes on loopback.

Nothing here is a mock. :func:`xrootd_server` runs Debian's ``xrootd`` (package
``xrootd-server``) exporting one folder; :func:`dask_cluster_processes` runs
``dask scheduler`` and ``dask worker`` as separate processes. Both bind to (or only
admit) localhost, and everything they start is stopped by its PID on exit.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: the account ``xrootd`` drops to when started by root (it refuses to run as root)
XROOTD_USER = "xrootd"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def _tail(path: Path | None, n: int = 3000) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return path.read_text(errors="replace")[-n:]


def wait_for_port(
    port: int,
    timeout: float,
    *,
    host: str = LOOPBACK,
    log: Path | None = None,
    what: str = "server",
) -> None:
    """Block until ``host:port`` accepts connections; on timeout raise with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        time.sleep(0.1)
    raise TimeoutError(
        f"{what}: nothing listens on {host}:{port} after {timeout:g} s; log {log}:\n{_tail(log)}"
    )


# -- xrootd ------------------------------------------------------------------------------
def xrootd_unavailable_reason() -> str | None:
    """Why a real ``xrootd`` cannot be started here, or None when it can."""
    binary = shutil.which("xrootd")
    if binary is None:
        return (
            "the xrootd binary is not on PATH (apt-get install xrootd-server; `make test` does it)"
        )
    try:
        subprocess.run([binary, "-v"], capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as err:
        return f"{binary} does not run: {err}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(XROOTD_USER)
        except KeyError:
            return f"running as root but there is no {XROOTD_USER!r} user to run xrootd as"
        if shutil.which("runuser") is None:
            return "running as root but runuser is missing"
    return None


def xrootd_available() -> bool:
    """Whether :func:`xrootd_server` can start a server here."""
    return xrootd_unavailable_reason() is None


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _open_for(path: Path, user: str) -> None:
    """Let ``user`` traverse to ``path`` and read everything under it (only adds o+rx bits)."""
    del user  # permissions for "others" are enough: xrootd only reads
    for item in [path, *path.rglob("*")]:
        mode = item.stat().st_mode
        extra = stat.S_IROTH | (stat.S_IXOTH if item.is_dir() else 0)
        if mode & extra != extra:
            os.chmod(item, stat.S_IMODE(mode) | extra)
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)


@dataclass
class XRootDServer:
    """A real ``xrootd`` exporting ``export_dir`` on ``localhost:port``.

    ``url(path)`` gives ``root://localhost:PORT//abs/path``; ``stop()`` and ``start()``
    take it down and bring it back on the same port (for fault tests).
    """

    export_dir: Path
    port: int
    workdir: Path
    start_timeout: float = 20.0
    _pid: int | None = field(default=None, repr=False)

    @property
    def url_prefix(self) -> str:
        """``root://localhost:PORT/``: put before an absolute path to get its URL."""
        return f"root://localhost:{self.port}/"

    def url(self, path: str | Path) -> str:
        """URL of a file under the exported folder (relative paths are taken from there)."""
        p = Path(path)
        if not p.is_absolute():
            p = self.export_dir / p
        return f"{self.url_prefix}{p.resolve()}"

    @property
    def pid(self) -> int | None:
        """PID of the running server (read from its pid file), None when stopped."""
        return self._pid if self._pid is not None and _pid_alive(self._pid) else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "xrootd.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "xrootd.cfg"

    @property
    def running(self) -> bool:
        return self.pid is not None

    def _write_config(self) -> None:
        self.config_path.write_text(
            f"all.export {self.export_dir.resolve()}\n"
            f"xrd.port {self.port}\n"
            f"all.adminpath {self.workdir / 'admin'}\n"
            f"all.pidpath {self.workdir / 'run'}\n"
            # xrootd listens on every interface; only localhost clients are admitted
            "xrd.allow host localhost\n"
            f"xrd.allow host {LOOPBACK}\n"
        )

    def start(self) -> None:
        """Start the daemon (``xrootd -b``) and wait until its port accepts connections.

        As root, the exported folder is opened to the daemon's account again first: a
        folder above it may have lost the bits since (pytest resets its base temporary
        folder to mode 0700 whenever a session starts)."""
        if self.running:
            return
        if os.geteuid() == 0:
            _open_for(self.export_dir, XROOTD_USER)
        self._write_config()
        pidfile = self.workdir / "run" / "xrootd.pid"
        pidfile.unlink(missing_ok=True)
        command = ["xrootd", "-c", str(self.config_path), "-l", str(self.log_path), "-b"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", XROOTD_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"xrootd did not start ({' '.join(command)} exited {done.returncode}):\n"
                f"{done.stdout}{done.stderr}\n{_tail(self.log_path)}"
            )
        deadline = time.monotonic() + self.start_timeout
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pidfile.exists():
            self._pid = int(pidfile.read_text().split()[0])
        try:
            wait_for_port(
                self.port, max(deadline - time.monotonic(), 1.0), log=self.log_path, what="xrootd"
            )
        except TimeoutError:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the daemon by its PID (SIGKILL after ``timeout``) and wait for the port to close."""
        pid, self._pid = self._pid, None
        if pid is None or not _pid_alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid) and time.monotonic() < deadline + 5:
                time.sleep(0.05)
        while port_open(self.port) and time.monotonic() < deadline + 5:
            time.sleep(0.05)


@contextlib.contextmanager
def xrootd_server(
    export_dir: str | Path, *, port: int | None = None, timeout: float = 20.0
) -> Iterator[XRootDServer]:
    """Serve ``export_dir`` with a real ``xrootd`` on a free port; stopped by PID on exit.

    As root the daemon runs as the ``xrootd`` user: its work folder is chowned to it and
    ``export_dir`` (and the folders above it) get the o+r / o+x bits it needs to read.
    """
    reason = xrootd_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"cannot start xrootd: {reason}")
    export = Path(export_dir).resolve()
    if not export.is_dir():
        raise NotADirectoryError(f"{export}: not a folder to export")
    workdir = Path(tempfile.mkdtemp(prefix="tau3mu-xrootd-"))
    for sub in ("admin", "run"):
        (workdir / sub).mkdir()
    if os.geteuid() == 0:
        for item in (workdir, workdir / "admin", workdir / "run"):
            shutil.chown(item, XROOTD_USER, XROOTD_USER)
        _open_for(export, XROOTD_USER)
    server = XRootDServer(
        export_dir=export, port=port or free_port(), workdir=workdir, start_timeout=timeout
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# -- Dask processes ----------------------------------------------------------------------
def _dask_command(sub: str) -> list[str]:
    """``.venv/bin/dask <sub>`` beside this interpreter, run by this interpreter (not by
    the script's ``#!`` line, which names another Python in a copied or moved virtual
    environment), else ``python -m distributed.cli``."""
    script = Path(sys.executable).parent / "dask"
    if script.exists():
        return [sys.executable, str(script), sub]
    return [sys.executable, "-m", f"distributed.cli.dask_{sub}"]


#: start a worker in a process where ``tau3mu`` cannot be imported (a "remote" worker)
_HIDDEN_WORKER = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "tau3mu" not in getattr(f, "__module__", "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "tau3mu" not in getattr(h, "__module__", "")]
sys.path[:] = [p for p in sys.path if p not in ("", ".") and "tau3mu" not in p]
sys.path_importer_cache.clear()
sys.argv = ["dask-worker", *sys.argv[1:]]
from distributed.cli.dask_worker import main
main()
"""


@dataclass
class DaskProcesses:
    """A running ``dask scheduler`` and its ``dask worker`` processes."""

    address: str
    scheduler: subprocess.Popen
    workdir: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def add_worker(self, *, hide_package: bool = False, nanny: bool = True) -> subprocess.Popen:
        """Start one more worker (1 process, 1 thread); ``hide_package`` makes ``tau3mu``
        unimportable in it (it then runs without a nanny), like a remote worker."""
        index = len(self.workers)
        args = [
            self.address,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            LOOPBACK,
            "--local-directory",
            str(self.workdir / f"worker-{index}"),
        ]
        if hide_package:
            command = [sys.executable, "-c", _HIDDEN_WORKER, *args, "--no-nanny"]
        else:
            command = [*_dask_command("worker"), *args, *([] if nanny else ["--no-nanny"])]
        log = open(self.workdir / f"worker-{index}.log", "wb")  # noqa: SIM115
        try:
            worker = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        finally:
            log.close()
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, n: int, timeout: float = 60.0) -> None:
        """Block until ``n`` workers are registered with the scheduler."""
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            try:
                client.wait_for_workers(n, timeout=timeout)
            except TimeoutError as err:
                raise TimeoutError(
                    f"{n} workers did not register within {timeout:g} s\n{self.logs()}"
                ) from err

    def logs(self) -> str:
        """Everything the scheduler and workers wrote (to look into failures, or for leaks)."""
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')}"
            for p in sorted(self.workdir.glob("*.log"))
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate workers then the scheduler, by PID; kill what does not exit in time."""
        processes = [*self.workers, self.scheduler]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def dask_cluster_processes(n_workers: int = 2, *, timeout: float = 60.0) -> Iterator[DaskProcesses]:
    """A ``dask scheduler`` and ``n_workers`` ``dask worker`` processes on 127.0.0.1.

    Yields once every worker has registered; the address is ``.address``
    (``tcp://127.0.0.1:PORT``). Everything is terminated by PID on exit.
    """
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tau3mu-dask-"))
    log = open(workdir / "scheduler.log", "wb")  # noqa: SIM115
    try:
        scheduler = subprocess.Popen(
            [
                *_dask_command("scheduler"),
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--no-dashboard",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    finally:
        log.close()
    cluster = DaskProcesses(f"tcp://{LOOPBACK}:{port}", scheduler, workdir)
    try:
        wait_for_port(port, timeout, log=workdir / "scheduler.log", what="dask scheduler")
        for _ in range(n_workers):
            cluster.add_worker()
        cluster.wait_for_workers(n_workers, timeout)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
