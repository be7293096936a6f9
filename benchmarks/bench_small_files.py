"""The fixed cost of a file: many small files against the same number of events in a few.

The original analysis's ``input.json`` lists 143 Run 2 files of a few thousand events
each. Each file costs a run more than its bytes: opening it, deserialising the metadata
of its ~277 branches, NanoEvents typing them, and its inspection before the run. Measured
side by side in one process, on the mirror of that ``input.json``
(``tests/test_original_input.py``'s :func:`write_mirror`, full-width Run 2 files written
by ROOT) and on the same number of events in 4 files:

    per-file cost = (wall of the 143 files - wall of the 4 files) / 139

for the whole run (inspection, then the Runner with the iterative executor, one core,
no fit, no outputs), for the inspection alone, and with the inspection cache on (a rerun:
files found good by the first run are not reopened) and off. Two more whole-run rows
give the ratios that three of tau3mu's readers buy: one runs a chunk per file
(``TAU3MU_FILE_GROUPS=off``: the small files of a dataset are not one unit of work,
:mod:`tau3mu.filegroups`), one reads the schema's branches (``TAU3MU_TRACED_BRANCHES=off``:
the processor's are not traced first, :mod:`tau3mu.traced_branches`), the other reads
complete trees (``TAU3MU_LAZY_TREES=off``: uproot deserialises every branch, and reads a
jagged branch's baskets for each ask, :mod:`tau3mu.lazytrees`). The last rows read the same files through a real ``xrootd``
server on loopback (``tests/services/xrootd.py``; remote files are always inspected):
what a file costs over XRootD beyond its events, without a network's latency. The
``tau3mu run`` rows run the command in a fresh process on a local cluster of 2 workers
(``--executor dask --workers 2 --no-fit --no-inspection-cache``), reading the traced
branches or the schema's. The processor is compiled by a warm-up run first, rows are
interleaved over ``--repeat`` rounds, medians kept.

Usage: ``python benchmarks/bench_small_files.py [--events-per-file 1000] [--repeat 3]``
(results saved as ``small_files_<N>``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import DATA, save
from test_original_input import RUN_2017, listed_files, write_mirror

TREE = "Tree3Mu/ntuple"
FEW = 4


def mirror_sets(events_per_file: int) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The 143-file mirror and ``FEW`` files of the same total events (generated once,
    cached under the benchmarks' data folder); their filesets and the events."""
    from tau3mu.synth import simulate, write_run2

    root = DATA / f"original_mirror_{events_per_file}"
    stamp = root / "generated.json"
    if not stamp.is_file():
        write_mirror(root, events_per_file)
        stamp.write_text(json.dumps({"events_per_file": events_per_file}))
    listed = listed_files(root)
    total = events_per_file * sum(len(files) for files in listed.values())
    few = DATA / f"original_mirror_{events_per_file}_in{FEW}"
    few_stamp = few / "generated.json"
    if not few_stamp.is_file():
        few.mkdir(parents=True, exist_ok=True)
        for k in range(FEW):
            events = simulate(7, 1000 + k, total // FEW, run_number=RUN_2017)
            write_run2(few / f"few_{k}.root", events, seed=1000 + k)
        few_stamp.write_text(json.dumps({"events": total}))
    metadata = {"type": "data", "era": "2017"}
    many = {
        name: {"files": {str(f): TREE for f in files}, "metadata": metadata}
        for name, files in listed.items()
    }
    paths = sorted(few.glob("few_*.root"))
    return many, {"all": {"files": {str(f): TREE for f in paths}, "metadata": metadata}}, total


def whole_run(fileset: dict[str, Any], cache: bool) -> tuple[float, int]:
    """Seconds of ``run_runner`` (inspection + Runner), and the events processed."""
    from tau3mu.execution import run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    tic = time.perf_counter()
    out = run_runner(fileset, DsPhiPiProcessor(snapshot=False), inspection_cache=cache)
    seconds = time.perf_counter() - tic
    return seconds, sum(steps["events"]["events"] for steps in out.cutflow.values())


def command_run(fileset: dict[str, Any], cache: bool, traced: bool = True) -> tuple[float, int]:
    """Seconds of ``tau3mu run`` on a local cluster of 2 workers over ``fileset``'s files
    (one dataset), in a fresh process, and the events it processed; ``traced``: reading
    the traced branches, else the schema's. ``cache`` is not used: every file is
    inspected (``--no-inspection-cache``)."""
    from tau3mu.traced_branches import TRACED_BRANCHES_ENV

    paths = [path for spec in fileset.values() for path in spec["files"]]
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "tau3mu.cli", "run", *paths, "--era", "2017"]
        command += ["--out", out, "--no-fit", "--no-progress", "--no-inspection-cache"]
        command += ["--executor", "dask", "--workers", "2"]
        env = {**os.environ, TRACED_BRANCHES_ENV: "on" if traced else "off"}
        tic = time.perf_counter()
        subprocess.run(command, check=True, env=env, capture_output=True)
        seconds = time.perf_counter() - tic
        report = json.loads((Path(out) / "report.json").read_text())
    return seconds, int(report["events"])


def command_run_schema_branches(fileset: dict[str, Any], cache: bool) -> tuple[float, int]:
    """:func:`command_run` reading the schema's branches."""
    return command_run(fileset, cache, traced=False)


