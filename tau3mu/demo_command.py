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
    from tau3mu.fit_command import add_fit_engine_option, add_label_option

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
    parser.add_argument("--workers", type=int, help="local Dask workers (default: all cores)")
    add_fit_engine_option(parser)
    add_label_option(parser)
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress of the run (default: a bar on a terminal, else a line per tenth)",
    )


def main(args: argparse.Namespace) -> int:
    import os

    from tau3mu.run_command import configure as configure_run
    from tau3mu.run_command import run_analysis
    from tau3mu.synth import generate_dataset
    from tau3mu.validation import check_numbers, check_output_folder

    check_numbers(args, at_least={"events": FILES, "workers": 1}, positive=("lumi",))
    check_output_folder(args.out, "--out")
    out = Path(args.out)
    name = dataset_name(args.layout)
    if args.events is None:
        size: dict[str, float] = {"lumi": args.lumi}
        data = out / "data" / f"{name}_{args.lumi:g}fb"
        what = f"{args.lumi:g} fb^-1"
    else:
        size = {"events_per_file": math.ceil(args.events / FILES)}
        data = out / "data" / f"{name}_{args.events}events"
        what = f"{FILES * size['events_per_file']:,} events"
    stamp = data / "datasets.json"
    if stamp.is_file():
        print(f"using the cached dataset in {data}")
    else:
        print(f"generating {what} of synthetic {args.layout} data ({name}) in {data} ...")
        info = generate_dataset(
            data,
            layout=args.layout,
            era=ERAS[args.layout],
            name=name,
            files=FILES,
            seed=2017,
            jobs=os.cpu_count() or 1,
            **size,
        )
        print(f"  {info['events']:,} events, {info['bytes'] / 1e6:.0f} MB, {info['wall_s']:.0f} s")
    run_parser = argparse.ArgumentParser()
    configure_run(run_parser)
    run_args = run_parser.parse_args(
        [
            str(stamp),
            "--out",
            str(out / "results"),
            "--fit-engine",
            args.fit_engine,
            "--label",
            args.label,
        ]
        + (["--workers", str(args.workers)] if args.workers else [])
        + (["--no-progress"] if args.no_progress else [])
    )
    report = run_analysis(run_args)
    print(
        f"\n{report['events']:,} events processed in {report['wall_time_s']:.1f} s "
        f"on {report['workers']} local Dask workers; fit in {report['fit_time_s']:.1f} s"
    )
    print("outputs:")
    print(json.dumps(report["outputs"], indent=2))
    return 0
