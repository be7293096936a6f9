"""Shared fixtures: the repository's data files and generated ntuples."""

from __future__ import annotations

import faulthandler
import io
import os
import signal
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN2_TREE = "Tree3Mu/ntuple"
#: the repository's data folder (installed as the package ``tau3mu.data``)
DATA = REPO / "data"


@pytest.fixture(scope="session")
def branch_list_file() -> Path:
    """The 270 branches of the real Run 2 ``Tree3Mu/ntuple``, with their C++ types."""
    return DATA / "tree3mu_branches.txt"


@pytest.fixture(scope="session")
def pog_sf_file() -> Path:
    """The real Muon POG 2017 UL ID scale factors (correctionlib schema v2)."""
    return DATA / "Efficiency_muon_trackerMuon_Run2017_UL_ID_schemaV2.json"


#: where a SIGTERM'd test process prints its stacks (see pytest_configure)
_SIGTERM_STDERR = pytest.StashKey[io.TextIOWrapper]()


def pytest_configure(config):
    """A test process ended by SIGTERM (CI's limit, a stray kill) prints every thread's
    stack first, then ends as SIGTERM ends it: a crashed xdist worker says where it was.
    The stacks go to a copy of the stderr this process started with, as pytest's own
    faulthandler does: output capture later points stderr at a file of its own."""
    stderr = os.fdopen(os.dup(sys.__stderr__.fileno()), "w")
    config.stash[_SIGTERM_STDERR] = stderr
    faulthandler.register(signal.SIGTERM, file=stderr, all_threads=True, chain=True)


def pytest_unconfigure(config):
    faulthandler.unregister(signal.SIGTERM)
    config.stash[_SIGTERM_STDERR].close()


#: ``make test`` sets TAU3MU_REQUIRE_ALL=1: there every test must run, so that a broken
#: install (no ROOT, no xrootd server, a missing extra) fails instead of passing by skipping
REQUIRE_ALL = os.environ.get("TAU3MU_REQUIRE_ALL", "") not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under TAU3MU_REQUIRE_ALL=1 a skipped test (a skip mark, ``pytest.skip``,
    ``importorskip``) is reported as failed, with the reason it gave for skipping."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"TAU3MU_REQUIRE_ALL=1 (make test) allows no skip; it skipped: {reason}"


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory) -> None:
    """tau3mu's cache (inspection verdicts) in a folder of this session, not the user's;
    subprocesses inherit it."""
    os.environ["TAU3MU_CACHE_DIR"] = str(tmp_path_factory.mktemp("tau3mu-cache"))


# -- generated ntuples ------------------------------------------------------------------
#: small datasets: big enough for every cut to act, small enough for 2 cores
N_FILES = 2
N_EVENTS = 6_000


def _has_root() -> bool:
    try:
        import ROOT  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def run3_dataset(tmp_path_factory) -> dict:
    """Two Run 3 files and their datasets JSON (generate_dataset's return value)."""
    from tau3mu.synth import generate_dataset

    out = tmp_path_factory.mktemp("run3")
    return generate_dataset(out, layout="run3", files=N_FILES, events_per_file=N_EVENTS, seed=11)


@pytest.fixture(scope="session")
def run2_dataset(tmp_path_factory) -> dict:
    """Two full-width Run 2 files (needs ROOT to write std::vector<string>)."""
    if not _has_root():
        pytest.skip("ROOT (the validation extra) is needed to write the Run 2 layout")
    from tau3mu.synth import generate_dataset

    out = tmp_path_factory.mktemp("run2")
    return generate_dataset(out, layout="run2", files=N_FILES, events_per_file=N_EVENTS, seed=11)


def _paths(dataset: dict) -> list[str]:
    ((_, spec),) = dataset["datasets"].items()
    return [spec["rootpath"] + f for f in spec["files"].split()]


@pytest.fixture(scope="session")
def run3_files(run3_dataset) -> list[str]:
    """Paths of the Run 3 files of ``run3_dataset`` (tree ``Events``)."""
    return _paths(run3_dataset)


