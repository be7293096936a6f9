"""A local cluster's workers start warm: forked from a forkserver that imported what a
worker imports to start, register and run its first chunk."""

from __future__ import annotations

import multiprocessing
import sys

import pytest

from tau3mu.cluster import close_client, make_client
from tau3mu.local_workers import WARM_MODULES

pytestmark = pytest.mark.distributed


def _modules() -> list[str]:
    return sorted(sys.modules)


def _put_modules(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(_modules())


def _forkserver_modules() -> set[str]:
    """The modules of a plain child of the forkserver: what it imported before forking."""
    context = multiprocessing.get_context("forkserver")
    queue = context.Queue()
    child = context.Process(target=_put_modules, args=(queue,))
    child.start()
    try:
        return set(queue.get(timeout=60))
    finally:
        child.join(timeout=60)


def test_a_worker_imports_only_distributed_machinery_to_start():
    """Between its fork and its first task a worker imports nothing but distributed's own
    worker routes: not pandas (distributed reports its version when a worker registers),
    nor any processing module."""
    client = make_client(workers=1, dashboard=False, quiet=True)
    try:
        (worker_modules,) = client.run(_modules).values()
        forked_from = _forkserver_modules()
    finally:
        close_client(client)
    assert set(WARM_MODULES) <= forked_from
    added = {name.split(".")[0] for name in set(worker_modules) - forked_from}
    assert added <= {"distributed", "tornado"}, sorted(added)


def test_the_forkserver_imports_what_distributed_reports_on_registering():
    """distributed.versions imports every package it reports (dask, numpy, pandas, lz4,
    ...) when a worker registers: the installed ones are imported before the fork."""
    from distributed.versions import optional_packages, required_packages

    client = make_client(workers=1, dashboard=False, quiet=True)
    try:
        forked_from = _forkserver_modules()
    finally:
        close_client(client)
    reported = {name for name, _ in (*required_packages, *optional_packages)}
    installed = {name for name in reported if _importable(name)}
    assert "pandas" in installed
    assert installed <= forked_from, sorted(installed - forked_from)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _collector() -> tuple[tuple[int, int, int], int]:
    import gc

    return gc.get_threshold(), gc.get_freeze_count()


def test_a_worker_inherits_the_tuned_and_frozen_collector():
    """The forkserver ran its imports with tau3mu's collector thresholds and froze them
    before forking: a worker neither traces nor copies what it inherited."""
    from tau3mu.collector import THRESHOLDS

    client = make_client(workers=1, dashboard=False, quiet=True)
    try:
        ((thresholds, frozen),) = client.run(_collector).values()
    finally:
        close_client(client)
    assert tuple(thresholds) == THRESHOLDS
    assert frozen > 100_000  # the forkserver's modules, numba's and coffea's included
