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


# -- the wall-time model of docs/benchmarks.md ("Past this machine") --------------------
def _terms(**changes):
    from overheads_model import Terms

    values = {
        "client_start_s": 2.0,
        "cluster_start_s": 1.5,
        "cluster_close_s": 0.5,
        "warmup_s": 3.0,
        "s_per_event": 4e-6,
        "chunk_fixed_s": 0.2,
        "task_overhead_s": 0.02,
        "scheduler_s_per_task": 1e-3,
        "per_file_s": 0.3,
        "output_fixed_bytes": 5e4,
        "output_bytes_per_event": 12.0,
        "merge_s_per_item": 1e-3,
        "merge_s_per_byte": 2e-8,
        "write_s_per_event": 1e-7,
        "bytes_read_per_event": 220.0,
    }
    return Terms(**{**values, **changes})


def test_the_model_wall_is_the_sum_of_its_terms():
    from overheads_model import Workload, phases, predict

    workload = Workload(files=40, events_per_file=6_000_000, chunksize=200_000)
    assert (workload.chunks_per_file, workload.tasks) == (30, 1200)
    for remote in (True, False):
        p = predict(_terms(), workload, 64, remote=remote)
        data = max(p.compute_s, p.scheduler_s, p.io_s)
        total = p.start_s + data + p.merge_s + p.transfer_s + p.write_s
        assert p.wall_s == pytest.approx(total)
        assert p.start_s == pytest.approx(2.0 + 1.5 + 3.0 + 0.5)
        assert (p.io_s > 0) == remote
        assert p.largest in {"start", p.dominant, "merge", "transfer + write"}
        assert sum(phases(_terms(), p).values()) == pytest.approx(p.wall_s)
    # 1200 outputs merged 20 at a time: 60, then 3, then 1 reduce task
    assert predict(_terms(), workload, 64).reduce_tasks == 64
    assert predict(_terms(), workload, 64).depth == 3


def test_the_model_wall_falls_with_workers_and_never_beats_perfect_scaling():
    from overheads_model import Workload, predict

    workload = Workload(files=40, events_per_file=6_000_000, chunksize=200_000)
    walls = [predict(_terms(), workload, w).wall_s for w in (1, 2, 4, 16, 64, 256, 1024)]
    assert walls == sorted(walls, reverse=True)
    one = predict(_terms(), workload, 1)
    for workers in (2, 16, 256):
        assert one.wall_s / predict(_terms(), workload, workers).wall_s <= workers
    assert one.dominant == "compute"


def test_the_scheduler_binds_for_tiny_tasks_and_the_site_for_fast_ones():
    from overheads_model import Assumptions, Workload, predict, scheduler_bound_workers

    tiny = Workload(files=100_000, events_per_file=100, chunksize=200_000)
    cheap = _terms(s_per_event=5e-4, task_overhead_s=0.0, per_file_s=0.0)  # 0.05 s a task
    assert tiny.tasks == 100_000
    p = predict(cheap, tiny, 256, remote=False)
    assert p.dominant == "scheduler"
    assert p.scheduler_s >= tiny.tasks * 1e-3
    assert predict(cheap, tiny, 1, remote=False).dominant == "compute"
    bound = scheduler_bound_workers(cheap, tiny, remote=False)
    assert bound is not None
    assert 1 < bound <= 256
    assert predict(cheap, tiny, bound, remote=False).dominant == "scheduler"
    assert predict(cheap, tiny, bound - 1, remote=False).dominant != "scheduler"
    big = Workload(files=40, events_per_file=6_000_000, chunksize=200_000)
    slow_site = Assumptions(site_GB_per_s=0.5)
    assert predict(_terms(), big, 256, slow_site).dominant == "I/O"
    assert scheduler_bound_workers(_terms(), big, slow_site) is None


def test_small_files_run_as_tau3mu_groups_them():
    """Small files make tasks of up to ``group_files`` files, as many as fit in a chunk,
    and two tasks per worker at least where the files allow; large files are not
    grouped."""
    from overheads_model import Workload, predict

    from tau3mu.filegroups import files_per_group

    small = Workload(files=77_510, events_per_file=3000, chunksize=200_000, group_files=64)
    assert [small.tasks_on(w) for w in (1, 16, 256)] == [1212, 1212, 1212]
    few = Workload(files=1000, events_per_file=3000, chunksize=200_000, group_files=64)
    assert [few.files_per_task(w) for w in (1, 16, 256)] == [64, 32, 2]
    assert [few.files_per_task(w) for w in (16, 256)] == [
        files_per_group(1000, w) for w in (16, 256)
    ]
    assert predict(_terms(), few, 256).tasks == 500
    big = Workload(files=40, events_per_file=6_000_000, chunksize=200_000, group_files=64)
    assert big.tasks_on(256) == big.tasks == 1200


def test_the_model_refuses_no_workers():
    from overheads_model import Workload, predict

    with pytest.raises(ValueError, match="workers must be at least 1, not 0"):
        predict(_terms(), Workload(1, 1000, 200_000), 0)


def test_a_chunks_fixed_cost_comes_from_two_chunk_sizes():
    """``wall = chunks x fixed + events x per event``, solved from two chunk sizes."""
    from overheads_model import chunk_costs

    events, fixed, per_event = 1_000_000, 0.25, 2e-6
    rates = {
        str(size): {"chunks": chunks, "wall_s": chunks * fixed + events * per_event}
        for size, chunks in ((200_000, 5), (20_000, 50))
    }
    assert chunk_costs(rates, events) == pytest.approx((fixed, per_event))
