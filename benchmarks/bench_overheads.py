"""The wall-time model's terms (``overheads_model.py``) measured here with the real code
paths; the model checked against fresh ``tau3mu run`` processes, and projected to the
CHEP stress test (about 100 GiB of Run 3) on 16, 64 and 256 workers. Measured in order:

- ``client_start``: a fresh interpreter importing what ``tau3mu run``'s process imports;
- ``compute``: the Runner's chunk in process (iterative executor, warm: imports and JIT
  paid by a first run, files known good), per event and per compressed MB, at the
  default chunk size and ``SMALL_CHUNKSIZE``, on the Run 3 and the Run 2 set;
- ``output`` and ``merge``: one chunk's raw accumulator, pickled and LZ4-compressed as
  coffea's DaskExecutor ships it (bytes, with and without the snapshot), and coffea's
  reduce of ``TREE_REDUCTION`` of them (decompress, ``accumulate``, compress);
- ``write``: the client writing ``histograms.root``/``.pkl`` and ``snapshot.root``;
- ``cluster`` (1 and 2 workers, :func:`tau3mu.cluster.make_client`): start and close, the
  workers' imports (``client.run``), a cold and a warm run of the Run 3 set (warm-up =
  the difference), a warm run at ``SMALL_CHUNKSIZE`` (task overhead = its wall over the
  in-process one, per task), and on 2 workers the scheduler: many empty tasks
  (throughput) and sequential round trips (latency);
- ``per_file``: read from ``results/small_files_1000.json`` (``bench_small_files.py``).
Then the check: the model's prediction for 1 and 2 workers on both sets, made before
``tau3mu run --executor dask --workers N --no-fit`` runs on them in a fresh process
(its phases from its report.json).

Usage: ``python benchmarks/bench_overheads.py`` (results saved as ``overheads``); data
from ``$TAU3MU_BENCH_DATA`` (``run3_0.5GB`` and ``run2_4x175000``, generated once by
``common.py``).
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_throughput import compressed_bytes, needed_branches
from common import RESULTS, fileset_of, issue_run2_set, run3_set, save
from overheads_model import (
    CHEP_BYTES,
    SMALL_FILE_EVENTS,
    TREE_REDUCTION,
    Assumptions,
    Workload,
    model_terms,
    phases,
    predict,
    projection,
    term_rows,
)

SETS = {"run3": run3_set, "run2": issue_run2_set}  # generated once, by common.py
SMALL_CHUNKSIZE = 20_000
EMPTY_TASKS = 2000
ROUND_TRIPS = 200
CHECK_ROUNDS = 2  # fresh tau3mu run processes per check point
IMPORTS = (
    "import tau3mu.cli, tau3mu.pipeline.run, tau3mu.execution, tau3mu.cluster, "
    "distributed, coffea.processor, tau3mu.processors.dsphipi"
)


def load_now() -> float:
    """The machine's one-minute load average."""
    return round(os.getloadavg()[0], 2)


def data_set(name: str) -> dict[str, Any]:
    """A set's fileset, files, tree, events, bytes (on disk, and of the branches read)."""
    import uproot

    from tau3mu.datasets import load_datasets

    datasets_json = str(SETS[name]()["datasets_json"])
    names = [d.name for d in load_datasets(datasets_json)]
    fileset, files = fileset_of({"datasets_json": datasets_json, "datasets": names})
    (tree,) = {t for spec in fileset.values() for t in spec["files"].values()}
    entries = []
    for path in files:
        with uproot.open(path) as file:
            entries.append(file[tree].num_entries)
    return {
        "fileset": fileset,
        "files": files,
        "tree": tree,
        "entries": entries,
        "events": sum(entries),
        "bytes": sum(Path(f).stat().st_size for f in files),
        "bytes_read": compressed_bytes(files, tree, needed_branches(files[0], tree)),
        "datasets_json": datasets_json,
    }


def client_start() -> float:
    """Wall of a fresh interpreter importing what ``tau3mu run`` imports."""
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], check=True, capture_output=True)
    return time.perf_counter() - tic


