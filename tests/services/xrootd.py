"""A real ``xrootd`` server (Debian's ``xrootd-server``) exporting one folder on loopback.

Nothing here is a mock: :func:`xrootd_server` runs the daemon, admits only localhost
clients, and stops it by its PID on exit.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.network import LOOPBACK, free_port, log_tail, port_open, wait_for_port

#: the account ``xrootd`` drops to when started by root (it refuses to run as root)
XROOTD_USER = "xrootd"


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
                f"{done.stdout}{done.stderr}\n{log_tail(self.log_path)}"
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
