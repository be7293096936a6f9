"""Dask clusters: a local one sized to the machine, an existing scheduler, or HTCondor."""

from __future__ import annotations

import os
import sys
from typing import Any


class ClusterError(RuntimeError):
    """The scheduler cannot be reached or the cluster cannot start."""


def make_client(
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | None = "auto",
    htcondor: bool = False,
    timeout: float = 10.0,
    quiet: bool = False,
) -> Any:
    """A ``distributed.Client``: to ``scheduler`` if given, else HTCondor jobs, else a LocalCluster."""
    from distributed import Client

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as err:
            raise ClusterError(f"cannot reach the Dask scheduler {scheduler} within {timeout:g} s: {err}") from err
    elif htcondor:
        try:
            from dask_jobqueue import HTCondorCluster
        except ImportError as err:
            raise ClusterError("HTCondor needs dask-jobqueue: pip install 'tau3mu[htcondor]'") from err
        cluster = HTCondorCluster(cores=threads_per_worker, memory="2GB", disk="2GB")
        cluster.scale(workers or 4)
        client = Client(cluster)
    else:
        from distributed import LocalCluster

        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=threads_per_worker, processes=True, memory_limit=memory_limit
        )
        client = Client(cluster)
    if not quiet:
        link = getattr(client, "dashboard_link", None)
        print(f"Dask: {len(client.scheduler_info().get('workers', {}))} workers, dashboard {link}", file=sys.stderr)
    return client


def ensure_package_on_workers(client: Any) -> bool:
    """Make ``tau3mu`` importable on every worker; upload the package where it is missing.

    Returns True if an upload was needed.
    """
    def _has_tau3mu() -> bool:
        try:
            import tau3mu  # noqa: F401
        except ImportError:
            return False
        return True

    present = client.run(_has_tau3mu)
    if all(present.values()):
        return False
    import tempfile

    archive = package_zip(tempfile.mkdtemp(prefix="tau3mu-upload-"))
    client.upload_file(str(archive))
    return True


def package_zip(directory: str) -> Any:
    """``tau3mu`` (with its ``kernels`` and ``processors`` subpackages) as one importable zip."""
    import zipfile
    from pathlib import Path

    import tau3mu
    import tau3mu.kernels
    import tau3mu.processors

    archive = Path(directory) / "tau3mu.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for package, arcroot in (
            (tau3mu, "tau3mu"),
            (tau3mu.kernels, "tau3mu/kernels"),
            (tau3mu.processors, "tau3mu/processors"),
        ):
            base = Path(package.__file__).parent
            for file in base.rglob("*"):
                if file.is_file() and file.suffix in (".py", ".json", ".txt", ".typed"):
                    rel = file.relative_to(base)
                    if package is tau3mu and rel.parts[0] in ("kernels", "processors"):
                        continue
                    zf.write(file, f"{arcroot}/{rel.as_posix()}")
    return archive
