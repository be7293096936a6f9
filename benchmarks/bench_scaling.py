"""Worker scaling: the Runner with Dask and the dask-awkward path, 1 .. all cores.

Usage: ``python benchmarks/bench_scaling.py [--gb 1] [--layout run2]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dataset, fileset_of, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--layout", default="run2")
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from tau3mu.execution import run_dask_awkward, run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    info = dataset(args.layout, args.gb)
    fileset, _ = fileset_of(info)
    rows = []
    base = {}
    for workers in range(1, args.max_workers + 1):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            for mode in ("runner", "dask-awkward"):
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
                )
                run()  # warm the workers (imports, JIT)
                tic = time.perf_counter()
                run()
                wall = time.perf_counter() - tic
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