def whole_run_without(variable: str, fileset: dict[str, Any], cache: bool) -> tuple[float, int]:
    """:func:`whole_run` with the switch ``variable`` (an environment variable) ``off``."""
    os.environ[variable] = "off"
    try:
        return whole_run(fileset, cache)
    finally:
        del os.environ[variable]


def whole_run_complete_trees(fileset: dict[str, Any], cache: bool) -> tuple[float, int]:
    """:func:`whole_run` reading complete trees (``TAU3MU_LAZY_TREES=off``)."""
    from tau3mu.reading import LAZY_TREES_ENV

    return whole_run_without(LAZY_TREES_ENV, fileset, cache)


def whole_run_schema_branches(fileset: dict[str, Any], cache: bool) -> tuple[float, int]:
    """:func:`whole_run` reading the schema's branches (``TAU3MU_TRACED_BRANCHES=off``)."""
    from tau3mu.traced_branches import TRACED_BRANCHES_ENV

    return whole_run_without(TRACED_BRANCHES_ENV, fileset, cache)


def whole_run_chunk_per_file(fileset: dict[str, Any], cache: bool) -> tuple[float, int]:
    """:func:`whole_run` with one chunk per file, as coffea makes them
    (``TAU3MU_FILE_GROUPS=off``: no :mod:`tau3mu.filegroups`)."""
    from tau3mu.filegroups import FILE_GROUPS_ENV

    return whole_run_without(FILE_GROUPS_ENV, fileset, cache)


def inspection_only(fileset: dict[str, Any], cache: bool) -> tuple[float, int]:
    """Seconds of the inspection alone, as a run makes it (after tracing the branches
    the processor reads, where the run would: :func:`tau3mu.traced_branches.traced_inspection`),
    and the events it found."""
    from tau3mu import opentrees
    from tau3mu.processors.dsphipi import DsPhiPiProcessor
    from tau3mu.traced_branches import traced_inspection

    tic = time.perf_counter()
    processor = DsPhiPiProcessor(snapshot=False)
    result, _ = traced_inspection(fileset, processor, cache=cache, keep_trees=True)
    seconds = time.perf_counter() - tic
    opentrees.release()
    return seconds, result.total


def over_xrootd(fileset: dict[str, Any], server: Any) -> dict[str, Any]:
    """``fileset`` with every file read through ``server``'s ``root://`` URL."""
    return {
        name: {**spec, "files": {server.url(path): tree for path, tree in spec["files"].items()}}
        for name, spec in fileset.items()
    }


def bench(events_per_file: int, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from services.xrootd import xrootd_server

    many, few, total = mirror_sets(events_per_file)
    n_many = sum(len(spec["files"]) for spec in many.values())
    whole_run(few, cache=False)  # compile the kernels, import everything
    for fileset in (many, few):  # the cache rows measure reruns: files known good
        inspection_only(fileset, cache=True)
    times: dict[tuple[str, str], list[float]] = {}
    with xrootd_server(DATA) as server:
        remote = (over_xrootd(many, server), over_xrootd(few, server))
        measures = (
            ("whole run", whole_run, (False, True), (many, few)),
            ("whole run, the schema's branches", whole_run_schema_branches, (False,), (many, few)),
            ("whole run, a chunk per file", whole_run_chunk_per_file, (True,), (many, few)),
            ("whole run, complete trees", whole_run_complete_trees, (True,), (many, few)),
            ("inspection only", inspection_only, (False, True), (many, few)),
            ("tau3mu run, 2 Dask workers", command_run, (False,), (many, few)),
            (
                "tau3mu run, 2 Dask workers, the schema's branches",
                command_run_schema_branches,
                (False,),
                (many, few),
            ),
            ("whole run over XRootD (loopback)", whole_run, (False,), remote),
            ("inspection only over XRootD (loopback)", inspection_only, (False,), remote),
        )
        for _ in range(repeat):
            for what, measure, caches, filesets in measures:
                for cache in caches:
                    how = "inspection cache, files known good" if cache else "every file inspected"
                    for label, fileset in zip(("many", "few"), filesets, strict=True):
                        seconds, events = measure(fileset, cache)
                        if events != total:
                            raise RuntimeError(f"{label}: {events} events, expected {total}")
                        times.setdefault((what, how), []).append(seconds)
                        times.setdefault((what, f"{how}|{label}"), []).append(seconds)
    rows = []
    for (what, how), _ in list(times.items()):
        if "|" in how:
            continue
        wall_many = statistics.median(times[(what, f"{how}|many")])
        wall_few = statistics.median(times[(what, f"{how}|few")])
        rows.append(
            {
                "what": what,
                "how": how,
                f"{n_many} files s": round(wall_many, 2),
                f"{FEW} files s": round(wall_few, 2),
                "per-file ms": round(1e3 * (wall_many - wall_few) / (n_many - FEW), 1),
            }
        )
    meta = {"events": total, "files": [n_many, FEW], "repeat": repeat}
    return rows, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-file", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["TAU3MU_CACHE_DIR"] = cache_dir  # the cache rows start from this run's
        rows, meta = bench(args.events_per_file, args.repeat)
    print(save(f"small_files_{args.events_per_file}", rows, meta))


if __name__ == "__main__":
    main()
