"""A local Dask cluster's workers: forked warm from a forkserver, one chunk per thread.

:func:`local_cluster` starts a ``LocalCluster`` whose worker processes are forked from
a forkserver that imported the processing modules once (:data:`WARM_MODULES`), so
that no worker imports them in its first chunk and every worker exits at once when the
cluster closes. :func:`prestart_local_workers` starts that forkserver before the run's
own imports, when the run may use a local cluster. Nothing here imports
``distributed`` until a cluster starts.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "LOCAL_WORKER_SATURATION",
    "WARM_MODULES",
    "local_cluster",
    "machine_cores",
    "preload_in_forkserver",
    "prestart_local_workers",
    "start_forkserver",
]


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


#: what a local cluster's workers import before their first chunk: forked from one
#: process that imported them (the forkserver), instead of each worker importing them
#: in its first task
WARM_MODULES = (
    "tau3mu.forkserver_collector",  # first: the collector for the imports and the forks
    "distributed",
    # distributed.versions imports pandas when a worker registers with the scheduler
    "pandas",
    "numpy",
    "awkward",
    "uproot",
    "numba",
    "coffea.processor",
    "coffea.nanoevents",
    "dask_awkward",  # coffea's nanoevents behaviours import it in the first chunk
    "tau3mu.chunks",
    "tau3mu.execution",
    "tau3mu.processors",
    "tau3mu.kernels.warmup",  # numba's one-time set-up, done once for every worker
)

#: a local scheduler's ``worker-saturation``: one chunk per worker thread at a time, so
#: that a worker that finishes early takes the next chunk (Dask queues only task groups
#: of more than twice as many tasks as threads; Dask's default sends 1.1 per thread)
LOCAL_WORKER_SATURATION = 1.0


def local_cluster(
    workers: int,
    *,
    threads_per_worker: int = 1,
    processes: bool = True,
    memory_limit: str | float | None = None,
    dashboard: bool = True,
    **cluster_options: Any,
) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` worker processes (``processes``
    False: threads of this process), each with ``threads_per_worker`` threads, memory
    shared out automatically unless ``memory_limit`` is given.

    Its worker processes are forked from a forkserver that imported
    :data:`WARM_MODULES` once (``distributed.worker.multiprocessing-method``
    ``forkserver``), so their first chunk does not pay the imports; its scheduler hands a
    worker one chunk per thread at a time (:data:`LOCAL_WORKER_SATURATION`).
    ``cluster_options`` go to ``LocalCluster``. The forkserver lives as long as this
    process: workers of a later cluster get the modules as it imported them, so an edit
    of tau3mu's source reaches the workers in a new Python process, not a new cluster.
    """
    import dask
    from distributed import LocalCluster

    settings: dict[str, Any] = {"distributed.scheduler.worker-saturation": LOCAL_WORKER_SATURATION}
    if processes:
        settings["distributed.worker.multiprocessing-method"] = "forkserver"
    with dask.config.set(settings):
        if processes:
            preload_in_forkserver(WARM_MODULES)
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            memory_limit="auto" if memory_limit is None else memory_limit,
            dashboard_address=":0" if dashboard else None,
            **cluster_options,
        )


def start_forkserver(modules: tuple[str, ...] = WARM_MODULES) -> None:
    """Start, in the background, the forkserver that a local cluster's workers will be
    forked from, importing ``modules``; returns at once. Imports no ``distributed``: a run
    that ends up without a cluster does not pay for it. No effect once started."""
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(modules))
    forkserver.ensure_running()


def prestart_local_workers(
    *, executor: str | None, workers: int | None, scheduler: str | None, htcondor: bool
) -> bool:
    """Start the forkserver of a local cluster's workers (:func:`start_forkserver`) now,
    when a run with these options may use a local cluster: ``executor`` ``"dask"`` without
    a ``scheduler`` or ``htcondor``, or no executor named and more than one worker
    (``workers`` None: the cores this process may use). Its imports then overlap with
    this process's own before the cluster starts. Returns whether it was started; unused
    (the run stayed in this process), it only imported those modules on another core."""
    if scheduler or htcondor:
        return False
    if executor is not None and executor != "dask":
        return False
    if executor is None and (workers or machine_cores()) < 2:
        return False
    start_forkserver()
    return True


def preload_in_forkserver(modules: tuple[str, ...]) -> None:
    """Make ``modules`` what the forkserver of distributed's multiprocessing context
    imports when it starts (in place of distributed's own list); no effect on a
    forkserver already running, nor with another start method."""
    from distributed.utils import get_mp_context

    context = get_mp_context()  # distributed sets its own list on the first call
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(list(modules))
