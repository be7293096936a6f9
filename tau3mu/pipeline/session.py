"""Where a run executes: the grid proxy in this process or on the workers, the Dask
client (a local cluster, a scheduler's, HTCondor's) and Dask's performance report."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tau3mu.cluster import close_client, ensure_package_on_workers, make_client
from tau3mu.credentials import ProxyError, ProxyWarning, proxy_environment
from tau3mu.outputs import atomic_path
from tau3mu.pipeline.executors import ExecutorChoice
from tau3mu.pipeline.options import RunOptions

__all__ = [
    "Session",
    "import_in_background",
    "performance_report_or_warn",
    "proxy_of",
    "proxy_path",
    "session",
]


@dataclass(frozen=True)
class Session:
    """The run's Dask client (None for the iterative and futures executors) and the
    grid proxy's path (None without one)."""

    client: Any
    proxy: str | None


def proxy_of(options: RunOptions) -> str | None:
    """The grid proxy of a run: ``options.x509_proxy``, else ``$X509_USER_PROXY``."""
    return options.x509_proxy or os.environ.get("X509_USER_PROXY")


@contextlib.contextmanager
def session(options: RunOptions, choice: ExecutorChoice) -> Iterator[Session]:
    """The proxy checked and set (before any cluster starts), then, for Dask, the client
    with the package on a scheduler's workers and the proxy copied to every worker; all
    undone at the end (the local cluster closed, the workers' proxy copies removed).

    Raises :class:`~tau3mu.credentials.ProxyError` naming where the proxy came from, and
    :class:`~tau3mu.cluster.ClusterError` for a scheduler that cannot be reached.
    """
    proxy = proxy_of(options)
    with contextlib.ExitStack() as stack:
        if proxy:
            try:
                stack.enter_context(proxy_environment(proxy, options.x509_cert_dir))
            except ProxyError as err:
                source = "--x509-proxy" if options.x509_proxy else "$X509_USER_PROXY"
                raise ProxyError(f"{err} (from {source})") from None
        client = None
        if choice.executor == "dask":
            if options.scheduler or options.htcondor:
                # coffea's own Dask executor (a local cluster has tau3mu's, which does
                # not) imports dask.dataframe (~0.6 s) before its first chunk: here it
                # is imported while the cluster starts
                import_in_background("dask.dataframe")
            client = make_client(
                scheduler=options.scheduler, workers=options.workers, htcondor=options.htcondor
            )
            stack.callback(close_client, client)  # and the local cluster it started
            if options.scheduler:
                ensure_package_on_workers(client)
            if proxy:
                # here, not at the top: the plugin module imports distributed, which a
                # run without Dask need not pay for
                from tau3mu.proxy_plugin import remove_proxy, upload_proxy

                with warnings.catch_warnings():  # a loose mode was reported above already
                    warnings.simplefilter("ignore", ProxyWarning)
                    upload_proxy(client, proxy, options.x509_cert_dir)
                stack.callback(remove_proxy, client)  # the workers' copies, at the end
        with performance_report_or_warn(options.performance_report, client):
            yield Session(client, proxy)


def import_in_background(module: str) -> threading.Thread:
    """Import ``module`` on a daemon thread (started, returned): a later import of it in
    this process waits for that one instead of starting over. A failure to import is
    left to that later import to raise."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    thread = threading.Thread(target=load, name=f"tau3mu-import-{module}", daemon=True)
    thread.start()
    return thread


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

    # distributed's report is untyped: Any here
    report: Any = performance_report(filename=path)  # type: ignore[no-untyped-call]
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


def proxy_path(proxy: str | None) -> str | None:
    """Where the proxy is (absolute), never what it holds: for ``report.json``."""
    return str(Path(proxy).expanduser().resolve()) if proxy else None
