"""``tau3mu run``: datasets in, histograms, cutflow, snapshot, fit and report out."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    from tau3mu.fit_command import add_fit_engine_option, add_label_option

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
    parser.add_argument(
        "--executor",
        choices=["iterative", "futures", "dask"],
        default="dask",
        help="dask (default): a local Dask cluster, or the one of --scheduler/--htcondor; "
        "futures: local processes; iterative: this process, one chunk after another",
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
        "--chunksize", type=int, default=200_000, help="events per chunk (default %(default)s)"
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
    add_fit_engine_option(parser)
    add_label_option(parser)
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


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "tau3mu",
        "coffea",
        "uproot",
        "awkward",
        "dask",
        "distributed",
        "dask-awkward",
        "numba",
        "hist",
        "zfit",
        "correctionlib",
        "numpy",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def build_datasets(args: argparse.Namespace) -> list[Any]:
    from tau3mu.datasets import DatasetError, datasets_from_paths, load_datasets

    if len(args.inputs) == 1 and args.inputs[0].endswith(".json"):
        return load_datasets(args.inputs[0], names=args.dataset, prefix=args.prefix)
    if args.dataset:
        raise DatasetError(
            f"--dataset {' '.join(args.dataset)} selects datasets of a datasets JSON; "
            "the inputs are files, which make one dataset"
        )
    return datasets_from_paths(args.inputs, treename=args.tree)


@contextlib.contextmanager
def performance_report_or_warn(path: str | None, client: Any) -> Iterator[None]:
    """Dask's HTML performance report of the body, written to ``path`` (atomically).

    The report is a by-product: a failure to write it (e.g. a bokeh that does not fit
    this distributed) is a warning on screen, never a failed run that loses the analysis
    outputs. Without a Dask client there is nothing to report, which is said too.
    """
    if not path:
        yield
        return
    if client is None:
        print(
            f"warning: --performance-report {path} not written: it needs a Dask client "
            "(--executor dask, --scheduler or --htcondor)",
            file=sys.stderr,
        )
        yield
        return
    from distributed import performance_report

    from tau3mu.outputs import atomic_path

    report = performance_report(filename=path)
    try:
        with client.as_current():  # the run's client, not the latest made in this process
            report.__enter__()
    except Exception as err:
        _report_failed(path, err)
        yield
        return
    yield  # an exception in the body propagates: no report of a failed run
    try:
        with atomic_path(path) as tmp:
            report.filename = str(tmp)  # read when the report is written, at exit
            with client.as_current():
                report.__exit__(None, None, None)
    except Exception as err:
        _report_failed(path, err)
    else:
        print(f"Dask performance report: {path}", file=sys.stderr)


def _report_failed(path: str, err: Exception) -> None:
    print(
        f"warning: Dask performance report {path} not written ({type(err).__name__}: {err}); "
        "the analysis outputs are not affected",
        file=sys.stderr,
    )


def run_analysis(args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``tau3mu run`` does, returning the report (also used by the demo).

    Everything given is checked first (:func:`tau3mu.validation.check_run`); only then
    is the previous run's ``report.json`` removed and an input file opened.
    """
    from tau3mu.accounting import accounting_line
    from tau3mu.datasets import input_notes, to_fileset
    from tau3mu.duplicates import drop_duplicate_events, duplicate_events, duplicates_line
    from tau3mu.execution import run_dask_awkward, run_runner
    from tau3mu.fit_command import figure_stem
    from tau3mu.inspection import InputFileError
    from tau3mu.outputs import (
        cutflow_table,
        in_input_order,
        write_histograms,
        write_json,
        write_snapshot,
    )
    from tau3mu.processors.dsphipi import DsPhiPiProcessor
    from tau3mu.validation import check_run

    tic = time.perf_counter()
    setup = check_run(args)
    config, sf_by_year, datasets = setup.config, setup.scale_factors, setup.datasets
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # report.json is written last: it marks a complete run, so an earlier run's must not
    # stand beside this run's outputs should this one be interrupted
    (out / "report.json").unlink(missing_ok=True)
    for line in input_notes(datasets):
        print(line, file=sys.stderr)
    fileset = to_fileset(datasets, default_tree=args.tree)
    if args.no_muon_sf and any(d.is_mc for d in datasets):
        print("note: --no-muon-sf: simulation gets weight 1", file=sys.stderr)
    processor = DsPhiPiProcessor(config, scale_factors=sf_by_year)

    proxy = args.x509_proxy or os.environ.get("X509_USER_PROXY")
    with contextlib.ExitStack() as stack:
        if proxy:  # checked here, before any cluster starts: ProxyError if unusable
            from tau3mu.credentials import ProxyError, proxy_environment

            try:
                stack.enter_context(proxy_environment(proxy, args.x509_cert_dir))
            except ProxyError as err:
                source = "--x509-proxy" if args.x509_proxy else "$X509_USER_PROXY"
                raise ProxyError(f"{err} (from {source})") from None
        client = None
        if args.executor == "dask" or args.scheduler or args.htcondor:
            from tau3mu.cluster import close_client, ensure_package_on_workers, make_client

            client = make_client(
                scheduler=args.scheduler, workers=args.workers, htcondor=args.htcondor
            )
            stack.callback(close_client, client)  # and the local cluster it started
            if args.scheduler:
                ensure_package_on_workers(client)
            if proxy:
                from tau3mu.credentials import ProxyWarning, remove_proxy, upload_proxy

                with warnings.catch_warnings():  # a loose mode was reported above already
                    warnings.simplefilter("ignore", ProxyWarning)
                    upload_proxy(client, proxy, args.x509_cert_dir)
                stack.callback(remove_proxy, client)  # the workers' copies, at the end
        with performance_report_or_warn(args.performance_report, client):
            if args.mode == "dask-awkward":
                result = run_dask_awkward(
                    fileset,
                    processor,
                    client=client,
                    chunksize=args.chunksize,
                    skip_bad_files=args.skip_bad_files,
                    inspection_cache=not args.no_inspection_cache,
                    progress=not args.no_progress,
                )
            else:
                executor = "dask" if client is not None else args.executor
                result = run_runner(
                    fileset,
                    processor,
                    executor=executor,
                    client=client,
                    workers=args.workers or os.cpu_count() or 1,
                    chunksize=args.chunksize,
                    progress=not args.no_progress,
                    skip_bad_files=args.skip_bad_files,
                    checkpoint=args.checkpoint,
                    retries=args.retries,
                    inspection_cache=not args.no_inspection_cache,
                )
        n_workers = (
            len(client.scheduler_info()["workers"])
            if client is not None
            else (1 if args.executor == "iterative" else args.workers or os.cpu_count())
        )
    processed = time.perf_counter()

    accounting = result.metrics.get("accounting", {})
    for entry in accounting.get("skipped_files", []):
        events = "unknown" if entry["events"] is None else entry["events"]
        print(f"SKIPPED file {entry['file']} ({events} events): {entry['error']}", file=sys.stderr)
    for entry in accounting.get("skipped_chunks", []):
        print(
            f"SKIPPED chunk {entry['file']} entries {entry['entries'][0]}-{entry['entries'][1]} "
            f"({entry['events']} events): {entry['error']}",
            file=sys.stderr,
        )
    if accounting:
        print(accounting_line(accounting))
    if not result.hists:
        raise InputFileError(
            "nothing was processed: every input was skipped" + _same_cause(accounting)
        )
    # chunks merge in the order they finish: the outputs follow the input's order instead
    result = in_input_order(result, [d.name for d in datasets])
    duplicates = duplicate_events(result.snapshot)
    if args.drop_duplicate_events:
        result, _ = drop_duplicate_events(result)
    line = duplicates_line(duplicates, dropped=args.drop_duplicate_events)
    if line:
        print(line)
    simulation = {d.name for d in datasets if d.is_mc}
    with writing_to(out):
        paths = write_histograms(out, result.hists, simulation=simulation)
        write_json(out / "cutflow.json", result.cutflow)
        snapshot = write_snapshot(out, result.snapshot, fmt=args.snapshot_format)
    print(cutflow_table(result.cutflow))

    fits = {}
    fit_time = None
    if not args.no_fit:
        from tau3mu.fit_command import fit_datasets

        h = result.hists["h_mass"]
        histograms = {}
        for dataset in h.axes["dataset"]:
            one = h[{"dataset": dataset, "systematic": "nominal"}]
            histograms[dataset] = (one.values(), one.axes[0].edges)
        lumi = {d.name: d.lumi for d in datasets if d.lumi}
        fit_start = time.perf_counter()
        with writing_to(out):
            fits = fit_datasets(
                histograms,
                out,
                engine=args.fit_engine,
                lumi=lumi,
                simulation=simulation,
                eras={d.name: d.era or config.era for d in datasets},
                label=args.label,
            )
        fit_time = time.perf_counter() - fit_start
        for dataset, fit in fits.items():
            truth = result.truth.get(dataset)
            print(f"\nMass fit of {dataset}:\n{fit.table()}")
            if truth and fit.converged:
                for key, name in (("ds", "n_ds"), ("dplus", "n_dplus")):
                    fitted = fit.value_text(name, fmt="8.0f", error_fmt=".0f")
                    print(f"  generated truth {key:>6}: {truth[key]:>8}  fitted {fitted}")
    metrics = result.metrics
    events = sum(steps["events"]["events"] for steps in result.cutflow.values())
    wall = processed - tic
    report = {
        "datasets": {
            d.name: {
                "files": list(d.files),
                "type": d.type,
                "era": d.era,
                "lumi": d.lumi,
                # the dataset's own keys: its "metadata" object and the keys tau3mu does not use
                "metadata": d.metadata,
            }
            for d in datasets
        },
        "events": events,
        "bytes_read": metrics.get("bytesread"),
        "columns": sorted({c.rsplit("-", 1)[0] for c in metrics.get("columns", [])}),
        # start to the end of processing (reading the inputs, a cluster's start included)
        "wall_time_s": round(wall, 3),
        # the executor's own processing time
        "processing_time_s": round(metrics.get("wall_s", wall), 3),
        # the fits and their figures (null with --no-fit)
        "fit_time_s": None if fit_time is None else round(fit_time, 3),
        # the whole run, outputs written
        "total_time_s": round(time.perf_counter() - tic, 3),
        "throughput_events_per_s": round(events / metrics["wall_s"], 1)
        if metrics.get("wall_s")
        else None,
        "executor": metrics.get("executor"),
        "mode": metrics.get("mode"),
        "workers": n_workers,
        "chunksize": args.chunksize,
        "files_known_good": metrics.get("files_known_good", 0),
        "accounting": accounting,
        # selected events that occur more than once in a dataset (same run, lumi, event)
        "duplicate_events": {
            "extra_copies": duplicates,
            "dropped": bool(args.drop_duplicate_events),
        },
        # one file, one table: its dataset column/branch and, for ROOT, what its values mean
        "snapshot": snapshot,
        # where the proxy is, never what it holds
        "x509_proxy": str(Path(proxy).expanduser().resolve()) if proxy else None,
        "selection": {"config": config.to_dict(), "periods": _periods(datasets, config)},
        # the scale-factor file applied to each simulated year ({} without simulation)
        "muon_sf": {str(year): sf.path for year, sf in sorted(sf_by_year.items())},
        "truth": result.truth,
        "scale_factors": result.scale_factors,
        "fit": {
            d: {"converged": f.converged, "n_ds": f.params.get("n_ds")} for d, f in fits.items()
        },
        "versions": _versions(),
        "outputs": {
            "histograms_root": str(paths["root"]),
            "histograms_pickle": str(paths["pickle"]),
            "cutflow": str(out / "cutflow.json"),
            "snapshot": snapshot["path"],
            **(
                {
                    "fit": str(out / "fit.json"),
                    # mass_fit.png/.pdf: a copy of the first dataset's (input order)
                    "plot": str(out / "mass_fit.png"),
                    "plots": {
                        d: [str(figure_stem(out, d).with_suffix(s)) for s in (".png", ".pdf")]
                        for d in fits
                    },
                }
                if fits
                else {}
            ),
        },
    }
    with writing_to(out):
        write_json(out / "report.json", report)
    return report


