"""The ``tau3mu`` command.

Each subcommand lives in its own module with two functions, ``configure(parser)`` and
``main(args) -> int``; this file only lists them, so that ``tau3mu --help`` stays fast
(heavy imports such as zfit happen inside the subcommand that needs them).

It is also the one place where a user's mistake becomes exit code 2: every
:class:`tau3mu.errors.Tau3MuError` is printed as ``tau3mu <command>: <message>``,
without a traceback unless ``-v`` is given; any other exception is a bug of ours and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import traceback
import typing
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
    "normalise": (
        "tau3mu.normalise_command",
        "data/simulation ratio R and f_B per era, and the data/simulation figures, of a run's outputs",
    ),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser whose errors (an unknown option, a value of the wrong type) are
    one line, as every other mistake is, instead of the usage and the error."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: {message} ({self.prog} --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    from tau3mu import __version__
    from tau3mu.verbosity import add_verbose_option

    parser = OneLineParser(
        prog="tau3mu",
        description="CMS Ds+ -> phi(mu mu) pi+ analysis, columnar, on the Scikit-HEP stack.",
    )
    parser.add_argument("--version", action="version", version=f"tau3mu {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=OneLineParser
    )
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
    except Exception as err:
        if not isinstance(err, user_errors()):
            raise  # a bug of ours: its traceback
        if args.verbose:
            traceback.print_exc()
        from tau3mu.wording import one_line

        print(f"tau3mu {args.command}: {one_line(str(err))}", file=sys.stderr)
        return 2


def console_main() -> int:
    """The ``tau3mu`` command: :func:`main` on the process's arguments, in a process that
    exits next; returns the exit code.

    The process's cyclic garbage collector runs at :data:`tau3mu.collector.THRESHOLDS`;
    before returning, every object the command left is moved out of the collector's
    reach (:func:`gc.freeze`), so that the interpreter's shutdown frees them without
    tracing them again. From Python, call :func:`main`, which leaves the collector alone.
    """
    from tau3mu import collector

    collector.tune()
    code = main()
    gc.freeze()
    return code


def user_errors() -> tuple[type[Exception], ...]:
    """The exceptions that report a mistake in what the user gave (exit code 2)."""
    from tau3mu.errors import Tau3MuError

    return (Tau3MuError,)


if __name__ == "__main__":
    sys.exit(console_main())
