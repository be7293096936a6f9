"""``tau3mu demo``: generate a realistic dataset (cached), run everything, show the results."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

#: files the demo's dataset is written in
FILES = 4
#: the era the demo's data are generated for, per layout: the layout's run period
ERAS = {"run2": "2017", "run3": "2022"}


def dataset_name(layout: str) -> str:
    """``synthetic_run3_2022``: what the demo's dataset is, its layout and its era."""
    return f"synthetic_{layout}_{ERAS[layout]}"


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``tau3mu demo``."""
    from tau3mu.run_command import add_fit_options

    parser.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    parser.add_argument("--lumi", type=float, default=1.5, help="fb^-1 to generate (default 1.5)")
    parser.add_argument(
        "--events",
        type=int,
        help="events to generate instead of --lumi, over 4 files (e.g. 20000 for a quick look)",
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
        "for fewer events than one chunk per worker, else it starts a local Dask cluster)",
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

    check_numbers(args, at_least={"events": FILES, "workers": 1}, positive=("lumi",))
    check_output_folder(args.out, "--out")
    stamp = demo_dataset(Path(args.out), args.layout, lumi=args.lumi, events=args.events)
    options = RunOptions(
        workers=args.workers,
        progress=not args.no_progress,
        fit_engine=args.fit_engine,
        label=args.label,
    )
    report = run(load_datasets(stamp), Path(args.out) / "results", options)
    print(
        f"\n{report['events']:,} events processed in {report['wall_time_s']:.1f} s "
        f"with {report['executor']} on {report['workers']} worker(s); "
        f"fit in {report['fit_time_s']:.1f} s"
    )
    print("outputs:")
    print(json.dumps(report["outputs"], indent=2))
    return 0


def demo_dataset(out: Path, layout: str, *, lumi: float, events: int | None) -> Path:
    """The datasets JSON of the demo's dataset in ``out/data``: ``lumi`` fb^-1 of the
    ``layout``, or ``events`` events over :data:`FILES` files; generated once, then
    reused."""
    import os

    from tau3mu.synth import generate_dataset

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
    if stamp.is_file():
        print(f"using the cached dataset in {data}")
        return stamp
    print(f"generating {what} of synthetic {layout} data ({name}) in {data} ...")
    info = generate_dataset(
        data,
        layout=layout,
        era=ERAS[layout],
        name=name,
        files=FILES,
        seed=2017,
        jobs=os.cpu_count() or 1,
        **size,
    )
    print(f"  {info['events']:,} events, {info['bytes'] / 1e6:.0f} MB, {info['wall_s']:.0f} s")
    return stamp
