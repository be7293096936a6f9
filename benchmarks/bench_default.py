"""``tau3mu run`` without an executor option against one core and the other executors.

Every round runs each way once, in a fresh process, in turn (interleaved: a change of
the machine's load falls on every way alike), ``--no-fit``, end to end on the same
files: ``--executor iterative`` (one core), the default (no executor option: what the
automatic choice picks), ``--executor dask --workers 1`` and ``2``, ``--executor futures
--workers 2``. With ``--before PYTHON`` the default and ``--executor dask --workers 2``
of another revision (an interpreter that imports it) run in the same rounds.

Each row: median wall and range, the peak RSS of the run's process (or of the largest
descendant it waited for; Dask's workers are the forkserver's children), the
executor the run reports, and whether its cutflow is the one ``--executor iterative``
wrote. The ratios the issue asks for: default against ``--executor iterative``, and
``--workers 2`` against ``--workers 1`` (the wall of the whole run, cluster start
included).

Usage: ``python benchmarks/bench_default.py [DATASETS_JSON] [--repeat 3] [--before
PYTHON]`` (default: the 4 x 175k-event Run 2 set, ``common.issue_run2_set``). Results: ``results/default_executor.json``.
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

from bench_revisions import revision_of
from common import issue_run2_set, save

RUN = "import sys; from tau3mu import cli; sys.exit(getattr(cli, 'console_main', cli.main)())"

#: the ways a run is made, by name: the options after ``tau3mu run DATASETS --out OUT``
WAYS: dict[str, list[str]] = {
    "--executor iterative": ["--executor", "iterative"],
    "default": [],
    "--executor dask --workers 1": ["--executor", "dask", "--workers", "1"],
    "--executor dask --workers 2": ["--executor", "dask", "--workers", "2"],
    "--executor futures --workers 2": ["--executor", "futures", "--workers", "2"],
}

#: the ways also run with the ``--before`` revision
BEFORE_WAYS = ("default", "--executor dask --workers 2")


def run_once(python: str, datasets_json: str, options: list[str]) -> dict[str, Any]:
    """One ``tau3mu run --no-fit`` in a fresh process: wall seconds, the peak RSS of its
    largest process (GB), the executor its report names, and its cutflow."""
    with tempfile.TemporaryDirectory() as out:
        command = [python, "-c", RUN, "run", datasets_json, "--out", out, "--no-fit"]
        command += ["--no-progress", *options]
        log = Path(out) / "stderr.txt"
        tic = time.perf_counter()
        # from the output folder: ``python -c`` puts the working folder first on sys.path
        with log.open("w") as stderr:
            proc = subprocess.Popen(command, cwd=out, stdout=subprocess.DEVNULL, stderr=stderr)
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - tic
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            name = " ".join(options) or "default"
            raise RuntimeError(f"{name} failed:\n{log.read_text()[-3000:]}")
        report = json.loads((Path(out) / "report.json").read_text())
        cutflow = json.loads((Path(out) / "cutflow.json").read_text())
    return {
        "wall_s": wall,
        # the run's process, or the largest of its descendants it waited for (GB)
        "peak_rss_GB": usage.ru_maxrss / 1024**2,
        "executor": _executor_of(report),
        "cutflow": cutflow,
    }


def _executor_of(report: dict[str, Any]) -> str:
    """The executor and workers a run's report.json names."""
    return f"{report.get('executor')} x {report.get('workers')}"


def measure(
    datasets_json: str, pythons: dict[str, str], repeat: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Interleaved rounds of every way; the rows and the ratios."""
    runs: dict[str, list[dict[str, Any]]] = {}
    ways = [(name, "now", options) for name, options in WAYS.items()]
    if "before" in pythons:
        ways += [(name, "before", WAYS[name]) for name in BEFORE_WAYS]
    for _ in range(repeat):
        for name, revision, options in ways:
            key = name if revision == "now" else f"{name} (before)"
            runs.setdefault(key, []).append(run_once(pythons[revision], datasets_json, options))
    reference = runs["--executor iterative"][0]["cutflow"]
    rows = []
    for key, done in runs.items():
        walls = [r["wall_s"] for r in done]
        rows.append(
            {
                "how": key,
                "executor": done[-1]["executor"],
                "median_s": round(statistics.median(walls), 2),
                "range_s": f"{min(walls):.2f}-{max(walls):.2f}",
                "peak_rss_GB": round(max(r["peak_rss_GB"] for r in done), 2),
                "same_cutflow": all(r["cutflow"] == reference for r in done),
            }
        )
    median = {row["how"]: row["median_s"] for row in rows}
    ratios = {
        "default_speedup_over_iterative": round(
            median["--executor iterative"] / median["default"], 3
        ),
        "dask_2_over_1_workers": round(
            median["--executor dask --workers 1"] / median["--executor dask --workers 2"], 3
        ),
    }
    if "default (before)" in median:
        ratios["default_before_over_now"] = round(median["default (before)"] / median["default"], 3)
    return rows, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "datasets_json",
        nargs="?",
        help="the datasets file of the set to run on (default: common.issue_run2_set's)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--before", help="interpreter of an older revision, run beside")
    args = parser.parse_args()
    pythons = {"now": sys.executable}
    if args.before:
        pythons["before"] = args.before
    datasets_json = os.path.abspath(args.datasets_json or issue_run2_set()["datasets_json"])
    rows, ratios = measure(datasets_json, pythons, args.repeat)
    meta = {
        "datasets_json": datasets_json,
        "cores": len(os.sched_getaffinity(0)),
        "rounds": args.repeat,
        "ratios": ratios,
        "revisions": {name: revision_of(python) for name, python in pythons.items()},
    }
    print(save("default_executor", rows, meta))
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