def runner_wall(fileset: dict, chunksize: int, **options: Any) -> tuple[float, Any]:
    """``run_runner``'s own wall (after the inspection) and its output."""
    from tau3mu.execution import run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    out = run_runner(fileset, DsPhiPiProcessor(), chunksize=chunksize, **options)
    return out.metrics["wall_s"], out


def compute(data: dict[str, Any]) -> dict[str, Any]:
    """The Runner in process, warm, at both chunk sizes: seconds per event and MB."""
    from tau3mu.config import DEFAULT_CHUNKSIZE

    runner_wall(data["fileset"], DEFAULT_CHUNKSIZE)  # imports, JIT, inspection cache
    rows = {}
    for chunksize in (DEFAULT_CHUNKSIZE, SMALL_CHUNKSIZE):
        load = load_now()
        wall, out = min(
            (runner_wall(data["fileset"], chunksize) for _ in range(2)), key=lambda pair: pair[0]
        )
        rows[chunksize] = {
            "chunks": sum(max(1, round(n / chunksize)) for n in data["entries"]),  # coffea's
            "wall_s": wall,
            "us_per_event": 1e6 * wall / data["events"],
            "s_per_MB": wall / (data["bytes"] / 1e6),
            "load": load,
        }
    return {"by_chunksize": rows, "output": out}


def raw_chunk_output(fileset: dict, chunksize: int) -> dict[str, Any]:
    """The first chunk's accumulator, as the processor returns it to coffea."""
    from coffea import processor

    from tau3mu.inspection import inspect_inputs
    from tau3mu.processors.dsphipi import DsPhiPiProcessor
    from tau3mu.reading import fileset_paths, iteritems_options, prepare_process, uproot_options
    from tau3mu.schemas import Tau3MuSchema

    prepare_process()
    fileset = inspect_inputs(fileset, cache=False).fileset
    runner = processor.Runner(
        executor=processor.IterativeExecutor(status=False, compression=None),
        schema=Tau3MuSchema,
        chunksize=chunksize,
        maxchunks=1,
    )
    return runner(
        fileset,
        processor_instance=DsPhiPiProcessor(),
        uproot_options=uproot_options(fileset_paths(fileset)),
        iteritems_options=iteritems_options(),
    )


def compressed(item: Any) -> bytes:
    """``item`` pickled and LZ4-compressed at level 1, as coffea's executors ship it."""
    import lz4.frame

    return lz4.frame.compress(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL), 1)


def reduce_seconds(blob: bytes, items: int) -> float:
    """Best of 3: coffea's reduce of ``items`` copies of ``blob`` (decompress each,
    ``accumulate``, compress the sum)."""
    import lz4.frame
    from coffea.processor import accumulate

    best = float("inf")
    for _ in range(3):
        tic = time.perf_counter()
        outputs = [pickle.loads(lz4.frame.decompress(blob)) for _ in range(items)]
        compressed(accumulate(outputs[1:], outputs[0]))
        best = min(best, time.perf_counter() - tic)
    return best


def output_and_merge(data: dict[str, Any]) -> dict[str, Any]:
    """Bytes of a chunk's shipped output (with and without its snapshot) and the reduce
    time of ``TREE_REDUCTION`` of each; per item and per byte."""
    from tau3mu.config import DEFAULT_CHUNKSIZE

    out = raw_chunk_output(data["fileset"], DEFAULT_CHUNKSIZE)
    events = sum(steps["events"]["events"] for steps in out["cutflow"].values())
    histograms_only = {k: copy.deepcopy(v) for k, v in out.items() if k != "snapshot"}
    full, fixed = compressed(out), compressed(histograms_only)
    merge_full = reduce_seconds(full, TREE_REDUCTION)
    merge_fixed = reduce_seconds(fixed, TREE_REDUCTION)
    return {
        "chunk_events": int(events),
        "output_bytes": len(full),
        "output_fixed_bytes": len(fixed),
        "output_bytes_per_event": (len(full) - len(fixed)) / events,
        "merge_20_s": merge_full,
        "merge_20_fixed_s": merge_fixed,
        "merge_s_per_item": merge_fixed / TREE_REDUCTION,
        "merge_s_per_byte": max(0.0, merge_full - merge_fixed)
        / (TREE_REDUCTION * (len(full) - len(fixed))),
        "load": load_now(),
    }


