"""Real Dask processes on loopback: ``dask scheduler`` and ``dask worker`` as separate
processes, stopped by their PIDs on exit; and :func:`proxy_state`, what a worker holds of
an X.509 proxy.

Workers cannot import this module (it is no part of the package): cloudpickle, and so
Dask, ships its functions by value.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle

from services.network import LOOPBACK, free_port, wait_for_port

cloudpickle.register_pickle_by_value(sys.modules[__name__])


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


def proxy_state() -> dict[str, Any]:
    """What a worker has of an X.509 proxy (run it with ``client.run``): the path, the CA
    folder, whether the file exists, its mode and its SHA-256; never its content."""
    path = os.environ.get("X509_USER_PROXY")
    state: dict[str, Any] = {
        "path": path,
        "cert_dir": os.environ.get("X509_CERT_DIR"),
        "exists": False,
        "mode": None,
        "sha256": None,
    }
    if path and os.path.exists(path):
        with open(path, "rb") as handle:
            state["sha256"] = hashlib.sha256(handle.read()).hexdigest()
        state.update(exists=True, mode=stat.S_IMODE(os.stat(path).st_mode))
    return state