@pytest.fixture(scope="session")
def run2_files(run2_dataset) -> list[str]:
    """Paths of the Run 2 files of ``run2_dataset`` (tree ``Tree3Mu/ntuple``)."""
    return _paths(run2_dataset)


@pytest.fixture(scope="session")
def same_events_both_layouts(tmp_path_factory) -> dict[str, Path]:
    """One simulation written in both layouts: the analysis must not tell them apart."""
    if not _has_root():
        pytest.skip("ROOT (the validation extra) is needed to write the Run 2 layout")
    from tau3mu.synth import simulate, write_run2, write_run3

    out = tmp_path_factory.mktemp("both")
    events = simulate(23, 0, N_EVENTS)
    return {
        "run2": write_run2(out / "same_run2.root", events, seed=23),
        "run3": write_run3(out / "same_run3.root", events),
    }


def _fileset_of(dataset: dict, **metadata) -> dict:
    ((name, spec),) = dataset["datasets"].items()
    files = {spec["rootpath"] + f: spec["treename"] for f in spec["files"].split()}
    return {
        name: {"files": files, "metadata": {"type": spec["type"], "era": spec["era"], **metadata}}
    }


@pytest.fixture(scope="session")
def fileset_of():
    """Turn a ``generate_dataset`` result into a coffea fileset (extra metadata as keywords)."""
    return _fileset_of


@pytest.fixture(scope="session")
def dask_client():
    """A real local Dask cluster: two worker processes, one thread each."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def corrupt_run2_file(run2_files, tmp_path_factory) -> tuple[str, int]:
    """A full Run 2 file rewritten uncompressed by ROOT, then one event's candidate
    masses made to claim one element more than they hold (the file opens and inspects
    fine); the path and that event."""
    import uproot

    ROOT = pytest.importorskip("ROOT")
    path = str(tmp_path_factory.mktemp("corrupt_run2") / "corrupt_run2.root")
    source = ROOT.TFile.Open(run2_files[0])
    out = ROOT.TFile(path, "RECREATE", "", 0)
    out.mkdir("Tree3Mu").cd()
    source.Get(RUN2_TREE).CloneTree(-1).Write()  # not "fast": baskets re-streamed, uncompressed
    out.Close()
    source.Close()
    masses = uproot.open(path)[RUN2_TREE]["Triplet2_Mass"].array(library="np")
    raw = bytearray(Path(path).read_bytes())
    for event in range(len(masses) // 2, len(masses)):
        body = len(masses[event]).to_bytes(4, "big") + masses[event].astype(">f8").tobytes()
        if len(masses[event]) and raw.count(body) == 1:
            at = raw.find(body)
            raw[at : at + 4] = (len(masses[event]) + 1).to_bytes(4, "big")
            Path(path).write_bytes(bytes(raw))
            return path, event
    pytest.fail("no event with unique candidate-mass bytes")


@pytest.fixture(scope="session")
def corrupt_run2(tmp_path_factory) -> Path:
    """A Run 2 file whose event 150-ish has one Tr_Pt value too few: its chunk fails at
    read time (the file itself opens and inspects fine)."""
    pytest.importorskip("ROOT")
    import numpy as np

    from tau3mu.synth import run2, simulate

    original = run2.run2_columns

    def corrupt(*args, **kwargs):
        columns = original(*args, **kwargs)
        kind, (offsets, data) = columns["Tr_Pt"]
        event = 150 + int(np.flatnonzero(np.diff(offsets)[150:] > 1)[0])
        keep = np.ones(len(data), dtype=bool)
        keep[offsets[event]] = False
        new = offsets.copy()
        new[event + 1 :] -= 1
        columns["Tr_Pt"] = (kind, (new, np.ascontiguousarray(data[keep])))
        return columns

    run2.run2_columns = corrupt
    try:
        path = tmp_path_factory.mktemp("corrupt") / "corrupt.root"
        return run2.write_run2(path, simulate(2, 0, 400), seed=2)
    finally:
        run2.run2_columns = original