def _periods(datasets: list[Any], config: Any) -> dict[str, dict[str, Any]]:
    """Per dataset: the era used, its run period and, for Run 2, the trigger-match branch
    year (and whether ``--selection`` set it instead of the era)."""
    from tau3mu.eras import period_of

    out = {}
    for d in datasets:
        era = d.era or config.era
        period = period_of(era) if era else None
        entry: dict[str, Any] = {"era": era, "period": period or "from the files' layout"}
        if period in ("run2", None):
            entry["trigger_match_year"] = config.trigger_match_year(era)
            entry["trigger_match_year_from"] = (
                "--selection" if config.run2.trigger_match_year is not None else "era"
            )
        out[d.name] = entry
    return out


def _same_cause(accounting: dict[str, Any]) -> str:
    """A hint when every skipped chunk failed the same way: the options are then more
    likely at fault than the files."""
    chunks = accounting.get("skipped_chunks", [])
    causes = {chunk["error"] for chunk in chunks}
    if len(chunks) < 2 or len(causes) != 1:
        return ""
    return (
        f"; all {len(chunks)} chunks failed with the same error ({causes.pop()}), which points "
        "at the options (--selection, --muon-sf, ...) rather than at the files"
    )


@contextlib.contextmanager
def writing_to(out: Path) -> Iterator[None]:
    """Writing the outputs in ``out``: a folder that stopped being writable during the
    run (checked before it) is the output side's fault, reported as ``--out``'s."""
    from tau3mu.errors import OutputError

    try:
        yield
    except OSError as err:
        name = Path(err.filename).name if err.filename else "an output"
        name = re.sub(r"^\.(.+)\.[^.]+\.part$", r"\1", name)  # atomic_path's temporary
        raise OutputError(f"--out {out}: cannot write {name} ({err.strerror or err})") from err


def main(args: argparse.Namespace) -> int:
    report = run_analysis(args)  # a user's mistake: tau3mu.cli makes it one line, exit 2
    print(
        f"\n{report['events']:,} events in {report['wall_time_s']:.1f} s "
        f"({report['throughput_events_per_s'] or 0:,.0f} events/s) with {report['executor']} / {report['mode']}"
    )
    print(
        f"outputs in {Path(args.out).resolve()}: "
        + ", ".join(sorted(p.name for p in Path(args.out).iterdir()))
    )
    return 0
