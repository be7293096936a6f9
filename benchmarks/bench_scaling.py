"""Worker scaling: the Runner with Dask and the dask-awkward path, 1 .. all cores.

Beside them, on the same Dask workers, distributed RDataFrame running the corrected
original pipeline (``rdf_original.py --scheduler``), one range per file. Each mode runs
once to warm up (imports, numba and C++ JIT), then the best of ``--repeat`` timed runs.

Usage: ``python benchmarks/bench_scaling.py [--gb 2] [--layout run2] [--no-rdf]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dataset, fileset_of, save


def distributed_rdf(files: list[str], layout: str, scheduler: str, npartitions: int) -> dict:
    """The corrected original pipeline as distributed RDataFrame on the cluster's workers."""
    script = Path(__file__).resolve().parent / "rdf_original.py"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rdf.json"
        command = [sys.executable, str(script), *files, "--layout", layout]
        command += ["--scheduler", scheduler, "--npartitions", str(npartitions)]
        subprocess.run([*command, "--json", str(out)], check=True, capture_output=True)
        return json.loads(out.read_text())


def check_same(mode: str, result: Any, outputs: dict) -> None:
    """Every mode must give the Runner's complete cutflow and h_mass bins (the first
    Runner output is the reference); a difference stops the benchmark."""
    import numpy as np
    from bench_throughput import differences

    if mode == "rdf":
        (name,) = outputs["runner"].cutflow
        found = differences(outputs["runner"], name, result)
    else:
        outputs.setdefault(mode, result)
        reference = outputs["runner"]
        found = []
        if result.cutflow != reference.cutflow:
            found.append(f"cutflow {result.cutflow} != {reference.cutflow}")
        if not np.array_equal(result.hists["h_mass"].values(), reference.hists["h_mass"].values()):
            found.append("h_mass bins differ")
    if found:
        raise RuntimeError(f"{mode} and the Runner differ: " + "; ".join(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--layout", default="run2")
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-rdf", action="store_true", help="skip distributed RDataFrame")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per mode (best)")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from tau3mu.execution import run_dask_awkward, run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    info = dataset(args.layout, args.gb)
    fileset, files = fileset_of(info)
    modes = ("runner", "dask-awkward") if args.no_rdf else ("runner", "dask-awkward", "rdf")
    rows = []
    base = {}
    outputs: dict = {}
    for workers in range(1, args.max_workers + 1):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            for mode in modes:
                run = (
                    (
                        lambda: run_runner(
                            fileset,
                            DsPhiPiProcessor(),
                            executor="dask",
                            client=client,
                            chunksize=args.chunksize,
                        )
                    )
                    if mode == "runner"
                    else (
                        lambda: run_dask_awkward(
                            fileset, DsPhiPiProcessor(), client=client, chunksize=args.chunksize
                        )
                    )
                    if mode == "dask-awkward"
                    else (
                        lambda: distributed_rdf(
                            files, args.layout, cluster.scheduler_address, len(files)
                        )
                    )
                )
                check_same(mode, run(), outputs)  # also warms the workers (imports, JIT)
                wall = float("inf")
                for _ in range(args.repeat):  # best of: the machine is noisy
                    tic = time.perf_counter()
                    result = run()
                    elapsed = time.perf_counter() - tic
                    if mode == "rdf":  # from the graph's construction on, not the ROOT import
                        elapsed = result["timing"]["total_s"]
                    wall = min(wall, elapsed)
                base.setdefault(mode, wall)
                speedup = base[mode] / wall
                rows.append(
                    {
                        "mode": mode,
                        "workers": workers,
                        "wall_s": round(wall, 2),
                        "events_per_s": round(info["events"] / wall),
                        "speedup": round(speedup, 2),
                        "efficiency": round(speedup / workers, 2),
                    }
                )
                print(rows[-1], flush=True)
    print(save("scaling", rows, {"events": info["events"], "layout": args.layout}))


if __name__ == "__main__":
    main()
