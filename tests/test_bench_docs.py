"""Benchmark figures in README.md and docs/benchmarks.md come from saved results, and
every saved result says where it comes from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import common  # noqa: E402
import render_docs  # noqa: E402


def test_documents_show_the_saved_results():
    """``render_docs.py --check``: every results block of README.md and docs/benchmarks.md
    is what the saved results render to (run ``make bench-docs`` after a benchmark)."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "render_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for document in render_docs.DOCUMENTS:
        assert "<!-- results:" in document.read_text(), document


def test_a_block_is_replaced_and_nothing_else():
    text = (
        "before 1.23 s\n<!-- results:memory -->\n| stale | 999 |\n<!-- /results:memory -->\n"
        "after 4.56 s\n"
    )
    rendered = render_docs.render(text, Path("doc.md"))
    assert rendered.startswith("before 1.23 s\n<!-- results:memory -->\n")
    assert rendered.endswith("<!-- /results:memory -->\nafter 4.56 s\n")
    assert "999" not in rendered
    assert "Source: `benchmarks/results/memory.json`" in rendered
    peak = {r["chunksize"]: r for r in render_docs.load("memory")["rows"]}[200_000]
    assert f"| {peak['peak_rss_MB']:,} |" in rendered
    assert render_docs.render(rendered, Path("doc.md")) == rendered  # stable


def test_an_unknown_block_is_an_error():
    with pytest.raises(SystemExit, match=r"doc\.md: unknown results block 'nonsense'"):
        render_docs.render(
            "<!-- results:nonsense -->\n<!-- /results:nonsense -->\n", Path("doc.md")
        )


def test_saved_results_carry_their_provenance(tmp_path, monkeypatch):
    """``common.save``, which every bench_*.py saves through: the commit and dirty flag,
    dates, load averages, machine and command line come with the rows."""
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    table = common.save("example", [{"what": "x", "wall_s": 1.5}], {"events": 10})
    assert table.splitlines()[0] == "| what | wall_s |"
    saved = json.loads((tmp_path / "example.json").read_text())
    assert saved["rows"] == [{"what": "x", "wall_s": 1.5}]
    assert saved["events"] == 10
    provenance = saved["provenance"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=BENCHMARKS, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert provenance["commit"] == head
    assert isinstance(provenance["dirty"], bool)
    assert provenance["started_utc"] <= provenance["saved_utc"]
    assert len(provenance["load_at_start"]) == len(provenance["load_at_save"]) == 3
    assert provenance["machine"]["cpus"] >= 1
    assert provenance["command"] == [Path(sys.argv[0]).name, *sys.argv[1:]]
    described = render_docs.describe(provenance, saved)
    assert described.startswith(f"commit `{head[:10]}`")
