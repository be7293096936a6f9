"""``tau3mu run``: datasets in, histograms, cutflow, snapshot, fit and report out.

A thin layer over :mod:`tau3mu.pipeline`: the command line becomes a
:class:`~tau3mu.pipeline.RunOptions` (:func:`options_from_args`), checked
(:func:`tau3mu.validation.check_run`), and :func:`tau3mu.pipeline.run` does the rest.
The pipeline is imported when the command runs, so that ``tau3mu --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tau3mu.pipeline import RunOptions

__all__ = ["add_fit_options", "configure", "main", "options_from_args"]

#: the fit engines, the default first (:data:`tau3mu.pipeline.FitEngine`)
FIT_ENGINES = ("zfit", "iminuit")


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``tau3mu run``, in the order ``--help`` lists them."""
    _add_input_options(parser)
    _add_execution_options(parser)
    _add_analysis_options(parser)
    _add_robustness_options(parser)


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        help="a datasets JSON (the original input.json format), or ROOT files, globs, root:// URLs",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--dataset",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="process only these datasets, in this order (--dataset A B or --dataset A --dataset B; "
        "put the inputs before it)",
    )
    parser.add_argument("--prefix", help="put before every rootpath, e.g. root://eosuser.cern.ch/")
    parser.add_argument("--tree", help="tree name for plain file inputs (default: detected)")


def _add_execution_options(parser: argparse.ArgumentParser) -> None:
    from tau3mu.config import DEFAULT_CHUNKSIZE

    parser.add_argument(
        "--executor",
        choices=["iterative", "futures", "dask"],
        help="dask: a local Dask cluster, or the one of --scheduler/--htcondor; futures: "
        "local processes; iterative: this process, one chunk after another (default: "
        "iterative on one core or for at most one chunk's events per worker, else dask)",
    )
    parser.add_argument(
        "--mode",
        choices=["runner", "dask-awkward"],
        default="runner",
        help="runner (default): coffea's Runner, chunk by chunk, with retries and "
        "--checkpoint; dask-awkward: one dask-awkward graph of every dataset, computed at once",
    )
    parser.add_argument("--workers", type=int, help="workers (default: all cores)")
    parser.add_argument(
        "--chunksize",
        type=int,
        default=DEFAULT_CHUNKSIZE,
        help="events per chunk, the unit of work; small files of a dataset share one "
        "(default %(default)s)",
    )
    parser.add_argument("--scheduler", help="existing Dask scheduler, tcp://HOST:PORT")
    parser.add_argument(
        "--htcondor", action="store_true", help="workers as HTCondor jobs (dask-jobqueue)"
    )
    parser.add_argument(
        "--x509-proxy",
        help="grid proxy (default $X509_USER_PROXY): copied to every Dask worker (mode 0600), "
        "or set as X509_USER_PROXY here for the iterative and futures executors",
    )
    parser.add_argument(
        "--x509-cert-dir",
        help="CA certificates folder set as X509_CERT_DIR with the proxy "
        "(default $X509_CERT_DIR, else /etc/grid-security/certificates)",
    )


def _add_analysis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--selection",
        help='JSON overriding selection settings: {"run2": {...}, "run3": {...}, '
        '"mass_axis": {...}} (names of tau3mu.config\'s Run2Selection, Run3Selection, MassAxis)',
    )
    parser.add_argument(
        "--era",
        help="era of inputs that name none (plain files, datasets without 'era'), e.g. 2018D "
        "or 2022F; without it the files' layout picks the period (Run 2 then reads the "
        "2017 trigger-match branches)",
    )
    parser.add_argument(
        "--muon-sf",
        metavar="FILE",
        help="correctionlib file with NUM_MediumID_DEN_TrackerMuons for all simulation "
        "(default: the file tau3mu ships for the era's year; 2017 only)",
    )
    parser.add_argument(
        "--no-muon-sf",
        action="store_true",
        help="weight simulation 1, without muon ID scale factors",
    )
    parser.add_argument(
        "--pileup",
        metavar="FILE",
        help="correctionlib file of pileup weights in the true pileup, for simulation "
        "(default: pileup weight 1, said so)",
    )
    parser.add_argument(
        "--drop-duplicate-events",
        action="store_true",
        help="keep one copy of a selected event that occurs twice in a dataset (same run, "
        "lumi, event): removed from the snapshot and histograms, not from the cutflow",
    )
    parser.add_argument(
        "--snapshot-format",
        choices=["root", "parquet"],
        default="root",
        help="file of the best candidates: snapshot.root (default) or snapshot.parquet",
    )
    parser.add_argument("--no-fit", action="store_true", help="skip the mass fit")
    add_fit_options(parser)


