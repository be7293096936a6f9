"""Dask clusters: a local one sized to the machine, an existing scheduler, or HTCondor jobs.

Plus :func:`ensure_package_on_workers`: workers on a shared analysis facility often lack
``tau3mu``; it is shipped to them as a worker plugin (present and future workers).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import io
import logging
import os
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from tau3mu.errors import Tau3MuError
from tau3mu.local_workers import local_cluster, machine_cores

log = logging.getLogger(__name__)

LOCAL_EXECUTORS = ("local", "dask", "processes")
EXECUTORS = (*LOCAL_EXECUTORS, "threads", "scheduler", "htcondor")
_SCHEMES = ("tcp://", "tls://", "ucx://", "ws://", "wss://", "inproc://")


class ClusterError(Tau3MuError, RuntimeError):
    """The scheduler cannot be reached or the cluster cannot start."""


def _connect(address: str, timeout: float) -> Any:
    from distributed import Client

    if "://" not in address and ":" not in address:
        raise ClusterError(f"scheduler address {address!r} is not of the form tcp://HOST:PORT")
    if "://" in address and not address.startswith(_SCHEMES):
        raise ClusterError(
            f"scheduler address {address!r}: unknown protocol, expected tcp://HOST:PORT"
        )
    # Client's own timeout does not cover a server that accepts the connection but never
    # answers Dask's handshake (another service on that port), and a Client that hangs
    # has already made itself dask's default: ask the scheduler who it is first
    identity = _scheduler_identity(address, timeout)
    if identity.get("type") != "Scheduler":
        raise ClusterError(
            f"{address} is a Dask {identity.get('type', 'server')}, not a scheduler: give the "
            "scheduler's address (tcp://HOST:PORT, port 8786 by default)"
        )
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise _unreachable(address, timeout, err) from err


def _unreachable(address: str, timeout: float, err: BaseException) -> ClusterError:
    return ClusterError(
        f"cannot reach scheduler {address} within {timeout:g} s "
        f"(cannot reach the Dask scheduler: is it running, is the address right? {err})"
    )


def _scheduler_identity(address: str, timeout: float) -> dict[str, Any]:
    """What answers at ``address`` (Dask's ``identity``), or :class:`ClusterError` within
    ~``timeout`` s: nothing listening there, or something that is not Dask. Asked on a
    thread of its own, so that it also works where an event loop already runs (a
    notebook)."""
    import asyncio
    import socket

    from distributed.comm import connect, get_address_host_port

    try:
        with socket.create_connection(get_address_host_port(address), timeout=timeout):
            pass
    except (OSError, ValueError) as err:
        raise _unreachable(address, timeout, err) from err

    async def ask() -> dict[str, Any]:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["identity"] = asyncio.run(asyncio.wait_for(ask(), timeout))
        except Exception as err:
            result["error"] = err

    thread = threading.Thread(target=run, name="tau3mu-scheduler-identity", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    identity = result.get("identity")
    if isinstance(identity, dict):
        return identity
    detail = f" ({result['error']!r})" if "error" in result else ""
    raise ClusterError(
        f"no Dask scheduler answered at {address} within {timeout:g} s: something accepts "
        f"connections there but does not speak Dask's protocol (another service on that "
        f"port?){detail}"
    )


def htcondor_cluster(
    *,
    threads_per_worker: int = 1,
    memory_limit: str | float | None = None,
    dashboard: bool = True,
    **cluster_options: Any,
) -> Any:
    """dask-jobqueue's ``HTCondorCluster`` as ``make_client("htcondor")`` starts it, before
    any job is submitted: one worker process per job with ``threads_per_worker`` threads,
    ``memory_limit`` (default 2GB) and 2GB of disk per job; ``cluster_options`` go to
    ``HTCondorCluster`` and override these. Its ``job_script()`` is what HTCondor runs.

    Raises :class:`ClusterError` without dask-jobqueue (the ``htcondor`` extra).
    """
    try:
        from dask_jobqueue import HTCondorCluster
    except ImportError as err:
        raise ClusterError(
            "the htcondor executor needs dask-jobqueue: pip install 'tau3mu[htcondor]'"
        ) from err
    options = {
        "cores": threads_per_worker,
        "processes": 1,
        "memory": memory_limit or "2GB",
        "disk": "2GB",
        **cluster_options,
    }
    if not dashboard:
        options.setdefault("scheduler_options", {"dashboard_address": None})
    return HTCondorCluster(**options)


def make_client(
    executor: str = "local",
    *,
    workers: int | None = None,
    threads_per_worker: int = 1,
    scheduler: str | None = None,
    memory_limit: str | float | None = None,
    dashboard: bool = True,
    htcondor: bool = False,
    timeout: float = 10.0,
    quiet: bool = False,
    **cluster_options: Any,
) -> Any:
    """A ``distributed.Client`` for ``executor``.

    - ``scheduler="tcp://HOST:PORT"`` (any executor): connect to a running scheduler,
      giving up after ``timeout`` seconds with :class:`ClusterError`.
    - ``"local"`` (also ``"dask"``, ``"processes"``): a LocalCluster of worker processes,
      ``workers`` of them (default: the cores this process may use), memory shared out
      automatically unless ``memory_limit`` is given; ``"threads"``: one process.
    - ``"htcondor"`` (or ``htcondor=True``): dask-jobqueue's ``HTCondorCluster`` scaled to
      ``workers`` jobs (default 4); ``cluster_options`` go to it (e.g. ``disk``, ``job_extra_directives``).

    The dashboard link is printed to stderr when a cluster starts (unless ``quiet``).
    """
    from distributed import Client

    if htcondor:
        executor = "htcondor"
    if executor not in EXECUTORS:
        raise ClusterError(f"unknown executor {executor!r}; one of {list(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ClusterError(f"workers must be at least 1, not {workers}")
    if scheduler:
        client = _connect(scheduler, timeout)
        what = f"scheduler {scheduler}"
    elif executor == "scheduler":
        raise ClusterError("executor 'scheduler' needs scheduler='tcp://HOST:PORT'")
    elif executor == "htcondor":
        cluster = htcondor_cluster(
            threads_per_worker=threads_per_worker,
            memory_limit=memory_limit,
            dashboard=dashboard,
            **cluster_options,
        )
        cluster.scale(workers or 4)
        client = Client(cluster)
        what = f"HTCondor cluster ({workers or 4} jobs requested)"
    else:
        n = workers or machine_cores()
        cluster = local_cluster(
            n,
            threads_per_worker=threads_per_worker,
            processes=executor != "threads",
            memory_limit=memory_limit,
            dashboard=dashboard,
            **cluster_options,
        )
        client = Client(cluster)
        what = f"local cluster of {n} worker{'s' if n > 1 else ''} x {threads_per_worker} thread(s)"
    if not quiet:
        n_workers = len(client.scheduler_info().get("workers", {}))
        has_dashboard = "dashboard" in client.scheduler_info().get("services", {})
        link = client.dashboard_link if dashboard and has_dashboard else None
        print(
            f"Dask: {what}, {n_workers} worker(s) connected"
            + (f", dashboard {link}" if link else ""),
            file=sys.stderr,
        )
    return client


def close_client(client: Any) -> None:
    """Close ``client`` and the cluster it was made with, if any (the LocalCluster or
    HTCondorCluster of :func:`make_client`; a scheduler connected to is left running).

    ``client.close()`` alone leaves a local cluster's worker processes running until
    the interpreter exits and kills them ("Worker process still alive ... killing").
    """
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


# -- the package on remote workers -----------------------------------------------------
@contextlib.contextmanager
def pickled_by_value(*modules: ModuleType) -> Iterator[None]:
    """While inside, cloudpickle (and so Dask) ships ``modules``' functions and classes by
    value: workers without ``tau3mu`` can still load plugins and checks defined in it."""
    import cloudpickle

    added = []
    for module in modules:
        if module.__name__ not in cloudpickle.list_registry_pickle_by_value():
            cloudpickle.register_pickle_by_value(module)
            added.append(module)
    try:
        yield
    finally:
        for module in added:
            cloudpickle.unregister_pickle_by_value(module)


def _can_import(name: str) -> str | None:
    """On a worker: None if ``name`` imports, else the error (sent by value: no tau3mu needed)."""
    try:
        importlib.import_module(name)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return None


def package_zip() -> bytes:
    """``tau3mu`` with ``tau3mu.kernels`` and ``tau3mu.processors`` laid out as one tree, zipped.

    The source layout maps ``kernels/`` and ``processors/`` into the package, so the
    installed modules are collected, not a folder.
    """
    import tau3mu
    import tau3mu.kernels
    import tau3mu.processors

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for package, arcroot in (
            (tau3mu, "tau3mu"),
            (tau3mu.kernels, "tau3mu/kernels"),
            (tau3mu.processors, "tau3mu/processors"),
        ):
            base = Path(str(package.__file__)).parent  # a regular package: it has a file
            for file in sorted(base.rglob("*")):
                if not file.is_file() or file.suffix not in (".py", ".json", ".txt", ".typed"):
                    continue
                rel = file.relative_to(base)
                if "__pycache__" in rel.parts:
                    continue
                if package is tau3mu and rel.parts[0] in ("kernels", "processors"):
                    continue
                info = zipfile.ZipInfo(
                    f"{arcroot}/{rel.as_posix()}", date_time=(2020, 1, 1, 0, 0, 0)
                )
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, file.read_bytes())
    return buffer.getvalue()


@functools.cache
def _package_plugin_class() -> type:
    """The worker plugin class, defined on first use: ``distributed`` takes ~0.7 s to
    import, which runs that never start a cluster (the iterative executor) should not pay."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class PackagePlugin(WorkerPlugin):
        """Unpack ``tau3mu`` into the worker's local directory and put it on ``sys.path``.

        Unpacked rather than imported from the zip: numba's ``cache=True`` kernels need their
        source files on disk. Registered once, it reaches workers that join later too.
        """

        name = "tau3mu-package"
        idempotent = False

        def __init__(self, data: bytes) -> None:
            self.data = data
            self.digest = hashlib.sha256(data).hexdigest()[:16]

        def __repr__(self) -> str:
            return f"PackagePlugin(tau3mu, {len(self.data)} bytes, sha256 {self.digest})"

        def setup(self, worker: Any) -> None:
            base = Path(worker.local_directory) / f"tau3mu-package-{self.digest}"
            if not base.exists():
                partial = base.with_name(base.name + f".partial-{os.getpid()}")
                with zipfile.ZipFile(io.BytesIO(self.data)) as zf:
                    zf.extractall(partial)
                try:
                    os.replace(partial, base)
                except OSError:  # another worker sharing the folder got there first
                    if not base.exists():
                        raise
                    import shutil

                    shutil.rmtree(partial, ignore_errors=True)
            if str(base) not in sys.path:
                sys.path.insert(0, str(base))
            importlib.invalidate_caches()

    return PackagePlugin


def ensure_package_on_workers(client: Any, *, force: bool = False) -> bool:
    """Make ``tau3mu`` importable on every worker; upload it where it is missing.

    Checks with ``client.run`` whether each worker imports ``tau3mu``; if one does not
    (or ``force``), registers a ``PackagePlugin`` (present and future workers) and
    checks again. Returns True if an upload was needed; :class:`ClusterError` names
    the workers that still cannot import it.
    """
    this = sys.modules[__name__]
    with pickled_by_value(this):
        missing = {w: e for w, e in client.run(_can_import, "tau3mu").items() if e is not None}
        if not missing and not force:
            return False
        if missing:
            log.info(
                "tau3mu is not importable on %d worker(s) (%s); uploading it",
                len(missing),
                ", ".join(sorted(missing)),
            )
        client.register_plugin(_package_plugin_class()(package_zip()))
        still = {
            w: e
            for w, e in client.run(_can_import, "tau3mu.processors.dsphipi").items()
            if e is not None
        }
    if still:
        details = "; ".join(f"{w}: {e}" for w, e in sorted(still.items()))
        raise ClusterError(
            f"tau3mu cannot be imported on {len(still)} worker(s) even after uploading it: {details}"
        )
    return True
