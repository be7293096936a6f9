"""The options of a run, as one typed, frozen object: what ``tau3mu run`` parses and
what a notebook passes to :func:`tau3mu.pipeline.analyse`, :func:`~tau3mu.pipeline.write`
and :func:`~tau3mu.pipeline.fit`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tau3mu.config import DEFAULT_CHUNKSIZE
from tau3mu.corrections import MuonScaleFactors
from tau3mu.errors import OptionError
from tau3mu.fitplot import DEFAULT_LABEL

__all__ = [
    "ExecutorName",
    "FitEngine",
    "ModeName",
    "RunOptions",
    "SnapshotFormat",
    "check_options",
]

#: coffea's executors: this process, local processes, or Dask workers
ExecutorName = Literal["iterative", "futures", "dask"]
#: coffea's Runner chunk by chunk, or one dask-awkward graph
ModeName = Literal["runner", "dask-awkward"]
SnapshotFormat = Literal["root", "parquet"]
FitEngine = Literal["zfit", "iminuit"]


@dataclass(frozen=True)
class RunOptions:
    """How to run a channel over datasets; every field has the default of ``tau3mu run``.

    ``channel`` names a registered :class:`tau3mu.channels.Channel`; ``selection`` is an
    instance of its configuration type (None: its defaults). ``muon_sf``: a correctionlib
    file, or scale factors loaded already, for every simulated year (None: the shipped
    ones); ``no_muon_sf`` weights simulation 1. ``pileup``: a correctionlib file of pileup
    weights in the true pileup (None: pileup weight 1, said so). ``executor`` None lets
    :func:`tau3mu.pipeline.choose_executor` pick (this process for one core or tiny
    inputs, else a local Dask cluster); ``scheduler`` or ``htcondor`` mean Dask.
    ``workers`` None: all cores. ``x509_proxy`` None: ``$X509_USER_PROXY`` if set.
    """

    channel: str = "dsphipi"
    selection: Any = None
    muon_sf: str | Path | MuonScaleFactors | None = None
    no_muon_sf: bool = False
    pileup: str | Path | None = None
    executor: ExecutorName | None = None
    mode: ModeName = "runner"
    workers: int | None = None
    chunksize: int = DEFAULT_CHUNKSIZE
    scheduler: str | None = None
    htcondor: bool = False
    tree: str | None = None
    x509_proxy: str | None = None
    x509_cert_dir: str | None = None
    skip_bad_files: bool = False
    inspection_cache: bool = True
    checkpoint: str | None = None
    retries: int = 3
    performance_report: str | None = None
    progress: bool = True
    drop_duplicate_events: bool = False
    snapshot_format: SnapshotFormat = "root"
    fit: bool = True
    fit_engine: FitEngine = "zfit"
    label: str = DEFAULT_LABEL

    @property
    def wants_dask(self) -> bool:
        """True when the options name Dask: its executor, a scheduler or HTCondor."""
        return self.executor == "dask" or bool(self.scheduler) or self.htcondor


def check_options(options: RunOptions) -> None:
    """Refuse options that cannot run, naming the ``tau3mu run`` option.

    Raises :class:`~tau3mu.errors.OptionError`: ``chunksize`` or ``workers`` below 1,
    ``retries`` below 0, a ``checkpoint`` with the dask-awkward mode.
    """
    for name, value, low in (
        ("chunksize", options.chunksize, 1),
        ("workers", options.workers, 1),
        ("retries", options.retries, 0),
    ):
        if value is not None and value < low:
            raise OptionError(f"--{name} {value}: must be at least {low}")
    if options.mode == "dask-awkward" and options.checkpoint:
        raise OptionError(
            "--checkpoint needs --mode runner: the dask-awkward graph is computed in one "
            "go, with no finished chunks to keep"
        )
