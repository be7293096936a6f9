"""``tau3mu generate``: synthetic ntuples in the Run 2 or Run 3 layout."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outdir", help="folder for the files and datasets.json")
    parser.add_argument(
        "--layout",
        choices=["run2", "run3"],
        default="run3",
        help="run3 (default): NanoAOD Events tree; run2: Tree3Mu/ntuple of std::vector "
        "branches (needs ROOT)",
    )
    parser.add_argument("--files", type=int, default=1, help="number of files (default 1)")
    parser.add_argument(
        "--events-per-file",
        type=int,
        default=10_000,
        metavar="M",
        help="events in each file (default %(default)s; --lumi sets it instead)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        metavar="S",
        help="random seed: the same seed writes the same files (default %(default)s)",
    )
    parser.add_argument(
        "--lumi",
        type=float,
        metavar="FB",
        help="integrated luminosity in fb^-1: sets the number of events so that the yields "
        "after the selection are those of real data of that luminosity",
    )
    parser.add_argument(
        "--era",
        default=None,
        help="data-taking era of the layout's run period, such as 2017B or 2022F (default "
        "2017 for run2, 2022 for run3); a Run 2 era's year names the trigger-match branches",
    )
    parser.add_argument("--mc", action="store_true", help="write simulation (type mc)")
    parser.add_argument(
        "--compression",
        choices=["zlib", "lz4", "zstd", "lzma"],
        default="zlib",
        help="compression of the files' baskets (default zlib)",
    )
    parser.add_argument(
        "--compression-level",
        type=int,
        default=1,
        metavar="L",
        help="compression level (default %(default)s)",
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="files written in parallel"
    )
    parser.add_argument("--dataset-name", help="dataset name in datasets.json")
    parser.add_argument(
        "--fb",
        type=float,
        metavar="F",
        help="draw each Ds+/D+ decay's origin, from a b hadron with probability F (about "
        "0.25 in CMS data), with its flight distance (ct), and in simulation the generated "
        "particles; simulation also gets pileup_weights.json (default: neither)",
    )
    parser.add_argument(
        "--efficiency-ratio",
        type=float,
        metavar="R",
        help="data only: keep each signal event with probability R x SF(mu1) x SF(mu2) / "
        "c, so that R = N_Ds(data) / N_Ds(weighted simulation) (e.g. 0.85); written to "
        "truth.json (default: data as simulated)",
    )
    parser.add_argument(
        "--muon-sf",
        metavar="FILE",
        help="muon ID scale factors (correctionlib) that --efficiency-ratio applies and "
        "that simulation's xsec accounts for; the run must use the same (default: the "
        "file tau3mu ships for the era's year, else none)",
    )


def main(args: argparse.Namespace) -> int:
    from tau3mu.errors import OptionError
    from tau3mu.synth.dataset import generate_dataset, keep_freed_memory
    from tau3mu.synth.run2 import ROOTMissingError
    from tau3mu.validation import check_numbers, check_output_folder

    check_numbers(args, at_least={"files": 1, "events_per_file": 1, "jobs": 1}, positive=("lumi",))
    problem = _era_problem(args.era, args.layout)
    if problem:
        raise OptionError(f"--era {args.era}: {problem}")
    _check_truth_options(args)
    check_output_folder(args.outdir)
    muon_sf = _muon_sf_path(args)
    keep_freed_memory()  # this process only generates: reuse freed memory

    try:
        info = generate_dataset(
            args.outdir,
            layout=args.layout,
            files=args.files,
            events_per_file=args.events_per_file,
            seed=args.seed,
            lumi=args.lumi,
            era=args.era,
            mc=args.mc,
            compression=args.compression,
            compression_level=args.compression_level,
            jobs=args.jobs,
            name=args.dataset_name,
            f_b=args.fb,
            efficiency_ratio=args.efficiency_ratio,
            muon_sf=muon_sf,
        )
        if args.mc and args.fb is not None:
            from tau3mu.synth.pileup import write_pileup_weights

            pileup = write_pileup_weights(Path(args.outdir) / "pileup_weights.json", args.layout)
            print(f"pileup weights for this simulation in {pileup}")
    except ROOTMissingError as err:
        print(f"tau3mu generate: {err}", file=sys.stderr)
        return 2
    (name,) = info["datasets"]
    print(
        f"wrote {len(info['files'])} {args.layout} file(s), {info['events']:,} events, "
        f"{info['bytes'] / 1e6:.1f} MB ({info['bytes_per_event']:.0f} B/event) in "
        f"{info['wall_s']:.1f} s: {info['events_per_s_per_core']:,.0f} events/s and "
        f"{info['mb_per_s_per_core']:.1f} MB/s per core (simulate + write; one-time setup "
        f"of the worker processes {info['setup_s']:.1f} CPU s)"
    )
    spec = info["datasets"][name]
    size = (
        f"xsec {spec['xsec']:.4g} pb, ngen {spec['ngen']}"
        if args.mc
        else f"{spec['lumi']:.4g} fb^-1"
    )
    print(f"dataset {name!r} ({size}) in {info['datasets_json']}")
    return 0


def _check_truth_options(args: argparse.Namespace) -> None:
    """--fb in [0, 1], --efficiency-ratio in (0, 1] and for data only (OptionError)."""
    from tau3mu.errors import OptionError

    if args.fb is not None and not 0.0 <= args.fb <= 1.0:
        raise OptionError(f"--fb {args.fb}: a probability, between 0 and 1")
    if args.efficiency_ratio is not None:
        if args.mc:
            raise OptionError(
                "--efficiency-ratio applies to data: simulation is what data are compared to"
            )
        if not 0.0 < args.efficiency_ratio <= 1.0:
            raise OptionError(
                f"--efficiency-ratio {args.efficiency_ratio}: above 0 and at most 1 (a data "
                "event is kept with probability R x SF(mu1) x SF(mu2) / c)"
            )


def _muon_sf_path(args: argparse.Namespace) -> str | None:
    """The scale-factor file the truth options apply: --muon-sf, else the shipped file of
    the era's year, else None (checked: OptionError naming --muon-sf)."""
    from tau3mu.corrections import MuonScaleFactors, shipped_muon_sf
    from tau3mu.eras import year_of
    from tau3mu.errors import OptionError

    if args.muon_sf is not None:
        try:
            MuonScaleFactors(args.muon_sf)
        except (OSError, ValueError, KeyError) as err:
            raise OptionError(f"--muon-sf {args.muon_sf}: {err}") from None
        return str(Path(args.muon_sf).resolve())
    era = args.era or ("2017" if args.layout == "run2" else "2022")
    shipped = shipped_muon_sf(year_of(era))
    return str(shipped) if shipped is not None else None


def _era_problem(era: str | None, layout: str) -> str | None:
    """Why ``era`` cannot be the era of a ``layout`` dataset, or None."""
    from tau3mu.eras import EraError, period_of

    if era is None:
        return None
    try:
        period = period_of(era)
    except EraError as err:
        return str(err)
    if period != layout:
        return f"a {period} era, but --layout is {layout} (2016-2018: run2, 2022 on: run3)"
    return None
