"""``make bench``: every benchmark in turn; each prints its table and saves it under results/,
with its provenance (benchmarks/common.py). ``make bench-docs`` (render_docs.py) then
renders the tables of README.md and docs/benchmarks.md from the saved results.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_throughput.py",
    "bench_scaling.py",
    "bench_dask_awkward.py",
    "bench_memory.py",
    "bench_fit.py",
    "bench_generate.py",
    "bench_overheads.py",
]


def main() -> int:
    failed = []
    for script in SCRIPTS:
        if not (HERE / script).is_file():
            continue
        print(f"== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)]).returncode != 0:
            failed.append(script)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
