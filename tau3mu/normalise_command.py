"""``tau3mu normalise OUTDIR``: the normalisation (R and f_B per era) and the data/simulation
figures of a run's saved outputs (``histograms.pkl``, ``report.json``)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["configure", "main"]


def configure(parser: argparse.ArgumentParser) -> None:
    from tau3mu.fit import add_fit_engine_option
    from tau3mu.fit_command import add_label_option

    parser.add_argument("outdir", help="a run's output folder (histograms.pkl and report.json)")
    parser.add_argument(
        "--no-figures",
        action="store_true",
        help="only normalisation.json: no R, ct-fit or data/simulation figures",
    )
    add_fit_engine_option(parser)
    add_label_option(parser)


def main(args: argparse.Namespace) -> int:
    from tau3mu.normalisation import normalise, summary_lines

    outdir = Path(args.outdir)
    result = normalise(
        outdir, figures=not args.no_figures, label=args.label, engine=args.fit_engine
    )
    for line in summary_lines(result):
        print(line)
    print(f"wrote {outdir / 'normalisation.json'} and {len(result['figures'])} figure files")
    return 0
