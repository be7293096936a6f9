"""The Dask executor of a local cluster: the processor on every worker before the chunks,
chunks spread over the workers, and the forkserver started before the cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from coffea.processor import DaskExecutor
from distributed import get_task_stream

from tau3mu.chunks import SpreadDaskExecutor, merge_outputs
from tau3mu.cluster import close_client, make_client
from tau3mu.execution import coffea_executor
from tau3mu.local_workers import WARM_MODULES, prestart_local_workers

pytestmark = pytest.mark.distributed


def _chunk(item_and_processor):
    """A stand-in chunk: which process ran it, and the processor it was given."""
    item, processor = item_and_processor
    time.sleep(0.5)
    return {"ran": {os.getpid(): [item]}, "processor": {processor.decode(): 1}}


@pytest.fixture(scope="module")
def client():
    client = make_client(workers=2, dashboard=False, quiet=True)
    yield client
    close_client(client)


def test_local_client_gets_the_spreading_executor(client):
    assert type(coffea_executor("dask", client, 2, False, 0)) is SpreadDaskExecutor


def test_chunks_spread_over_workers_with_the_processor_on_each(client):
    """Four chunks on two workers: two each, started together, every one given the
    processor, and no task of its own for the processor (coffea's executor makes one and
    sends every chunk to the worker that ran it)."""
    executor = SpreadDaskExecutor(client=client, status=False, retries=0, compression=None)
    executor.heavy_input = b"the processor"
    with get_task_stream(client) as stream:
        out, _ = executor(list(range(4)), _chunk, {})
    assert out["processor"] == {"the processor": 4}
    assert sorted(len(items) for items in out["ran"].values()) == [2, 2]
    assert sorted(i for items in out["ran"].values() for i in items) == [0, 1, 2, 3]
    names = [
        task["key"] if isinstance(task["key"], str) else str(task["key"]) for task in stream.data
    ]
    assert not any(name.startswith("lambda") for name in names), names
    assert executor.heavy_input == b"the processor"  # left as coffea set it


def test_outputs_merge_into_the_last_in_order():
    """As coffea's executor merges them: the others added, in turn, into the last."""
    outputs = [{"seen": [1]}, None, {"seen": [2]}, {"seen": [3]}]
    assert merge_outputs(outputs) == {"seen": [3, 1, 2]}
    assert outputs == [{"seen": [1]}, None, {"seen": [2]}, {"seen": [3]}]  # inputs kept
    with pytest.raises(ValueError, match="no output"):
        merge_outputs([None])


#: a run of the spreading executor in a fresh process: its merged output, and whether
#: that process imported dask.dataframe (coffea's own Dask executor does, ~0.6 s)
_FRESH_RUN = """
import collections, sys
from tau3mu.chunks import SpreadDaskExecutor
from tau3mu.cluster import close_client, make_client
client = make_client(workers=1, dashboard=False, quiet=True)
executor = SpreadDaskExecutor(client=client, status=False, retries=0)
executor.heavy_input = "processor"
out, _ = executor(list(range(3)), collections.Counter, {})
close_client(client)
print(sorted(out.items(), key=str), "dask.dataframe" in sys.modules)
"""


def test_a_local_run_does_not_import_dask_dataframe():
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_RUN], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "False", done.stdout
    assert "[('processor', 3), (0, 1), (1, 1), (2, 1)]" in done.stdout


def test_coffeas_executor_runs_a_task_for_the_processor(client):
    """What the spreading executor avoids, seen with coffea's own."""
    executor = DaskExecutor(client=client, status=False, retries=0, compression=None)
    executor.heavy_input = b"the processor"
    with get_task_stream(client) as stream:
        out, _ = executor(list(range(4)), _chunk, {})
    assert out["processor"] == {"the processor": 4}
    names = [
        task["key"] if isinstance(task["key"], str) else str(task["key"]) for task in stream.data
    ]
    assert any(name.startswith("lambda") for name in names), names


@pytest.mark.parametrize(
    ("executor", "workers", "scheduler", "htcondor", "started"),
    [
        (None, 2, None, False, True),
        ("dask", 1, None, False, True),
        (None, 1, None, False, False),
        ("iterative", None, None, False, False),
        ("futures", 2, None, False, False),
        (None, 2, "tcp://127.0.0.1:8786", False, False),
        ("dask", 2, None, True, False),
    ],
)
def test_forkserver_started_only_for_a_possible_local_cluster(
    executor, workers, scheduler, htcondor, started
):
    assert (
        prestart_local_workers(
            executor=executor, workers=workers, scheduler=scheduler, htcondor=htcondor
        )
        is started
    )


def _imported(names):
    import sys

    return [name for name in names if name in sys.modules]


def test_workers_forked_after_the_early_start_are_warm():
    """The forkserver started before the cluster (as ``tau3mu run`` does) is the one its
    workers come from: they have the processing modules imported."""
    assert prestart_local_workers(executor="dask", workers=2, scheduler=None, htcondor=False)
    client = make_client(workers=2, dashboard=False, quiet=True)
    try:
        imported = client.run(_imported, WARM_MODULES)
        assert all(found == list(WARM_MODULES) for found in imported.values()), imported
    finally:
        close_client(client)
