"""Throughput of the full analysis against the RDataFrame original and the I/O floor.

All measured side by side in one run, on the same files and cores:

- ``floor``: uproot reading and decompressing exactly the branches the analysis reads,
  as uproot comes (zlib inflate, its ``std::vector`` reader), with ISA-L inflate, and
  with ISA-L and tau3mu's one-pass ``std::vector`` readers (:mod:`tau3mu.vectors`);
  the processor is measured reading each of the three ways;
- ``tau3mu``: the processor through the coffea Runner (iterative executor, one core),
  selection and histograms, no fit; in-process (steady state) and as ``tau3mu run``
  end to end (a fresh process: imports, JIT, outputs); each with every file inspected
  before the run, and as a rerun whose inspection cache knows the files
  (:mod:`tau3mu.cache`);
- ``rdf``: the original RDataFrame pipeline with the original's defects corrected (ROOT from PyPI),
  one thread and all threads, end to end and its event loop alone.

Every row is measured ``--repeat`` times (3), the rows of a round interleaved, and the
median kept, with the range beside it: single runs on this shared machine moved by 15 %.

Usage: ``python benchmarks/bench_throughput.py [--gb 2] [--layout run2 run3]
[--events-per-file N] [--repeat 3]``. By default the set is written in files of ~0.25 GB; each file
costs the analysis a fixed ~0.3 s (Run 2: uproot deserialising its 277 branches' metadata,
NanoEvents typing them), so ``--events-per-file`` measures the same amount of data in
larger files (results saved as ``throughput_<layout>_<N>``).
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

from common import dataset, fileset_of, save


def needed_branches(path: str, tree: str) -> list[str]:
    import uproot

    from tau3mu.layouts import RUN2, RUN3
    from tau3mu.schemas import detect_layout, required_branches

    t = uproot.open(path)[tree]
    layout = detect_layout(t.keys())
    names = required_branches(layout)
    truth = RUN2.truth if layout == "run2" else RUN3.truth
    if truth in t.keys():  # noqa: SIM118
        names.add(truth)
    if layout == "run3":  # counters come with the jagged branches
        names |= {
            RUN3.counter(c)
            for c in (RUN3.candidate_collection, RUN3.muon_collection, RUN3.track_collection)
        }
        names |= {k for k in t.keys() if k.startswith(("HLT_", "L1_"))}  # noqa: SIM118
    return sorted(n for n in names if n in t.keys())  # noqa: SIM118


def compressed_bytes(files: list[str], tree: str, branches: list[str]) -> int:
    import uproot

    total = 0
    for f in files:
        t = uproot.open(f)[tree]
        total += sum(t[b].compressed_bytes for b in branches)
    return total


def floor(files: list[str], tree: str, branches: list[str], step: int) -> float:
    """uproot reading the branches chunk by chunk (``$TAU3MU_VECTORS`` chooses the
    ``std::vector`` reader, as in the analysis)."""
    import uproot

    from tau3mu.reading import uproot_options

    tic = time.perf_counter()
    for f in files:
        t = uproot.open(f, **uproot_options([f]))[tree]
        for _ in t.iterate(branches, step_size=step, library="ak"):
            pass
    return time.perf_counter() - tic


def analysis_in_process(fileset: dict, step: int, cache: bool = False) -> tuple[float, Any]:
    """The Runner in this process, after a warm-up chunk (JIT, imports), and its output.
    ``cache``: the files were inspected by an earlier run and are not opened again before
    the run."""
    from tau3mu.execution import run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    run_runner(fileset, DsPhiPiProcessor(), chunksize=step, maxchunks=1, inspection_cache=cache)
    tic = time.perf_counter()
    out = run_runner(fileset, DsPhiPiProcessor(), chunksize=step, inspection_cache=cache)
    files = sum(len(spec["files"]) for spec in fileset.values())
    assert out.metrics["files_known_good"] == (files if cache else 0)
    return time.perf_counter() - tic, out


def differences(ours: Any, dataset: str, rdf_result: dict) -> list[str]:
    """Where tau3mu's output and the RDataFrame pipeline's differ: the complete cutflow
    (every step, events and candidates, the same steps in the same order) and every bin
    of ``h_mass``. Empty when identical."""
    import numpy as np

    found = []
    cutflow = {k: [v["events"], v["candidates"]] for k, v in ours.cutflow[dataset].items()}
    if list(cutflow.items()) != list(rdf_result["cutflow"].items()):
        found.append(f"cutflow: tau3mu {cutflow} != RDataFrame {rdf_result['cutflow']}")
    h_mass = ours.hists["h_mass"][{"dataset": dataset, "systematic": "nominal"}].values()
    theirs = np.asarray(rdf_result["h_mass"], dtype=np.float64)
    if h_mass.shape != theirs.shape or not np.array_equal(h_mass, theirs):
        bins = np.flatnonzero(h_mass != theirs) if h_mass.shape == theirs.shape else "all"
        found.append(f"h_mass differs in bins {bins}: tau3mu {h_mass} != RDataFrame {theirs}")
    if not sum(cutflow["best_candidate"]):
        found.append("nothing selected: the comparison would be empty")
    return found


def analysis_end_to_end(datasets_json: str, step: int, cache_dir: str) -> float:
    """``tau3mu run`` in a fresh process, with its inspection cache in ``cache_dir``."""
    with tempfile.TemporaryDirectory() as out:
        tic = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tau3mu.cli",
                "run",
                datasets_json,
                "--out",
                out,
                "--executor",
                "iterative",
                "--chunksize",
                str(step),
                "--no-fit",
                "--no-progress",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "TAU3MU_CACHE_DIR": cache_dir},
        )
        return time.perf_counter() - tic


def rdf(files: list[str], threads: int, layout: str = "run2") -> dict:
    """The RDataFrame pipeline in a fresh process: its result and wall time. A failure
    raises, with the end of its stderr."""
    script = Path(__file__).resolve().parent / "rdf_original.py"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rdf.json"
        tic = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                str(script),
                *files,
                "--layout",
                layout,
                "--threads",
                str(threads),
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - tic
        if proc.returncode != 0:
            raise RuntimeError(f"rdf_original.py failed:\n{proc.stderr[-2000:]}")
        result = json.loads(out.read_text())
    result["wall_s"] = wall
    return result


def bench(
    layout: str, gb: float, step: int, events_per_file: int | None = None, repeat: int = 3
) -> tuple[list[dict], dict]:
    """Every row ``repeat`` times, the rows of a round interleaved (so that a slow spell of
    this shared machine touches all of them), and each row's median kept."""
    info = dataset(layout, gb, events_per_file=events_per_file)
    ((name, spec),) = info["datasets"].items()
    fileset, files = fileset_of(info)
    tree = spec["treename"]
    branches = needed_branches(files[0], tree)
    events = info["events"]
    mb = compressed_bytes(files, tree, branches) / 1e6
    times: dict[tuple[str, int, str], list[float]] = {}

    def note_time(what: str, threads: int, seconds: float, note: str = "") -> None:
        times.setdefault((what, threads, note), []).append(seconds)

    from tau3mu import inflate

    # uproot as it comes (standard-library inflate, its own std::vector reader), then
    # ISA-L inflate, then also tau3mu's one-pass std::vector readers (tau3mu's default):
    # the floor and the analysis each read the same way in each pair of rows
    ways = (("zlib", "uproot"), ("isal", "uproot"), ("isal", "tau3mu"))
    ours = first = None
    compared = 0
    for _ in range(repeat):
        for library, reader in ways:
            inflate.configure(library)
            os.environ["TAU3MU_VECTORS"] = reader
            how = f"{library} inflate, {reader} vector reader"
            note_time(
                f"I/O floor (uproot, needed branches), {how}",
                1,
                floor(files, tree, branches, step),
                f"{len(branches)} branches, {mb:.0f} MB",
            )
            seconds, ours = analysis_in_process(fileset, step)
            first = first or ours
            if ours.cutflow != first.cutflow or not all(
                (ours.hists[h].values() == first.hists[h].values()).all() for h in first.hists
            ):
                raise RuntimeError(f"tau3mu reading with {how} gives other results on {layout}")
            note_time(
                f"tau3mu processor (Runner, in process), {how}",
                1,
                seconds,
                "selection + histograms",
            )
        os.environ.pop("TAU3MU_VECTORS")
        inflate.configure()
        seconds, _ = analysis_in_process(fileset, step, cache=True)
        note_time(
            "tau3mu processor (Runner, in process), tau3mu defaults, files known good",
            1,
            seconds,
            "inspection cache: files not reopened before the run",
        )
        with tempfile.TemporaryDirectory() as cache_dir:
            for what, note in (
                ("first run", "every file opened to inspect it"),
                ("rerun", "inspection cache from the first run"),
            ):
                note_time(
                    f"tau3mu run (fresh process, end to end), {what}",
                    1,
                    analysis_end_to_end(info["datasets_json"], step, cache_dir),
                    f"imports, JIT, outputs; no fit; tau3mu defaults; {note}",
                )
        # the RDataFrame pipeline, on the same files (it reads both layouts)
        for threads in sorted({1, os.cpu_count() or 1}):
            result = rdf(files, threads, layout)
            found = differences(ours, name, result)
            if found:
                raise RuntimeError(
                    f"RDataFrame ({threads} thread(s)) and tau3mu differ on {layout}: "
                    + "; ".join(found)
                )
            compared += 1
            note_time(
                "RDataFrame original, corrected (end to end)",
                threads,
                result["wall_s"],
                "fresh process",
            )
            note_time(
                "RDataFrame event loop only",
                threads,
                result["timing"]["event_loop_s"],
                "steady state",
            )
    print(
        f"RDataFrame and tau3mu: identical complete cutflows and h_mass bins in all "
        f"{compared} comparisons"
    )
    rows = []
    for (what, threads, note), seconds in times.items():
        middle = statistics.median(seconds)
        rows.append(
            {
                "layout": layout,
                "what": what,
                "threads": threads,
                "wall_s": round(middle, 2),
                "range_s": f"{min(seconds):.2f}-{max(seconds):.2f}",
                "events_per_s": round(events / middle),
                "MB_per_s_compressed": round(mb / middle, 1),
                "us_per_event": round(1e6 * middle / events, 2),
                "note": note,
            }
        )
    return rows, {
        "events": events,
        "files": len(files),
        "compressed_MB_needed": round(mb, 1),
        "file_MB": round(info["bytes"] / 1e6),
        "branches": len(branches),
        "events_per_file": events // len(files),
        "repeats": repeat,
        "rdf_identical_results": compared,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--gb", type=float, default=2.0, help="size of the generated Run 2 set (GB)"
    )
    parser.add_argument("--layout", nargs="+", default=["run2", "run3"])
    parser.add_argument(
        "--chunksize",
        type=int,
        default=100_000,
        help="events per chunk (default %(default)s: the chunks docs/benchmarks.md was measured with)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of every row (the median is kept)"
    )
    parser.add_argument(
        "--events-per-file",
        type=int,
        default=None,
        help="write the set in files of this many events (default: files of ~0.25 GB)",
    )
    args = parser.parse_args()
    suffix = f"_{args.events_per_file}" if args.events_per_file else ""
    for layout in args.layout:
        gb = args.gb if layout == "run2" else args.gb / 10
        rows, info = bench(layout, gb, args.chunksize, args.events_per_file, args.repeat)
        print(save(f"throughput_{layout}{suffix}", rows, {"dataset": info}), flush=True)
        print(json.dumps(info, indent=2))
    print(merge(args.chunksize))


def merge(chunksize: int) -> str:
    """``results/throughput.md``: every set measured so far (each in its own run), one
    table with the set and its chunking named."""
    from common import RESULTS

    rows, datasets, sources = [], {}, {}
    for path in sorted(RESULTS.glob("throughput_run*.json")):
        saved = json.loads(path.read_text())
        sources[path.name] = saved.get("provenance")
        info = saved["dataset"]
        per_file = info["events_per_file"]
        chunks = (
            f"{chunksize // 1000}k"
            if per_file > chunksize
            else f"{chunksize // 1000}k (one chunk per file)"
        )
        name = f"{saved['rows'][0]['layout']}, {info['files']} files of {round(per_file / 1000)}k events"
        datasets[path.stem] = info
        rows += [
            {
                "set": name,
                "chunks": chunks,
                **{k: v for k, v in r.items() if k != "layout"},
                "source": path.name,
            }
            for r in saved["rows"]
        ]
    return save("throughput", rows, {"datasets": datasets, "sources": sources})


if __name__ == "__main__":
    main()
