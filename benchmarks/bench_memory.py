"""Peak memory of one worker against chunk size (a fresh process per chunk size).

Peak RSS is the kernel's high-water mark of the worker process (``VmHWM``), reset after
the warm-up; ``getrusage``'s ``ru_maxrss`` would not do: Linux carries it over from the
parent across ``fork`` and ``exec``, so it reported the benchmark driver's own peak.

The files must be larger than the largest chunk (coffea never makes a chunk span two
files): by default one Run 2 file of 400k events (~1.8 GB). The baseline is the process
after its imports and a first tiny chunk (numba JIT, schema), before the measured run.

Usage: ``python benchmarks/bench_memory.py [--layout run2] [--events-per-file 400000]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dataset, fileset_of, run_worker, save

WORKER = """
import json, sys, time
from pathlib import Path
from tau3mu.execution import run_runner
from tau3mu.processors.dsphipi import DsPhiPiProcessor

def status_MB(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

fileset = json.loads(sys.argv[1])
run_runner(fileset, DsPhiPiProcessor(), chunksize=1000, maxchunks=1)
baseline = status_MB("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
tic = time.perf_counter()
run_runner(fileset, DsPhiPiProcessor(), chunksize=int(sys.argv[2]))
print(json.dumps({"wall_s": time.perf_counter() - tic, "baseline_MB": baseline,
                  "peak_rss_MB": status_MB("VmHWM")}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layout", default="run2")
    parser.add_argument("--events-per-file", type=int, default=400_000)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument(
        "--chunks", type=int, nargs="+", default=[25_000, 50_000, 100_000, 200_000, 400_000]
    )
    args = parser.parse_args()
    per_event = 4400 if args.layout == "run2" else 290
    gb = args.files * args.events_per_file * per_event / 1e9
    info = dataset(args.layout, gb, events_per_file=args.events_per_file)
    fileset, _ = fileset_of(info)
    rows = []
    for chunk in args.chunks:
        out = run_worker(WORKER, json.dumps(fileset), str(chunk))
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(
            {
                "layout": args.layout,
                "chunksize": chunk,
                "baseline_MB": round(result["baseline_MB"]),
                "peak_rss_MB": round(result["peak_rss_MB"]),
                "chunk_MB": round(result["peak_rss_MB"] - result["baseline_MB"]),
                "wall_s": round(result["wall_s"], 2),
            }
        )
        print(rows[-1], flush=True)
    meta = {"events": info["events"], "events_per_file": args.events_per_file}
    print(save("memory", rows, meta))


if __name__ == "__main__":
    main()
