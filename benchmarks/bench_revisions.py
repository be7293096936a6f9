"""Two revisions of tau3mu side by side: ``tau3mu run`` end to end on the same files.

Each revision is an installed copy of tau3mu: a Python interpreter whose environment
imports that revision (for example a ``git worktree`` of the older commit with its own
editable install). Every round runs each revision once, in a fresh process, in turn
(``--executor iterative --no-fit``: one core, the analysis alone), on the same generated
files; the table gives the median wall time of each and their ratio, and checks that
both revisions wrote the same cutflow.

Usage: ``python benchmarks/bench_revisions.py --before /path/to/old/.venv/bin/python
[--layout run2 run3] [--gb 0.5] [--repeat 3]``. Results: ``results/revisions.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dataset, save

RUN = "import sys; from tau3mu import cli; sys.exit(getattr(cli, 'console_main', cli.main)())"


def revision_of(python: str) -> str:
    """The commit of the tau3mu that ``python`` imports (``git rev-parse`` in its tree)."""
    where = subprocess.run(
        [python, "-c", "import tau3mu, pathlib; print(pathlib.Path(tau3mu.__file__).parent)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),  # not a folder whose tau3mu/ would shadow the installed one
    ).stdout.strip()
    return subprocess.run(
        ["git", "-C", where, "rev-parse", "--short=10", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def run_once(python: str, datasets_json: str) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one ``tau3mu run`` in a fresh process, and its cutflow."""
    with tempfile.TemporaryDirectory() as out:
        command = [python, "-c", RUN, "run", datasets_json, "--out", out]
        command += ["--executor", "iterative", "--no-fit", "--no-progress"]
        tic = time.perf_counter()
        # run from the output folder: ``python -c`` puts the working folder first on
        # sys.path, where a checkout's tau3mu/ would shadow the revision installed
        subprocess.run(command, check=True, capture_output=True, cwd=out)
        wall = time.perf_counter() - tic
        cutflow = json.loads((Path(out) / "cutflow.json").read_text())
    return wall, cutflow


def compare(layout: str, gb: float, pythons: dict[str, str], repeat: int) -> dict[str, Any]:
    """One layout's row: the median wall of each revision and the ratio before / now."""
    info = dataset(layout, gb)
    datasets_json = info["datasets_json"]
    walls: dict[str, list[float]] = {name: [] for name in pythons}
    cutflows: dict[str, Any] = {}
    for _ in range(repeat):
        for name, python in pythons.items():
            wall, cutflows[name] = run_once(python, datasets_json)
            walls[name].append(wall)
    medians = {name: statistics.median(w) for name, w in walls.items()}
    return {
        "layout": layout,
        "events": info["events"],
        "before_s": round(medians["before"], 2),
        "now_s": round(medians["now"], 2),
        "before_range_s": [round(min(walls["before"]), 2), round(max(walls["before"]), 2)],
        "now_range_s": [round(min(walls["now"]), 2), round(max(walls["now"]), 2)],
        "before_over_now": round(medians["before"] / medians["now"], 3),
        "same_cutflow": cutflows["before"] == cutflows["now"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="interpreter of the older revision")
    parser.add_argument("--now", default=sys.executable, help="interpreter of this revision")
    parser.add_argument("--layout", nargs="+", default=["run2", "run3"])
    parser.add_argument("--gb", type=float, default=0.5, help="size of each layout's set")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pythons = {"before": args.before, "now": args.now}
    rows = [compare(layout, args.gb, pythons, args.repeat) for layout in args.layout]
    meta = {"revisions": {name: revision_of(p) for name, p in pythons.items()}}
    print(save("revisions", rows, meta))


if __name__ == "__main__":
    main()