def _add_robustness_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="go on past unreadable files and failing chunks; report exactly what was skipped",
    )
    parser.add_argument(
        "--no-inspection-cache",
        action="store_true",
        help="open every input file before the run, even those an earlier run found good "
        "and that have not changed since (see TAU3MU_CACHE_DIR)",
    )
    parser.add_argument("--checkpoint", help="keep finished chunks here; a rerun resumes from them")
    parser.add_argument(
        "--retries",
        type=int,
        default=3,
        help="retries per chunk of a transient (I/O) failure, with backoff (--mode runner)",
    )
    parser.add_argument("--performance-report", help="write Dask's HTML performance report here")
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress at all (default: a bar on a terminal, else a line per tenth of the work)",
    )


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """``--fit-engine`` and ``--label`` (the text after "CMS" on the figures), as
    ``tau3mu run`` and ``tau3mu demo`` take them."""
    from tau3mu.fitplot import DEFAULT_LABEL

    parser.add_argument(
        "--fit-engine",
        choices=FIT_ENGINES,
        default=FIT_ENGINES[0],
        help="zfit (default), or iminuit with a numpy Crystal Ball: the same model and strategy, "
        "an independent implementation that fits in milliseconds",
    )
    parser.add_argument(
        "--label",
        default=DEFAULT_LABEL,
        help=f'text after "CMS" on the figures (default "{DEFAULT_LABEL}"; "Simulation" is '
        "put before it for simulation), e.g. --label Preliminary",
    )


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The :class:`~tau3mu.pipeline.RunOptions` of ``tau3mu run``'s command line
    (``--selection``, ``--era`` and ``--muon-sf`` are read by
    :func:`tau3mu.validation.check_run`)."""
    from tau3mu.pipeline import RunOptions

    return RunOptions(
        no_muon_sf=args.no_muon_sf,
        pileup=args.pileup,
        executor=args.executor,
        mode=args.mode,
        workers=args.workers,
        chunksize=args.chunksize,
        scheduler=args.scheduler,
        htcondor=args.htcondor,
        tree=args.tree,
        x509_proxy=args.x509_proxy,
        x509_cert_dir=args.x509_cert_dir,
        skip_bad_files=args.skip_bad_files,
        inspection_cache=not args.no_inspection_cache,
        checkpoint=args.checkpoint,
        retries=args.retries,
        performance_report=args.performance_report,
        progress=not args.no_progress,
        drop_duplicate_events=args.drop_duplicate_events,
        snapshot_format=args.snapshot_format,
        fit=not args.no_fit,
        fit_engine=args.fit_engine,
        label=args.label,
    )


def main(args: argparse.Namespace) -> int:
    """``tau3mu run``; a mistake raises :class:`~tau3mu.errors.Tau3MuError` (exit 2)."""
    import dataclasses

    from tau3mu.local_workers import prestart_local_workers

    # before the heavy imports below: a local cluster's workers import them meanwhile
    prestart_local_workers(
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        htcondor=args.htcondor,
    )
    from tau3mu.pipeline import run
    from tau3mu.validation import check_run

    options = options_from_args(args)
    setup = check_run(args, options)
    options = dataclasses.replace(options, selection=setup.config, muon_sf=setup.muon_sf)
    report = run(setup.datasets, args.out, options)
    print(
        f"\n{report['events']:,} events in {report['wall_time_s']:.1f} s "
        f"({report['throughput_events_per_s'] or 0:,.0f} events/s) with "
        f"{report['executor']} / {report['mode']}"
    )
    print(
        f"outputs in {Path(args.out).resolve()}: "
        + ", ".join(sorted(p.name for p in Path(args.out).iterdir()))
    )
    return 0
