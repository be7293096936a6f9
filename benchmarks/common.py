"""Shared pieces of the benchmarks: data sets, timing, tables."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("TAU3MU_BENCH_DATA", Path(__file__).resolve().parents[1] / "bench-data"))


def dataset(
    layout: str,
    gigabytes: float,
    *,
    seed: int = 7,
    jobs: int | None = None,
    events_per_file: int | None = None,
) -> dict[str, Any]:
    """Generate (once; cached by size) full-width files of about ``gigabytes`` GB.

    By default in files of ~0.25 GB; ``events_per_file`` sets their size instead (the
    memory benchmark needs files larger than its largest chunk).
    """
    from tau3mu.synth import generate_dataset

    bytes_per_event = 4400 if layout == "run2" else 290
    events = int(gigabytes * 1e9 / bytes_per_event)
    if events_per_file:
        files = max(1, round(events / events_per_file))
        events = files * events_per_file
        outdir = DATA / f"{layout}_{files}x{events_per_file}"
    else:
        files = max(2, round(gigabytes / 0.25))
        outdir = DATA / f"{layout}_{gigabytes:g}GB"
    stamp = outdir / "generated.json"
    if stamp.is_file():
        return json.loads(stamp.read_text())
    info = generate_dataset(
        outdir,
        layout=layout,
        files=files,
        events_per_file=events // files,
        seed=seed,
        jobs=jobs or os.cpu_count() or 1,
        name=f"bench_{layout}",
    )
    stamp.write_text(json.dumps(info, indent=2, default=str))
    return info


#: the Run 2 set the speed issue measured: 4 files of 175k events written by ROOT (ZLIB-1)
ISSUE_RUN2_FILES, ISSUE_RUN2_EVENTS_PER_FILE = 4, 175_000


def issue_run2_set() -> dict[str, Any]:
    """The speed issue's Run 2 set (generated once): ``ISSUE_RUN2_FILES`` full-width files
    of ``ISSUE_RUN2_EVENTS_PER_FILE`` events, ~3 GB, in ``run2_4x175000``."""
    events = ISSUE_RUN2_FILES * ISSUE_RUN2_EVENTS_PER_FILE
    return dataset("run2", events * 4400 / 1e9, events_per_file=ISSUE_RUN2_EVENTS_PER_FILE)


def run3_set() -> dict[str, Any]:
    """The Run 3 set of the scaling and overhead benchmarks (generated once): ~0.5 GB of
    the NanoAOD producer's layout, in ``run3_0.5GB``."""
    return dataset("run3", 0.5)


def fileset_of(info: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """coffea fileset and file paths of a generated dataset, through its datasets.json."""
    from tau3mu.datasets import load_datasets, to_fileset

    datasets = load_datasets(info["datasets_json"], names=list(info["datasets"]))
    return to_fileset(datasets), [f for d in datasets for f in d.files]


def run_worker(
    script: str,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh Python process (``python -c script args...``): every
    measurement pays its own imports and JIT. A failure raises with the end of its stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args[:1]} failed:\n{proc.stderr[-3000:]}")
    return proc


def timed(function: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        tic = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - tic)
    return best, result


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


#: when this benchmark process started, and the machine's load then
STARTED = {"utc": _utc_now(), "load": [round(x, 2) for x in os.getloadavg()]}


def machine() -> dict[str, Any]:
    """What the benchmark ran on: host, cores, CPU model, memory, Python, OS."""
    cpu_model, memory_gb = None, None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024**2, 1)
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_GB": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_state() -> dict[str, Any]:
    """The commit the benchmark's code is at, and whether the work tree differs from it
    (``dirty``: tracked or untracked files changed, results/ left out); None outside git."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--", ".", ":(exclude)benchmarks/results")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def provenance() -> dict[str, Any]:
    """Where a result comes from: commit (and dirty flag), start and end dates (UTC), the
    load average at both, the machine, and the command line."""
    return {
        **git_state(),
        "started_utc": STARTED["utc"],
        "saved_utc": _utc_now(),
        "load_at_start": STARTED["load"],
        "load_at_save": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
    }


def save(name: str, rows: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> str:
    """Write ``results/<name>.json`` (the rows, ``meta`` and the :func:`provenance`) and
    ``results/<name>.md``; return the markdown table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"provenance": provenance(), **(meta or {}), "rows": rows}, indent=2) + "\n"
    )
    table = markdown(rows)
    (RESULTS / f"{name}.md").write_text(table + "\n")
    return table


def markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = []
        for key in keys:
            value = row.get(key, "")
            cells.append(
                f"{value:,.3g}"
                if isinstance(value, float)
                else f"{value:,}"
                if isinstance(value, int)
                else str(value)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
