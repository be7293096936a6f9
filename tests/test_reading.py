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
from tau3mu.reading import PRIVATE_APIS_ENV, uproot_options


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


@pytest.mark.parametrize("private", ["on", "off"])
def test_imports_change_nothing_and_preparing_selects_isal_for_reading_only(private):
    """Importing tau3mu leaves uproot as it is; :func:`tau3mu.reading.prepare_process`
    switches inflate to ISA-L (not with ``TAU3MU_PRIVATE_APIS=off``: uproot's own), and
    writing ZLIB (snapshots, generated files) stays as uproot does it."""
    env = {k: v for k, v in os.environ.items() if k not in ("TAU3MU_INFLATE", PRIVATE_APIS_ENV)}
    env[PRIVATE_APIS_ENV] = private
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_THEN_PREPARE],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["zlib", "isal" if private == "on" else "zlib", "zlib"]


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


@pytest.mark.parametrize(
    ("path", "remote", "local"),
    [
        ("file:///data/a.root", False, "/data/a.root"),
        ("root://host//data/a.root", True, None),
        ("https://host/a.root", True, None),
        ("/data/a.root", False, "/data/a.root"),
        ("data/a.root", False, "data/a.root"),
    ],
)
def test_one_rule_tells_local_from_remote(path, remote, local):
    """``file://`` URLs, absolute and relative paths are this machine's files; the kept
    trees, the inspection cache and the XRootD options all ask this one rule."""
    from tau3mu.xrootd import is_remote, local_path

    assert is_remote(path) is remote
    if local is None:
        with pytest.raises(ValueError, match="not a file of this machine"):
            local_path(path)
    else:
        assert local_path(path) == local
    from tau3mu.opentrees import KeptFileSource

    handler = uproot_options([path], keep_trees=True).get("handler")
    keeps = handler is not None and issubclass(handler, KeptFileSource)
    assert keeps is (not remote)


def test_private_apis_only_for_the_tested_versions(monkeypatch):
    from tau3mu import reading

    packages = ("uproot", "coffea", "dask", "dask-awkward")
    assert all(reading.supported(package) for package in packages)
    monkeypatch.setitem(reading.TESTED_VERSIONS, "uproot", ((5, 0), (5, 1)))
    assert not reading.supported("uproot")
    assert uproot_options(["/a.root"], keep_trees=True) == {"array_cache": "1 GB"}
    monkeypatch.undo()
    monkeypatch.setenv(PRIVATE_APIS_ENV, "off")
    assert not any(reading.supported(package) for package in packages)
    assert reading.allow_unicode_names() is False


def test_the_libraries_own_paths_give_the_same_results(run2_dataset, fileset_of, monkeypatch):
    """With ``TAU3MU_PRIVATE_APIS=off`` (what an untested uproot or coffea version gets),
    the run reads with uproot's own readers, no kept trees, coffea's own bars: the
    cutflow and histograms are those of tau3mu's shortcuts, bit for bit."""
    import coffea.processor.executor as executor

    from tau3mu.execution import run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor
    from tau3mu.progress import coffea_bars

    fileset = fileset_of(run2_dataset)
    fast = run_runner(fileset, DsPhiPiProcessor(), chunksize=2_000, inspection_cache=False)
    monkeypatch.setenv(PRIVATE_APIS_ENV, "off")
    options = uproot_options(next(iter(fileset.values()))["files"], keep_trees=True)
    assert "object_cache" not in options
    assert "handler" not in options
    original = executor.rich_bar
    with coffea_bars("lines"):
        assert executor.rich_bar is original
    plain = run_runner(fileset, DsPhiPiProcessor(), chunksize=2_000, inspection_cache=False)
    assert plain.cutflow == fast.cutflow
    assert fast.hists.keys() == plain.hists.keys()
    for name, hist in fast.hists.items():
        np.testing.assert_array_equal(hist.values(), plain.hists[name].values(), err_msg=name)
        np.testing.assert_array_equal(hist.variances(), plain.hists[name].variances())


@pytest.fixture(scope="module")
def simulation_files(tmp_path_factory):
    """Small simulation of both layouts with the truth of the Ds+ origin (``f_b``):
    generated particles, the muons' decay type, pileup and the candidates' flight."""
    from tau3mu.synth import generate_dataset

    out = {}
    for layout in ("run2", "run3"):
        folder = tmp_path_factory.mktemp(f"simulation_{layout}")
        info = generate_dataset(
            folder, layout=layout, events_per_file=1500, seed=5, mc=True, f_b=0.25
        )
        out[layout] = [str(p) for p in sorted(folder.glob("*.root"))]
        assert info["datasets"]
    return out


@pytest.mark.parametrize("layout", ["run2", "run3"])
@pytest.mark.parametrize("kind", ["data", "simulation"])
def test_typing_only_the_schema_branches_builds_the_same_events(layout, kind, request):
    """NanoEvents typing only :func:`tau3mu.schemas.schema_branch` branches (what the
    Runner does) gives the events typing every branch gives: same form, same values,
    for data and for simulation with its truth (generated particles, decay types,
    pileup) and the candidates' kinematics that ct needs."""
    from coffea.nanoevents import NanoEventsFactory

    from tau3mu.reading import iteritems_options
    from tau3mu.schemas import Tau3MuSchema, schema_branch

    if kind == "data":
        path = request.getfixturevalue(f"{layout}_files")[0]
    else:
        path = request.getfixturevalue("simulation_files")[layout][0]
    tree = "Tree3Mu/ntuple" if layout == "run2" else "Events"
    names = uproot.open(path)[tree].keys()
    assert 0 < sum(map(schema_branch, names)) < len(names)

    def events(options):
        return NanoEventsFactory.from_root(
            {path: tree},
            schemaclass=Tau3MuSchema,
            mode="eager",
            iteritems_options=options,
            entry_stop=500,
        ).events()

    typed_all, typed_schema = events({}), events(iteritems_options())
    if kind == "simulation":
        assert {"Gen", "true_pileup"} <= set(typed_all.fields)
    assert typed_schema.layout.form == typed_all.layout.form
    assert ak.array_equal(typed_schema, typed_all, equal_nan=True)
