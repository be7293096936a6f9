"""dask-awkward against the Runner, side by side on the same LocalCluster workers.

For each worker count, one cluster (processes, one thread each) runs the Runner
(``run_runner(executor="dask")``) and the dask-awkward graph (``run_dask_awkward``) on
the same files: one warm-up run of each (imports, numba JIT on the workers), then
``--rounds`` rounds alternating the two, so that both see the same load. Reported per
mode: the best and the median wall time of a run (inspection included, the cluster's
start not), and the peak RSS (``VmHWM``, reset before each run) of the busiest worker
and of this, the client, process. The ratio is dask-awkward's best wall over the
Runner's, in the same cluster. Every run must give the first Runner run's cutflow,
histograms (bins and variances) and snapshot, bit for bit, or the benchmark stops.

Usage: ``python benchmarks/bench_dask_awkward.py [DATASETS_JSON] [--workers 1 2]
[--chunksize 100000] [--rounds 2]`` (default: the speed benchmarks' 4 x 175k-event Run 2
set, ``common.issue_run2_set``, generated once under ``$TAU3MU_BENCH_DATA``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import issue_run2_set, save

MODES = ("runner", "dask-awkward")


def peak_rss_mb(reset: bool = False) -> float:
    """This process's peak RSS (``VmHWM``) in MB; with ``reset``, the peak is set back
    to the current RSS afterwards."""
    status = Path("/proc/self/status").read_text().splitlines()
    (line,) = [x for x in status if x.startswith("VmHWM:")]
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    return int(line.split()[1]) / 1024


def differences(result: Any, reference: Any) -> list[str]:
    """Where ``result`` and ``reference`` (:class:`tau3mu.execution.AnalysisOutput`)
    differ: cutflow, every histogram's bins and variances, every snapshot field."""
    import numpy as np

    found = []
    if result.cutflow != reference.cutflow:
        found.append("cutflow")
    for name, hist in reference.hists.items():
        other = result.hists.get(name)
        same = other is not None and np.array_equal(hist.values(), other.values())
        variances = hist.variances()
        if same and variances is not None:
            same = np.array_equal(variances, other.variances())
        if not same:
            found.append(f"histogram {name}")
    if set(result.snapshot) != set(reference.snapshot):
        found.append("snapshot datasets")
    for dataset, array in reference.snapshot.items():
        other = result.snapshot.get(dataset)
        if other is None or not same_rows(other, array):
            found.append(f"snapshot {dataset}")
    return found


def same_rows(array: Any, reference: Any) -> bool:
    """Whether two snapshots (flat awkward record arrays) hold the same type and values,
    field by field; NaN equals NaN."""
    import awkward as ak
    import numpy as np

    if array.type != reference.type:
        return False
    return all(
        np.array_equal(ak.to_numpy(array[f]), ak.to_numpy(reference[f]), equal_nan=True)
        for f in ak.fields(reference)
    )


def one_run(mode: str, fileset: dict, client: Any, chunksize: int) -> tuple[float, Any, dict]:
    """Wall time, output and peak RSS (MB: busiest worker, client) of one run."""
    from tau3mu.execution import run_dask_awkward, run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    client.run(peak_rss_mb, True)
    peak_rss_mb(reset=True)
    tic = time.perf_counter()
    if mode == "runner":
        out = run_runner(
            fileset, DsPhiPiProcessor(), executor="dask", client=client, chunksize=chunksize
        )
    else:
        out = run_dask_awkward(fileset, DsPhiPiProcessor(), client=client, chunksize=chunksize)
    wall = time.perf_counter() - tic
    workers = client.run(peak_rss_mb)
    return wall, out, {"worker": max(workers.values()), "client": peak_rss_mb()}


def measure(fileset: dict, workers: int, chunksize: int, rounds: int) -> list[dict[str, Any]]:
    """The rows of one cluster of ``workers`` processes (see the module's docstring)."""
    from distributed import Client, LocalCluster

    walls: dict[str, list[float]] = {mode: [] for mode in MODES}
    peaks: dict[str, dict[str, float]] = {mode: {"worker": 0.0, "client": 0.0} for mode in MODES}
    columns: dict[str, list[str]] = {}
    reference = None
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        for round_ in range(rounds + 1):  # round 0 warms the workers up
            for mode in MODES:
                wall, out, peak = one_run(mode, fileset, client, chunksize)
                reference = out if reference is None else reference
                found = differences(out, reference)
                if found:
                    raise RuntimeError(f"{mode} differs from the Runner: {', '.join(found)}")
                columns[mode] = sorted({c.rsplit("-", 1)[0] for c in out.metrics["columns"]})
                if round_:
                    walls[mode].append(wall)
                    for where in peak:
                        peaks[mode][where] = max(peaks[mode][where], peak[where])
    if columns["runner"] != columns["dask-awkward"]:
        raise RuntimeError(f"the branches read differ: {columns}")
    rows = []
    for mode in MODES:
        rows.append(
            {
                "mode": mode,
                "workers": workers,
                "best_wall_s": round(min(walls[mode]), 2),
                "median_wall_s": round(statistics.median(walls[mode]), 2),
                "ratio_to_runner": round(min(walls[mode]) / min(walls["runner"]), 2),
                "worker_peak_rss_GB": round(peaks[mode]["worker"] / 1024, 2),
                "client_peak_rss_GB": round(peaks[mode]["client"] / 1024, 2),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("datasets_json", nargs="?", default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="timed runs per mode")
    parser.add_argument("--name", default="dask_awkward", help="results/<name>.json")
    args = parser.parse_args()

    from tau3mu.datasets import load_datasets, to_fileset

    datasets_json = args.datasets_json or str(issue_run2_set()["datasets_json"])
    datasets = load_datasets(datasets_json)
    fileset = to_fileset(datasets)
    rows = []
    for workers in args.workers:
        rows += measure(fileset, workers, args.chunksize, args.rounds)
    meta = {
        "datasets_json": datasets_json,
        "files": sum(len(d.files) for d in datasets),
        "bytes": sum(os.path.getsize(f) for d in datasets for f in d.files),
        "chunksize": args.chunksize,
        "rounds": args.rounds,
    }
    print(save(args.name, rows, meta))


if __name__ == "__main__":
    main()
