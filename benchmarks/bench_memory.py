"""Peak memory of one worker against chunk size (a fresh process per chunk size).

Usage: ``python benchmarks/bench_memory.py [--gb 0.5] [--layout run2]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dataset, fileset_of, save

WORKER = """
import json, resource, sys, time
from tau3mu.execution import run_runner
from tau3mu.processors.dsphipi import DsPhiPiProcessor
fileset = json.loads(sys.argv[1])
tic = time.perf_counter()
run_runner(fileset, DsPhiPiProcessor(), chunksize=int(sys.argv[2]))
print(json.dumps({"wall_s": time.perf_counter() - tic,
                  "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=0.5)
    parser.add_argument("--layout", default="run2")
    parser.add_argument(
        "--chunks", type=int, nargs="+", default=[25_000, 50_000, 100_000, 200_000, 400_000]
    )
    args = parser.parse_args()
    info = dataset(args.layout, args.gb)
    fileset, _ = fileset_of(info)
    rows = []
    for chunk in args.chunks:
        out = subprocess.run(
            [sys.executable, "-c", WORKER, json.dumps(fileset), str(chunk)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(
            {
                "layout": args.layout,
                "chunksize": chunk,
                "peak_rss_MB": round(result["peak_rss_MB"]),
                "wall_s": round(result["wall_s"], 2),
            }
        )
        print(rows[-1], flush=True)
    print(save("memory", rows, {"events": info["events"]}))


if __name__ == "__main__":
    main()