def write_seconds(output: Any, events: int) -> float:
    """Seconds per input event of writing the run's histograms and snapshot."""
    from tau3mu.outputs import write_histograms, write_snapshot

    with tempfile.TemporaryDirectory() as folder:
        tic = time.perf_counter()
        write_histograms(folder, output.hists)
        write_snapshot(folder, output.snapshot)
        return (time.perf_counter() - tic) / events


def scheduler(client: Any) -> dict[str, float]:
    """Empty tasks: the scheduler's throughput (many at once) and a round trip's
    latency (one after another)."""
    tic = time.perf_counter()
    client.gather(client.map(abs, range(EMPTY_TASKS), pure=False))
    throughput = EMPTY_TASKS / (time.perf_counter() - tic)
    tic = time.perf_counter()
    for k in range(ROUND_TRIPS):
        client.submit(abs, k, pure=False).result()
    latency = (time.perf_counter() - tic) / ROUND_TRIPS
    timing = {"tasks_per_s": throughput, "s_per_task": 1 / throughput, "round_trip_s": latency}
    return timing | {"empty_tasks": EMPTY_TASKS}


def cluster(workers: int, data: dict[str, Any], small_wall: float) -> dict[str, Any]:
    """On a fresh local cluster of ``workers``: start, imports, cold and warm runs of
    ``data``, the task overhead at ``SMALL_CHUNKSIZE``, the scheduler (2 workers)."""
    from tau3mu.cluster import close_client, make_client
    from tau3mu.config import DEFAULT_CHUNKSIZE

    row: dict[str, Any] = {"workers": workers, "load": load_now()}
    tic = time.perf_counter()
    client = make_client("local", workers=workers, dashboard=False, quiet=True)
    row["start_s"] = time.perf_counter() - tic
    try:
        tic = time.perf_counter()
        client.run(exec, IMPORTS)
        row["worker_imports_s"] = time.perf_counter() - tic
        options = {"executor": "dask", "client": client}
        row["cold_s"] = runner_wall(data["fileset"], DEFAULT_CHUNKSIZE, **options)[0]
        row["warm_s"] = runner_wall(data["fileset"], DEFAULT_CHUNKSIZE, **options)[0]
        row["warmup_s"] = row["worker_imports_s"] + row["cold_s"] - row["warm_s"]
        wall = runner_wall(data["fileset"], SMALL_CHUNKSIZE, **options)[0]
        tasks = sum(max(1, round(n / SMALL_CHUNKSIZE)) for n in data["entries"])  # coffea's
        row["small_chunks_s"], row["small_tasks"] = wall, tasks
        row["task_overhead_s"] = (wall * workers - small_wall) / tasks
        if workers >= 2:
            row.update(scheduler(client))
    finally:
        tic = time.perf_counter()
        close_client(client)
        row["close_s"] = time.perf_counter() - tic
    return row


def per_file_seconds() -> dict[str, Any]:
    """``bench_small_files.py``'s per-file cost of a whole run, every file inspected."""
    saved = json.loads((RESULTS / "small_files_1000.json").read_text())
    (row,) = [
        r for r in saved["rows"] if r["what"] == "whole run" and r["how"] == "every file inspected"
    ]
    return {"per_file_s": row["per-file ms"] / 1e3, "source": "small_files_1000.json"}


# -- the model's terms, its check and its projection -------------------------------------


