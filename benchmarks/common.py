"""Shared pieces of the benchmarks: data sets, timing, tables."""

from __future__ import annotations

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


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def save(name: str, rows: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> str:
    """Write ``results/<name>.json`` and ``.md``; return the markdown table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"machine": machine(), **(meta or {}), "rows": rows}, indent=2)
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
