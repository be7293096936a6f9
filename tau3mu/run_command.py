"""``tau3mu run``: datasets in, histograms, cutflow, snapshot, fit and report out."""

from __future__ import annotations

import argparse
import contextlib
import os
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
    parser.add_argument("--selection", help="JSON with selection settings overriding SPEC defaults")
    parser.add_argument(
        "--muon-sf", help="correctionlib file with NUM_MediumID_DEN_TrackerMuons (simulation)"
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


def check_options(args: argparse.Namespace) -> None:
    """Refuse options that the chosen mode would silently ignore."""
    from tau3mu.datasets import DatasetError

    if args.mode == "dask-awkward" and args.checkpoint:
        raise DatasetError(
            "--checkpoint needs --mode runner: the dask-awkward graph is computed in one "
            "go, with no finished chunks to keep"
        )


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
    """Everything ``tau3mu run`` does, returning the report (also used by the demo)."""
    from tau3mu.config import SelectionConfig
    from tau3mu.corrections import MuonScaleFactors
    from tau3mu.datasets import to_fileset
    from tau3mu.execution import run_dask_awkward, run_runner
    from tau3mu.faults import InputFileError, accounting_line
    from tau3mu.fit_command import figure_stem
    from tau3mu.outputs import (
        cutflow_table,
        in_input_order,
        write_histograms,
        write_json,
        write_snapshot,
    )
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    tic = time.perf_counter()
    check_options(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # report.json is written last: it marks a complete run, so an earlier run's must not
    # stand beside this run's outputs should this one be interrupted
    (out / "report.json").unlink(missing_ok=True)
    datasets = build_datasets(args)
    fileset = to_fileset(datasets, default_tree=args.tree)
    config = SelectionConfig.from_json(args.selection) if args.selection else SelectionConfig()
    sf = MuonScaleFactors(args.muon_sf) if args.muon_sf else None
    if sf is None and any(d.is_mc for d in datasets):
        print("note: simulation without --muon-sf gets weight 1", file=sys.stderr)
    processor = DsPhiPiProcessor(config, scale_factors=sf)

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
        raise InputFileError("nothing was processed: every input was skipped")
    # chunks merge in the order they finish: the outputs follow the input's order instead
    result = in_input_order(result, [d.name for d in datasets])
    simulation = {d.name for d in datasets if d.is_mc}
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
            d.name: {"files": list(d.files), "type": d.type, "era": d.era, "lumi": d.lumi}
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
        # one file, one table: its dataset column/branch and, for ROOT, what its values mean
        "snapshot": snapshot,
        # where the proxy is, never what it holds
        "x509_proxy": str(Path(proxy).expanduser().resolve()) if proxy else None,
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
    write_json(out / "report.json", report)
    return report


def _expected_errors() -> tuple[type[Exception], ...]:
    """The errors ``tau3mu run`` reports as one line (exit code 2) instead of a traceback."""
    from tau3mu.cluster import ClusterError
    from tau3mu.datasets import DatasetError
    from tau3mu.faults import AccountingError, InputFileError
    from tau3mu.schemas import LayoutError

    errors: tuple[type[Exception], ...] = (
        DatasetError,
        ClusterError,
        LayoutError,
        FileNotFoundError,
        InputFileError,
        AccountingError,
    )
    # loaded only when a proxy is used: importing it imports distributed (~0.7 s)
    credentials = sys.modules.get("tau3mu.credentials")
    return (*errors, credentials.ProxyError) if credentials else errors


def main(args: argparse.Namespace) -> int:
    try:
        report = run_analysis(args)
    except Exception as err:
        if not isinstance(err, _expected_errors()):
            raise
        print(f"tau3mu run: {err}", file=sys.stderr)
        return 2
    print(
        f"\n{report['events']:,} events in {report['wall_time_s']:.1f} s "
        f"({report['throughput_events_per_s'] or 0:,.0f} events/s) with {report['executor']} / {report['mode']}"
    )
    print(
        f"outputs in {Path(args.out).resolve()}: "
        + ", ".join(sorted(p.name for p in Path(args.out).iterdir()))
    )
    return 0
