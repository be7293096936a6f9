"""Where a ``tau3mu run`` spends its seconds: a timeline of one run, in this process.

Stamps (seconds since this script started) on stderr at the executor's choice, the
cluster's start and close, the inspection and the Runner's chunks, and, for a Dask run,
the start time of each worker process and every task of Dask's task stream (worker,
compute or transfer, start and stop): cluster start, first chunk of each worker, how
the chunks were spread, the tree reduction. A measuring aid for docs/benchmarks.md
("The default executor"); it wraps tau3mu's functions in this process only.

Usage: ``python -c 'import sys; sys.path.insert(0, "benchmarks"); import
timeline_default as t; t.main()' run DATASETS_JSON --no-fit --out OUT [OPTIONS]``
(through ``-c``: Dask's worker processes must not import a ``__main__`` script).
"""

from __future__ import annotations

import sys
import time
from typing import Any

STARTED = time.perf_counter()
STARTED_WALL = time.time()


def stamp(what: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.2f}] {what}", file=sys.stderr, flush=True)


def wrapped(module: Any, name: str) -> None:
    """``module.name`` stamped at its start and end."""
    function = getattr(module, name)

    def stamped(*args: Any, **kwargs: Any) -> Any:
        stamp(f"{name} start")
        try:
            return function(*args, **kwargs)
        finally:
            stamp(f"{name} end")

    setattr(module, name, stamped)


def print_tasks(tasks: list[dict[str, Any]]) -> None:
    """Dask's task stream, by start time, in seconds since this script started."""
    offset = STARTED_WALL
    for task in sorted(tasks, key=lambda t: t["startstops"][0]["start"]):
        for step in task["startstops"]:
            start, stop = step["start"] - offset, step["stop"] - offset
            print(
                f"   {str(task['key'])[:40]:40s} {task['worker'][-6:]} {step['action']:8s} "
                f"{start:6.2f}-{stop:6.2f} ({stop - start:.2f})",
                file=sys.stderr,
            )


def main() -> int:
    from tau3mu import collector
    from tau3mu.cli import build_parser
    from tau3mu.local_workers import prestart_local_workers

    collector.tune()  # as the tau3mu command's entry point does

    # as ``tau3mu run`` does before its heavy imports (the ones below are those)
    args = build_parser().parse_args(sys.argv[1:])
    if args.command == "run":
        prestart_local_workers(
            executor=args.executor,
            workers=args.workers,
            scheduler=args.scheduler,
            htcondor=args.htcondor,
        )
        stamp("forkserver started")
    import tau3mu.execution as execution
    import tau3mu.pipeline.analysis as analysis
    import tau3mu.pipeline.session as session
    from tau3mu.cli import main as cli_main

    stamp("tau3mu imported")
    for module, name in (
        (analysis, "choose_executor"),
        (session, "make_client"),
        (session, "close_client"),
        (execution, "inspect_inputs"),
    ):
        wrapped(module, name)
    run_chunks = execution._run_chunks

    def timed_chunks(runner: Any, fileset: Any, processor: Any, client: Any, *rest: Any) -> Any:
        if client is None:
            stamp("chunks start")
            out = run_chunks(runner, fileset, processor, client, *rest)
            stamp("chunks end")
            return out
        import psutil
        from distributed import get_task_stream

        created = client.run(lambda: psutil.Process().create_time())
        for worker, when in created.items():
            stamp(f"worker {worker} process created at {when - STARTED_WALL:6.2f}")
        stamp("chunks start")
        with get_task_stream(client) as stream:
            out = run_chunks(runner, fileset, processor, client, *rest)
        stamp("chunks end")
        print_tasks(stream.data)
        return out

    execution._run_chunks = timed_chunks
    try:
        return cli_main(sys.argv[1:])
    finally:
        stamp("end")
