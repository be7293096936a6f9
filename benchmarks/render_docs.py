"""``make bench-docs``: the benchmark tables of README.md and docs/benchmarks.md, rendered
from the saved results in ``benchmarks/results/``.

Each rendered block sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``
and is replaced as a whole; the text around the markers is not touched. Every block
names the result files it was rendered from and their provenance (commit, date, load,
machine), or says that a file carries none (saved before provenance was recorded).

Usage: ``python benchmarks/render_docs.py [--check]``; ``--check`` changes nothing and
exits 1 when a document differs from its rendering (the docs are stale).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, markdown

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "benchmarks.md")
BLOCK = re.compile(
    r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S
)

#: the throughput rows the summaries quote, by the benchmark's ``what``
FLOOR_UPROOT = "I/O floor (uproot, needed branches), isal inflate, uproot vector reader"
FLOOR_TAU3MU = "I/O floor (uproot, needed branches), isal inflate, tau3mu vector reader"
PROCESSOR = "tau3mu processor (Runner, in process), isal inflate, tau3mu vector reader"
END_TO_END = "tau3mu run (fresh process, end to end), first run"
RERUN = "tau3mu run (fresh process, end to end), rerun"
RDF_END_TO_END = "RDataFrame original, corrected (end to end)"
RDF_LOOP = "RDataFrame event loop only"


def load(name: str) -> dict[str, Any]:
    """``results/<name>.json``; a missing file is an error naming it."""
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"render_docs: {path} is missing: run the benchmark that saves it")
    return json.loads(path.read_text())


def describe(provenance: dict[str, Any] | None, saved: dict[str, Any]) -> str:
    """One line on where a result file comes from."""
    if not provenance:
        machine = saved.get("machine") or {}
        return (
            "no provenance recorded (saved before results carried commit, date and load; "
            f"machine: {machine.get('cpus', '?')} CPUs, {machine.get('platform', '?')})"
        )
    machine = provenance.get("machine") or {}
    commit = (provenance.get("commit") or "unknown")[:10]
    dirty = " with uncommitted changes" if provenance.get("dirty") else ""
    load_start = ", ".join(f"{x:g}" for x in provenance.get("load_at_start", []))
    load_save = ", ".join(f"{x:g}" for x in provenance.get("load_at_save", []))
    return (
        f"commit `{commit}`{dirty}, {provenance.get('started_utc')} to "
        f"{provenance.get('saved_utc')}, load average {load_start} at the start and "
        f"{load_save} at the end, {machine.get('host', '?')}: {machine.get('cpus', '?')} "
        f"CPUs ({machine.get('cpu_model', '?')}), {machine.get('memory_GB', '?')} GB"
    )


def source_line(*names: str) -> str:
    """``Source: ...`` for the result files ``names`` (a merged throughput table names the
    per-set files it was merged from)."""
    parts = []
    for name in names:
        saved = load(name)
        if name == "throughput":
            for file, provenance in (saved.get("sources") or {}).items():
                source = json.loads((RESULTS / file).read_text())
                parts.append(f"`benchmarks/results/{file}`: {describe(provenance, source)}")
            if not saved.get("sources"):
                sets = ", ".join(f"`{s}.json`" for s in saved.get("datasets", {}))
                parts.append(
                    f"`benchmarks/results/throughput.json` (merged from {sets}): "
                    + describe(None, saved)
                )
        else:
            parts.append(
                f"`benchmarks/results/{name}.json`: {describe(saved.get('provenance'), saved)}"
            )
    return "Source: " + "; ".join(parts) + "."


# -- the throughput results ------------------------------------------------------------
def throughput_sets() -> tuple[list[str], dict[tuple[str, str, int], dict[str, Any]]]:
    """The sets in their saved order, and every row by (set, what, threads)."""
    rows = load("throughput")["rows"]
    sets = list(dict.fromkeys(r["set"] for r in rows))
    return sets, {(r["set"], r["what"], r["threads"]): r for r in rows}


def render_throughput() -> str:
    rows = load("throughput")["rows"]
    shown = [{k: v for k, v in r.items() if k != "source"} for r in rows]
    return markdown(shown) + "\n\n" + source_line("throughput")


def _us(value: float) -> str:
    return f"{value:.3g}"


def render_performance() -> str:
    """README's summary: microseconds per event of the main rows, and their ratios."""
    sets, row = throughput_sets()
    lines = [
        "| µs per event | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    for label, what, wall in (
        ("I/O floor: uproot reads the needed branches (ISA-L inflate)", FLOOR_UPROOT, False),
        ("the same, with tau3mu's one-pass `std::vector` readers", FLOOR_TAU3MU, False),
        ("tau3mu processor, steady state", PROCESSOR, False),
        ("`tau3mu run` end to end (fresh process, no fit), first run", END_TO_END, True),
        ("RDataFrame original, corrected, end to end", RDF_END_TO_END, True),
        ("RDataFrame event loop only, without its JIT", RDF_LOOP, False),
    ):
        cells = []
        for s in sets:
            r = row[(s, what, 1)]
            cells.append(_us(r["us_per_event"]) + (f" ({r['wall_s']:.3g} s)" if wall else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    def ratios(numerator: str, denominator: str, key: str, percent: bool = False) -> str:
        values = [row[(s, numerator, 1)][key] / row[(s, denominator, 1)][key] for s in sets]
        return ", ".join(f"{100 * v:.0f} %" if percent else f"{v:.2f}x" for v in values)

    lines += [
        "",
        f"In the order of the columns: per event in steady state tau3mu is "
        f"{ratios(RDF_LOOP, PROCESSOR, 'us_per_event')} cheaper than the RDataFrame "
        f"pipeline's event loop; end to end it is {ratios(RDF_END_TO_END, END_TO_END, 'wall_s')} "
        f"faster (a rerun, with the inspection cache: {ratios(RDF_END_TO_END, RERUN, 'wall_s')}). "
        f"It runs at {ratios(FLOOR_TAU3MU, PROCESSOR, 'us_per_event', True)} of the floor's "
        f"rate with tau3mu's readers, and at {ratios(FLOOR_UPROOT, PROCESSOR, 'us_per_event', True)} "
        "of uproot's own.",
        "",
        source_line("throughput"),
    ]
    return "\n".join(lines)


def render_targets() -> str:
    """docs' table of the issue's targets, each ratio computed from the saved rows and
    judged against its target."""
    sets, row = throughput_sets()
    memory = {r["chunksize"]: r for r in load("memory")["rows"]}
    scaling = load("scaling")["rows"]

    def ratio(
        numerator: str, denominator: str, key: str, target: float, percent: bool = False
    ) -> list[str]:
        cells = []
        for s in sets:
            a, b = row[(s, numerator, 1)][key], row[(s, denominator, 1)][key]
            value = f"{100 * a / b:.1f} %" if percent else f"{a / b:.2f}x"
            met = "met" if a / b >= target else "not met"
            cells.append(f"{a:.3g} / {b:.3g} = **{value}**, {met}")
        return cells

    def line(target: str, cells: list[str]) -> str:
        return f"| {target} | " + " | ".join(cells + [""] * (len(sets) - len(cells))) + " |"

    most = max(r["workers"] for r in scaling)
    efficiency = ", ".join(
        f"{r['mode']} {r['efficiency']:.2f}" for r in scaling if r["workers"] == most
    )
    lines = [
        "| target | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
        line(
            "end to end, one core, at least 3x faster than RDataFrame (s)",
            ratio(RDF_END_TO_END, END_TO_END, "wall_s", 3.0),
        ),
        line(
            "the same, a rerun with the inspection cache (s)",
            ratio(RDF_END_TO_END, RERUN, "wall_s", 3.0),
        ),
        line(
            "steady-state cost per event at least 2x lower than RDataFrame's (µs)",
            ratio(RDF_LOOP, PROCESSOR, "us_per_event", 2.0),
        ),
        line(
            "full analysis at least 80 % of the I/O floor's rate, the floor with tau3mu's readers (µs)",
            ratio(FLOOR_TAU3MU, PROCESSOR, "us_per_event", 0.8, percent=True),
        ),
        line(
            "the same, against the floor as uproot reads with ISA-L inflate (µs)",
            ratio(FLOOR_UPROOT, PROCESSOR, "us_per_event", 0.8, percent=True),
        ),
        line(
            f"at least 90 % parallel efficiency from 1 worker to all cores ({most} here)",
            [f"{efficiency} (`scaling.json`, {load('scaling').get('layout', '')} set)"],
        ),
    ]
    if 200_000 in memory:
        peak = memory[200_000]["peak_rss_MB"]
        met = "met" if peak <= 1000 else "not met"
        lines.append(
            line(
                "at most 1 GB peak RSS per worker with 200k-event chunks",
                [f"**{peak:,} MB** (`memory.json`, Run 2), {met}"],
            )
        )
    lines += ["", source_line("throughput", "scaling", "memory")]
    return "\n".join(lines)


# -- the other benchmarks ----------------------------------------------------------------
def render_table(name: str) -> Callable[[], str]:
    def render() -> str:
        return markdown(load(name)["rows"]) + "\n\n" + source_line(name)

    return render


def render_fit() -> str:
    saved = load("fit")
    rows = saved["rows"]
    lines = [
        "| engine | import | build | compile | first fit (Migrad / Hesse) | cold | warm (Migrad / Hesse) | largest yield difference to iminuit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        engine = r["engine"]
        if engine == "zfit before" and saved.get("before"):
            engine += f" (`{saved['before']}`)"
        lines.append(
            f"| {engine} | {r['import_s']:.3g} s | {r['build_s']:.2g} s | "
            f"{r['compile_s']:.3g} s | {r['first_fit_s']:.2g} s ({r['first_migrad_s']:.2g} / "
            f"{r['first_hesse_s']:.2g}) | {r['cold_s']:.3g} s | {r['warm_s']:.2g} s "
            f"({r['warm_migrad_s']:.2g} / {r['warm_hesse_s']:.2g}) | "
            f"{r['max_yield_diff_sigma']:.2g} sigma |"
        )
    return "\n".join(lines) + "\n\n" + source_line("fit")


def render_fit_summary() -> str:
    """README's sentence on the fit's time, from the fit benchmarks."""
    rows = {r["engine"]: r for r in load("fit")["rows"]}
    saved = load("cold_fit")
    cold = {r["command"]: r for r in saved["rows"]}
    zfit, iminuit = cold["tau3mu fit (zfit)"], cold["tau3mu fit --fit-engine iminuit"]
    reference = cold[saved.get("reference", "python -c 'import zfit'")]
    return (
        f"A warm fit takes {rows['zfit']['warm_s']:.2g} s. A cold `tau3mu fit` of one "
        f"dataset, in a fresh process with its figures, costs {zfit['cpu_median_s']:.3g} s "
        f"of CPU with zfit, of which `import zfit` alone costs "
        f"{reference['cpu_median_s']:.3g} s, and {iminuit['cpu_median_s']:.2g} s with "
        '`--fit-engine iminuit` (medians; wall times in docs/benchmarks.md, "Cold fit"). '
        + source_line("fit", "cold_fit")
    )


def render_cold_fit() -> str:
    """docs/benchmarks.md's cold-fit table: wall and CPU (user + system) seconds."""
    lines = [
        "| command | wall, median (range) | less `import zfit`'s | CPU, median | less `import zfit`'s |",
        "|---|---|---|---|---|",
    ]
    for r in load("cold_fit")["rows"]:
        zfit = "iminuit" not in r["command"]  # the difference is zfit's rows' measure
        less_wall = f"{r['median_minus_import_zfit_s']:+.2f} s" if zfit else ""
        less_cpu = f"{r['cpu_minus_import_zfit_s']:+.2f} s" if zfit else ""
        lines.append(
            f"| {r['command']} | {r['median_s']:.2f} s ({r['min_s']:.2f}-{r['max_s']:.2f}) | "
            f"{less_wall} | {r['cpu_median_s']:.2f} s | {less_cpu} |"
        )
    return "\n".join(lines) + "\n\n" + source_line("cold_fit")


def render_overheads() -> str:
    """docs' wall-time model: the measured terms, the check against fresh runs, the
    CHEP projection, each from ``results/overheads.json``."""
    from overheads_model import chunk_costs

    saved = load("overheads")
    measured = saved["measured"]
    lines = ["**Measured terms**", "", markdown(saved["rows"]), ""]
    for name, data in measured["sets"].items():
        fixed, per_event = chunk_costs(measured["compute"][name], data["events"])
        lines.append(
            f"- {name}: a chunk's fixed cost {fixed:.3f} s and {1e6 * per_event:.2f} µs per "
            f"event (from the two chunk sizes); {data['bytes_read'] / data['events']:.0f} "
            f"compressed bytes read per event of {data['bytes'] / data['events']:.0f} on disk."
        )
    lines += [
        "",
        "**The check** (`tau3mu run --executor dask --workers N --no-fit`, fresh process, "
        "empty inspection cache; each phase predicted / measured, the measured ones from "
        "the process's wall and `report.json`'s times)",
        "",
        "| set | workers | predicted | measured, mean (range) | measured / predicted | "
        "process start | cluster + inspection | processing | writing | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in saved["checks"]:
        split = " | ".join(f"{a:.1f} / {b:.1f} s" for a, b in r["phases"].values())
        lines.append(
            f"| {r['set']} | {r['workers']} | {r['predicted_s']:.1f} s | {r['measured_s']:.1f} s "
            f"({r['range_s']}) | {r['measured_over_predicted']:.2f} | {split} | {r['load']:g} |"
        )
    run3 = measured["sets"]["run3"]
    per_event = run3["bytes"] / run3["events"]
    lines += [
        "",
        f"**The CHEP stress test**: {saved['chep_bytes'] / 2**30:g} GiB at the Run 3 set's "
        f"{per_event:.0f} bytes per event = {saved['chep_bytes'] / per_event / 1e6:.0f} M events, "
        "read over XRootD, 200k-event chunks.",
        "",
        "| files | tasks | workers | predicted wall | largest term | efficiency | compute | "
        "scheduler | I/O | merge | start | transfer + write | scheduler binds from |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in saved["projection"]:
        binds = f"{r['scheduler_binds_from']:,} workers" if r["scheduler_binds_from"] else "never"
        lines.append(
            f"| {r['files']}: {r['n_files']:,} | {r['tasks']:,} | {r['workers']} | "
            f"{r['wall_s']:,.0f} s | {r['largest']} | {r['efficiency']:.2f} | "
            f"{r['compute_s']:,.0f} s | {r['scheduler_s']:,.1f} s | {r['io_s']:,.1f} s | "
            f"{r['merge_s']:,.0f} s | {r['start_s']:,.0f} s | "
            f"{r['transfer_s'] + r['write_s']:,.0f} s | {binds} |"
        )
    return "\n".join(lines) + "\n\n" + source_line("overheads")


def render_default_executor() -> str:
    """docs/benchmarks.md's table of ``tau3mu run`` without an executor option against
    the other executors, and the two ratios the issue asks for."""
    saved = load("default_executor")
    ratios = saved["ratios"]
    lines = [
        markdown(saved["rows"]),
        "",
        "`--executor iterative` over the default: "
        f"{ratios['default_speedup_over_iterative']:.2f} (above 1: the default is faster); "
        "`--executor dask --workers 1` over `--workers 2`: "
        f"{ratios['dask_2_over_1_workers']:.2f} (medians of {saved['rounds']} interleaved "
        f"rounds, {saved['cores']} cores).",
    ]
    if "default_before_over_now" in ratios:
        before = saved.get("revisions", {}).get("before", "?")
        lines[-1] += (
            f" The default of `{before}` over this revision's: "
            f"{ratios['default_before_over_now']:.2f}, in the same rounds."
        )
    return "\n".join(lines) + "\n\n" + source_line("default_executor")


RENDERERS: dict[str, Callable[[], str]] = {
    "performance": render_performance,
    "fit-summary": render_fit_summary,
    "throughput": render_throughput,
    "targets": render_targets,
    "scaling": render_table("scaling"),
    "memory": render_table("memory"),
    "fit": render_fit,
    "cold-fit": render_cold_fit,
    "generate": render_table("generate"),
    "overheads": render_overheads,
    "dask-awkward": render_table("dask_awkward"),
    "default-executor": render_default_executor,
    "small-files": render_table("small_files_1000"),
}


def render(text: str, where: Path) -> str:
    """``text`` with every results block rendered anew; an unknown block is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise SystemExit(f"render_docs: {where}: unknown results block {name!r}")
        return f"{match.group(1)}{RENDERERS[name]().rstrip()}\n{match.group(4)}"

    return BLOCK.sub(replace, text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a document is stale")
    args = parser.parse_args()
    stale = []
    for path in DOCUMENTS:
        text = path.read_text()
        rendered = render(text, path)
        if rendered != text:
            stale.append(path)
            if not args.check:
                path.write_text(rendered)
    for path in stale:
        verb = "is stale: run make bench-docs" if args.check else "rendered"
        print(f"{path.relative_to(ROOT)} {verb}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
