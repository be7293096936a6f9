"""How files are read: the inflate library, and each file opened once before the run."""

from __future__ import annotations

import os
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import uproot

from tau3mu import inflate
from tau3mu.reading import PRIVATE_APIS_ENV


@pytest.fixture
def restore_inflate():
    before = inflate.current()
    yield
    inflate.configure(before)


IMPORT_THEN_PREPARE = """
import uproot
import tau3mu.execution, tau3mu.inspection, tau3mu.schemas, tau3mu.processors.dsphipi
from tau3mu import inflate
from tau3mu.reading import prepare_process
print(inflate.current())
prepare_process()
print(inflate.current(), uproot.ZLIB(1).library)
"""


def test_imports_change_nothing_and_preparing_selects_isal_for_reading_only():
    """Importing tau3mu leaves uproot as it is; :func:`tau3mu.reading.prepare_process`
    switches inflate to ISA-L, and writing ZLIB (snapshots, generated files) stays as
    uproot does it."""
    env = {k: v for k, v in os.environ.items() if k not in ("TAU3MU_INFLATE", PRIVATE_APIS_ENV)}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_THEN_PREPARE],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["zlib", "isal", "zlib"]


@pytest.mark.usefixtures("restore_inflate")
def test_isal_and_zlib_inflate_the_same_bytes(run2_files):
    """ZLIB-compressed Run 2 baskets decode identically through both libraries."""
    tree = uproot.open(run2_files[0])["Tree3Mu/ntuple"]
    branches = ["Triplet2_Mass", "Mu01_Pt", "Track_pt", "Trigger_hltname"]
    assert tree["Triplet2_Mass"].compression.name == "ZLIB"
    arrays = {}
    for library in inflate.LIBRARIES:
        assert inflate.configure(library) == library
        assert inflate.current() == library
        arrays[library] = tree.arrays(branches, array_cache=None)
    for name in branches:
        assert ak.array_equal(arrays["isal"][name], arrays["zlib"][name], equal_nan=True), name


@pytest.mark.usefixtures("restore_inflate")
def test_unknown_inflate_library_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="unknown inflate library"):
        inflate.configure("gzip9")
    monkeypatch.setenv("TAU3MU_INFLATE", "zlib")
    assert inflate.configure() == "zlib"


def test_runner_does_not_reopen_files_to_preprocess(run3_dataset, fileset_of, monkeypatch):
    """The inspection's entries and UUIDs become coffea's metadata cache."""
    from coffea.processor import Runner

    from tau3mu.execution import run_runner
    from tau3mu.inspection import inspect_inputs
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    fileset = fileset_of(run3_dataset)
    inspection = inspect_inputs(fileset)
    cache = inspection.coffea_metadata()
    assert len(cache) == sum(len(spec["files"]) for spec in fileset.values())
    for meta in cache.values():
        assert meta["numentries"] > 0
        assert len(meta["uuid"]) == 16
        assert meta["type"] == "data"

    def refuse(*args, **kwargs):
        raise AssertionError("coffea reopened a file to preprocess it")

    monkeypatch.setattr(Runner, "metadata_fetcher_root", staticmethod(refuse))
    out = run_runner(fileset, DsPhiPiProcessor(), chunksize=7_000)
    assert out.metrics["accounting"]["processed_events"] == inspection.total
    assert np.sum(out.hists["h_mass"].values()) > 0


@pytest.mark.parametrize("where", ["threads", "dask workers"])
def test_concurrent_inspection_keeps_order_and_verdicts(
    where, run3_dataset, fileset_of, tmp_path, request
):
    """Inspecting on threads (remote files) or Dask workers gives the serial result."""
    from tau3mu.inspection import InputFileError, inspect_inputs

    how = (
        {"threads": 4} if where == "threads" else {"client": request.getfixturevalue("dask_client")}
    )
    fileset = fileset_of(run3_dataset)
    ((name, spec),) = fileset.items()
    missing = str(tmp_path / "missing.root")
    spec["files"] = {missing: "Events", **spec["files"]}
    # without the cache, so that both really open the files
    serial = inspect_inputs(fileset, skip_bad_files=True, threads=1, cache=False)
    concurrent = inspect_inputs(fileset, skip_bad_files=True, cache=False, **how)
    assert concurrent.entries == serial.entries
    assert concurrent.uuids == serial.uuids
    assert (
        concurrent.skipped
        == serial.skipped
        == [{"dataset": name, "file": missing, "events": None, "error": "file not found"}]
    )
    with pytest.raises(InputFileError, match=r"missing\.root: file not found"):
        inspect_inputs(fileset, **how)


@pytest.mark.parametrize("step_size", [1_000, 2_345, 1_000_000])
def test_dask_awkward_steps_are_coffeas(run3_dataset, fileset_of, step_size):
    """The steps built from the inspection are those coffea's preprocess computes."""
    from coffea.dataset_tools import preprocess

    from tau3mu.inspection import inspect_inputs

    fileset = fileset_of(run3_dataset)
    ours = inspect_inputs(fileset).steps_fileset(step_size)
    theirs, _ = preprocess(fileset, step_size=step_size, skip_bad_files=False)
    for dataset, spec in theirs.items():
        assert ours[dataset]["metadata"] == spec["metadata"]
        for path, entry in spec["files"].items():
            mine = ours[dataset]["files"][path]
            for key in ("object_path", "steps", "num_entries", "uuid"):
                assert mine[key] == entry[key], key
