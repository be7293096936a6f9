"""Speed of the synthetic generator (``tau3mu generate``), per core, by layout and compression.

One fresh process per measurement. Each process first writes a small file (imports, numba
kernels from the cache, ROOT's cling declaration), then simulates and writes one file of
``--events`` events ``--repeat`` times and reports the fastest. Times are CPU seconds of
the process (``time.process_time``), as ``tau3mu generate`` reports them, so that other
work on a shared machine inflates them less than wall time would; rates are per core.

The write is split into: building the writer's input (Run 3: the awkward records),
compression (uproot's calls to the codec) and uproot's own serialisation (the rest: the
baskets' headers, offsets, byte swaps, TTree metadata, file writes). The Run 2 writer is
ROOT (compiled filler, compression inside ``TTree::Fill``), reported as one number.
``first_file_events_per_s`` is the first of the repeats: a process's first file also
faults in fresh memory (the one-time setup, imports and kernels, is never timed).

``--baseline DIR`` also measures the code in ``DIR`` (e.g. ``git archive`` of an older
commit, put first on ``PYTHONPATH``), labelled ``before``.

Usage: ``python benchmarks/bench_generate.py [--events 200000] [--run2-events 20000]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_worker, save

WORKER = r"""
import inspect, json, os, sys, time
cfg = json.loads(sys.argv[1])
import tau3mu
print("tau3mu from", tau3mu.__file__, file=sys.stderr)
import uproot.compression as uc
from tau3mu.synth import dataset
from tau3mu.synth.physics import simulate
if hasattr(dataset, "keep_freed_memory"):  # as tau3mu generate does
    dataset.keep_freed_memory()

clock = {"compress": 0.0, "build": 0.0}
compress = uc.compress
def timed_compress(data, codec):
    tic = time.process_time()
    try:
        return compress(data, codec)
    finally:
        clock["compress"] += time.process_time() - tic
uc.compress = timed_compress

if cfg["layout"] == "run3":
    from tau3mu.synth import run3
    build = run3.run3_branches
    def timed_build(*args, **kwargs):
        tic = time.process_time()
        try:
            return build(*args, **kwargs)
        finally:
            clock["build"] += time.process_time() - tic
    run3.run3_branches = timed_build
    kwargs = {"compression": cfg["compression"], "compression_level": cfg["level"]}
    if cfg["deflate"] and "deflate" in inspect.signature(run3.write_run3).parameters:
        kwargs["deflate"] = cfg["deflate"]
    def write(path, events):
        run3.write_run3(path, events, **kwargs)
else:
    from tau3mu.synth.run2 import write_run2
    def write(path, events):
        write_run2(path, events, seed=7, compression=cfg["compression"],
                   compression_level=cfg["level"])

path = cfg["path"]
write(path, simulate(7, 0, 2000))  # warm-up: imports, numba cache, ROOT declarations
best, first = None, None
for _ in range(cfg["repeat"]):
    # a new file, as tau3mu generate writes: overwriting would time the truncation of the
    # previous one (freeing its pages, ~0.04 s for 60 MB)
    os.remove(path)
    clock.update(compress=0.0, build=0.0)
    tic, wall = time.process_time(), time.perf_counter()
    events = simulate(7, 0, cfg["events"])
    simulated = time.process_time()
    write(path, events)
    done, wall = time.process_time(), time.perf_counter() - wall
    result = {"simulate_s": simulated - tic, "write_s": done - simulated, "wall_s": wall,
              "build_s": clock["build"], "compress_s": clock["compress"]}
    first = first or result
    if best is None or done - tic < best["simulate_s"] + best["write_s"]:
        best = result
best["first_cpu_s"] = first["simulate_s"] + first["write_s"]
best["bytes"] = os.path.getsize(path)
best["deflate"] = kwargs.get("deflate") if cfg["layout"] == "run3" else None
print(json.dumps(best))
"""


def measure(cfg: dict, pythonpath: str | None, cwd: str) -> dict:
    # run outside the checkout: ``python -c`` puts the working directory first on sys.path,
    # ahead of PYTHONPATH, which would shadow the baseline with this checkout's package
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    out = run_worker(WORKER, json.dumps(cfg), env=env, cwd=cwd)
    origin = next(line for line in out.stderr.splitlines() if line.startswith("tau3mu from"))
    expected = Path(pythonpath).resolve() if pythonpath else Path(__file__).resolve().parents[1]
    if not Path(origin.split(None, 2)[2]).resolve().is_relative_to(expected):
        raise RuntimeError(f"measured the wrong code: {origin}, expected under {expected}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def row(label: str, cfg: dict, r: dict) -> dict:
    n = cfg["events"]
    cpu = r["simulate_s"] + r["write_s"]
    codec = cfg["compression"]
    if cfg["layout"] == "run3" and codec == "zlib":
        codec = f"zlib ({r['deflate'] or 'zlib'})"  # the library the measured code used
    serialise = r["write_s"] - r["build_s"] - r["compress_s"]
    return {
        "code": label,
        "layout": cfg["layout"],
        "compression": f"{codec}-{cfg['level']}",
        "events": n,
        "events_per_s": round(n / cpu),
        "first_file_events_per_s": round(n / r["first_cpu_s"]),
        "MB_per_s": round(r["bytes"] / 1e6 / cpu, 1),
        "bytes_per_event": round(r["bytes"] / n),
        "simulate_s": round(r["simulate_s"], 3),
        "build_s": round(r["build_s"], 3) if cfg["layout"] == "run3" else "",
        "compress_s": round(r["compress_s"], 3) if cfg["layout"] == "run3" else "",
        "serialise_s": round(serialise, 3) if cfg["layout"] == "run3" else "",
        "write_s": round(r["write_s"], 3),
        "wall_s": round(r["wall_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="Run 3 events per file")
    parser.add_argument("--run2-events", type=int, default=20_000, help="Run 2 events (0: skip)")
    parser.add_argument("--compressions", nargs="+", default=["zlib", "lz4", "zstd"])
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="best of N in each process")
    parser.add_argument(
        "--stdlib-zlib", action="store_true", help="also Run 3 zlib deflated by the stdlib"
    )
    parser.add_argument("--baseline", help="source tree of the code to compare against")
    args = parser.parse_args()
    load_start = os.getloadavg()  # the machine is shared: other work slows every process

    with tempfile.TemporaryDirectory() as tmp:
        plan = []
        for code, pythonpath in [("before", args.baseline), ("after", None)]:
            if code == "before" and not args.baseline:
                continue
            for compression in args.compressions:
                deflates = [None]
                if compression == "zlib":  # a baseline without the choice deflates with zlib
                    deflates = ["isal", "zlib"] if args.stdlib_zlib else ["isal"]
                for deflate in deflates:
                    plan.append((code, pythonpath, "run3", args.events, compression, deflate))
            if args.run2_events:
                plan.append((code, pythonpath, "run2", args.run2_events, "zlib", None))
        rows = []
        for code, pythonpath, layout, events, compression, deflate in plan:
            cfg = {
                "layout": layout,
                "events": events,
                "compression": compression,
                "deflate": deflate,
                "level": args.level,
                "repeat": args.repeat,
                "path": str(Path(tmp) / f"{code}_{layout}_{compression}.root"),
            }
            rows.append(row(code, cfg, measure(cfg, pythonpath, tmp)))
            print(rows[-1], flush=True)
    meta = {
        "note": "CPU seconds of one process (best of repeat); rates per core; "
        "serialise_s = write_s - build_s - compress_s (uproot's own work)",
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
    }
    print(save("generate", rows, meta))


if __name__ == "__main__":
    main()