def fresh_run(data: dict[str, Any], workers: int) -> dict[str, Any]:
    """``tau3mu run --executor dask --workers N --no-fit`` in a fresh process, with an
    empty inspection cache: its wall and report.json's times."""
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as cache:
        command = [sys.executable, "-m", "tau3mu.cli", "run", data["datasets_json"]]
        command += ["--out", out, "--executor", "dask", "--workers", str(workers)]
        load = load_now()
        tic = time.perf_counter()
        subprocess.run(
            [*command, "--no-fit", "--no-progress"],
            check=True,
            capture_output=True,
            env={**os.environ, "TAU3MU_CACHE_DIR": cache},
        )
        wall = time.perf_counter() - tic
        report = json.loads((Path(out) / "report.json").read_text())
    total, analysis = report["total_time_s"], report["wall_time_s"]
    processing = report["processing_time_s"]
    split = {"process start": wall - total, "cluster and inspection": analysis - processing}
    split |= {"processing": processing, "writing": total - analysis}
    return {"wall_s": wall, "phases": split, "executor": report["executor"], "load": load}


def mean_of(runs: list[dict[str, Any]], phase: str) -> float:
    return sum(ran["phases"][phase] for ran in runs) / len(runs)


def check(measured: dict[str, Any], sets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Predicted (from the terms alone) against measured walls, 1 and 2 workers."""
    from tau3mu.config import DEFAULT_CHUNKSIZE

    rows = []
    for name, data in sets.items():
        files = len(data["files"])
        workload = Workload(files, data["events"] // files, DEFAULT_CHUNKSIZE)
        for workers in (1, 2):
            terms = model_terms(measured, name, workers)
            predicted = predict(terms, workload, workers, remote=False)
            runs = [fresh_run(data, workers) for _ in range(CHECK_ROUNDS)]
            walls = [ran["wall_s"] for ran in runs]
            mean = sum(walls) / len(walls)
            rows.append(
                {
                    "set": Path(str(SETS[name]()["datasets_json"])).parent.name,
                    "workers": workers,
                    "predicted_s": round(predicted.wall_s, 2),
                    "measured_s": round(mean, 2),
                    "range_s": f"{min(walls):.2f}-{max(walls):.2f}",
                    "measured_over_predicted": round(mean / predicted.wall_s, 2),
                    "phases": {
                        phase: [round(seconds, 2), round(mean_of(runs, phase), 2)]
                        for phase, seconds in phases(terms, predicted).items()
                    },
                    "executor": sorted({ran["executor"] for ran in runs}),
                    "load": runs[0]["load"],
                }
            )
            print(rows[-1], flush=True)
    return rows


def measure(sets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every term, in one process (see the module's docstring)."""
    measured: dict[str, Any] = {"client_start_s": min(client_start() for _ in range(2))}
    measured["sets"] = {
        name: {k: data[k] for k in ("events", "bytes", "bytes_read")}
        | {"files": len(data["files"])}
        for name, data in sets.items()
    }
    measured["compute"], measured["write_s_per_event"], measured["output"] = {}, {}, {}
    for name, data in sets.items():
        done = compute(data)
        measured["compute"][name] = {str(k): v for k, v in done["by_chunksize"].items()}
        measured["write_s_per_event"][name] = write_seconds(done["output"], data["events"])
        measured["output"][name] = output_and_merge(data)
        print(name, measured["compute"][name], measured["output"][name], flush=True)
    small = measured["compute"]["run3"][str(SMALL_CHUNKSIZE)]["wall_s"]
    measured["cluster"] = {str(w): cluster(w, sets["run3"], small) for w in (1, 2)}
    print(measured["cluster"], flush=True)
    measured["per_file"] = per_file_seconds()
    return measured


def main() -> None:
    before = os.environ.get("TAU3MU_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["TAU3MU_CACHE_DIR"] = cache_dir
        try:
            sets = {name: data_set(name) for name in SETS}
            measured = measure(sets)
        finally:  # not left naming the deleted folder
            if before is None:
                os.environ.pop("TAU3MU_CACHE_DIR", None)
            else:
                os.environ["TAU3MU_CACHE_DIR"] = before
    checks = check(measured, sets)
    rows = projection(measured)
    meta = {
        "measured": measured,
        "assumptions": Assumptions().__dict__,
        "checks": checks,
        "projection": rows,
        "chep_bytes": CHEP_BYTES,
        "small_file_events": SMALL_FILE_EVENTS,
    }
    print(save("overheads", term_rows(measured), meta))


if __name__ == "__main__":
    main()
