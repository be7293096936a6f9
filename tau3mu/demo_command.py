"""``tau3mu demo``: generate data and simulation of one era (cached), run everything,
show the results: the mass fits, and R and f_B beside what was generated."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

#: files the demo's data are written in (its simulation: half as many events, as many files)
FILES = 4
#: the era the demo's data and simulation are generated for, per layout
ERAS = {"run2": "2017", "run3": "2022"}
#: what the demo's data are generated with: the fraction of Ds+ from b hadrons and the
#: data/simulation efficiency ratio, the numbers the normalisation should find
GENERATED_FB, GENERATED_R = 0.25, 0.85


def dataset_name(layout: str) -> str:
    """``synthetic_run3_2022``: what the demo's data are, their layout and their era
    (its simulation: the same name with ``_mc``)."""
    return f"synthetic_{layout}_{ERAS[layout]}"


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``tau3mu demo``."""
    from tau3mu.run_command import add_fit_options

    parser.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    parser.add_argument(
        "--lumi", type=float, default=1.5, help="fb^-1 of data to generate (default 1.5)"
    )
    parser.add_argument(
        "--events",
        type=int,
        help="data events to generate instead of --lumi, over 4 files (e.g. 20000 for a "
        "quick look); simulation gets half as many",
    )
    parser.add_argument(
        "--layout",
        choices=list(ERAS),
        default="run3",
        help="run3 (default): NanoAOD Events of 2022; run2: Tree3Mu/ntuple of 2017 "
        "(written through ROOT)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="workers (default: all cores; the run stays in this process on one core or "
        "for at most one chunk's events per worker, else it starts a local Dask cluster)",
    )
    add_fit_options(parser)
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress of the run (default: a bar on a terminal, else a line per tenth)",
    )


def main(args: argparse.Namespace) -> int:
    """``tau3mu demo``; a mistake raises :class:`~tau3mu.errors.Tau3MuError` (exit 2)."""
    from tau3mu.datasets import load_datasets
    from tau3mu.pipeline import RunOptions, run
    from tau3mu.validation import check_numbers, check_output_folder

    check_numbers(args, at_least={"events": 2 * FILES, "workers": 1}, positive=("lumi",))
    check_output_folder(args.out, "--out")
    stamp = demo_dataset(Path(args.out), args.layout, lumi=args.lumi, events=args.events)
    options = RunOptions(
        workers=args.workers,
        progress=not args.no_progress,
        fit_engine=args.fit_engine,
        label=args.label,
        pileup=stamp.parent / "pileup_weights.json",
        # the era's shipped scale factors (2017), else none: as the data were generated
        no_muon_sf=shipped_sf(args.layout) is None,
    )
    report = run(load_datasets(stamp), Path(args.out) / "results", options)
    print(
        f"\n{report['events']:,} events processed in {report['wall_time_s']:.1f} s "
        f"with {report['executor']} on {report['workers']} worker(s); "
        f"fit in {report['fit_time_s']:.1f} s"
        + (
            f", normalisation in {report['normalisation_time_s']:.1f} s"
            if report.get("normalisation_time_s") is not None
            else ""
        )
    )
    normalisation = report["outputs"].get("normalisation")
    if normalisation:
        for line in beside_generated(json.loads(Path(normalisation).read_text())):
            print(line)
    print("outputs:")
    print(json.dumps(report["outputs"], indent=2))
    return 0


def beside_generated(result: dict[str, Any]) -> list[str]:
    """Lines of R and f_B per era of a normalisation result (``normalisation.json``)
    beside :data:`GENERATED_R` and :data:`GENERATED_FB`, with the pull of each."""
    lines = ["\nNormalisation against what was generated:"]
    for era, entry in result["eras"].items():
        if entry["status"] != "ok":
            lines.append(f"  {era}: not measured ({entry['reason']})")
            continue
        error = math.hypot(entry["stat_error"], entry["syst_error"])
        lines.append(_beside(era, "R  ", entry["R"], error, GENERATED_R))
        fraction = entry["f_B"]
        if fraction and fraction["converged"]:
            lines.append(_beside(era, "f_B", fraction["value"], fraction["error"], GENERATED_FB))
        else:
            lines.append(f"  {era}: f_B not measured")
    return lines


def _beside(era: str, name: str, value: float, error: float, generated: float) -> str:
    pull = (value - generated) / error if error > 0 else math.nan
    return (
        f"  {era}: {name} = {value:.3f} +- {error:.3f}   generated {generated:.3f}   "
        f"(pull {pull:+.1f})"
    )


def shipped_sf(layout: str) -> Path | None:
    """The muon scale-factor file tau3mu ships for the year of the ``layout``'s demo era
    (2017), or None (2022): what the demo's data are generated and run with."""
    from tau3mu.corrections import shipped_muon_sf
    from tau3mu.eras import year_of

    return shipped_muon_sf(year_of(ERAS[layout]))


def demo_dataset(out: Path, layout: str, *, lumi: float, events: int | None) -> Path:
    """The datasets JSON of the demo's data and simulation in ``out/data``: ``lumi``
    fb^-1 of the ``layout`` (or ``events`` events over :data:`FILES` files) generated
    with :data:`GENERATED_R` and :data:`GENERATED_FB`, and simulation of the same era
    with half as many events, its pileup weights beside (``pileup_weights.json``);
    generated once, then reused."""
    name = dataset_name(layout)
    if events is None:
        size: dict[str, float] = {"lumi": lumi}
        data = out / "data" / f"{name}_{lumi:g}fb"
        what = f"{lumi:g} fb^-1"
    else:
        size = {"events_per_file": math.ceil(events / FILES)}
        data = out / "data" / f"{name}_{events}events"
        what = f"{FILES * size['events_per_file']:,} events"
    stamp = data / "datasets.json"
    if stamp.is_file() and {name, f"{name}_mc"} <= set(json.loads(stamp.read_text())):
        print(f"using the cached data and simulation in {data}")
        return stamp
    print(f"generating {what} of synthetic {layout} data ({name}) in {data} ...")
    info = _generate(data, layout, name, size, mc=False)
    simulation = {"events_per_file": max(1, info["events"] // (2 * FILES))}
    print(f"generating {FILES * simulation['events_per_file']:,} events of its simulation ...")
    _generate(data, layout, f"{name}_mc", simulation, mc=True)
    from tau3mu.synth.pileup import write_pileup_weights

    write_pileup_weights(data / "pileup_weights.json", layout)
    return stamp


def _generate(
    folder: Path, layout: str, name: str, size: dict[str, float], *, mc: bool
) -> dict[str, Any]:
    """One dataset of the demo (``size``: ``lumi`` or ``events_per_file``)."""
    import os

    from tau3mu.synth import generate_dataset

    muon_sf = shipped_sf(layout)

    info = generate_dataset(
        folder,
        layout=layout,
        era=ERAS[layout],
        name=name,
        files=FILES,
        seed=2018 if mc else 2017,
        jobs=os.cpu_count() or 1,
        mc=mc,
        f_b=GENERATED_FB,
        efficiency_ratio=None if mc else GENERATED_R,
        muon_sf=None if muon_sf is None else str(muon_sf),
        **size,
    )
    print(f"  {info['events']:,} events, {info['bytes'] / 1e6:.0f} MB, {info['wall_s']:.0f} s")
    return info
