"""The ``tau3mu`` command.

Each subcommand lives in its own module with two functions, ``configure(parser)`` and
``main(args) -> int``; this file only lists them, so that ``tau3mu --help`` stays fast
(heavy imports such as zfit happen inside the subcommand that needs them).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("tau3mu.synth.command", "write synthetic ntuples in the Run 2 or Run 3 layout"),
    "run": (
        "tau3mu.run_command",
        "run the analysis on datasets: histograms, cutflow, snapshot, fit",
    ),
    "demo": ("tau3mu.demo_command", "generate a dataset, run the whole analysis, show the results"),
    "fit": ("tau3mu.fit_command", "fit the Ds+/D+ mass peaks of a saved h_mass histogram"),
}


def build_parser() -> argparse.ArgumentParser:
    from tau3mu import __version__
    from tau3mu.verbosity import add_verbose_option

    parser = argparse.ArgumentParser(
        prog="tau3mu",
        description="CMS Ds+ -> phi(mu mu) pi+ analysis, columnar, on the Scikit-HEP stack.",
    )
    parser.add_argument("--version", action="version", version=f"tau3mu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).configure(command)
        add_verbose_option(command)
        command.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    from tau3mu.verbosity import library_output

    try:
        with library_output(args.verbose):
            return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("tau3mu: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
