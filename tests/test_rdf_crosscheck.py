"""Cross-check with ROOT: the corrected RDataFrame original (Run 2) and the group's Run 3
selection in RDataFrame, the per-event reference and tau3mu agree exactly on the cutflow
and bin by bin on ``h_mass``, on generated files and on files that ROOT wrote."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from reference_selection import reference_select

from tau3mu.config import RUN2_STEPS, RUN3_STEPS
from tau3mu.execution import run_runner
from tau3mu.processors.dsphipi import DsPhiPiProcessor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

pytestmark = pytest.mark.root


def _files(dataset: dict) -> list[str]:
    (spec,) = dataset["datasets"].values()
    return [spec["rootpath"] + f for f in spec["files"].split()]


def _pairs(cutflow: dict) -> dict[str, list[int]]:
    return {label: [c["events"], c["candidates"]] for label, c in cutflow.items()}


@pytest.fixture(scope="module")
def rdf_run2(run2_dataset) -> dict:
    pytest.importorskip("ROOT")
    from rdf_original import run_rdf

    return run_rdf(_files(run2_dataset))


def test_rdataframe_one_event_loop_and_shape(rdf_run2):
    assert rdf_run2["event_loops"] == 1
    assert list(rdf_run2["cutflow"]) == ["events", *RUN2_STEPS, "best_candidate"]
    assert rdf_run2["h_mass"].shape == (62,)
    assert set(rdf_run2["timing"]) >= {"jit_and_setup_s", "event_loop_s", "total_s"}


def test_rdataframe_and_reference_agree(rdf_run2, run2_dataset):
    ref = reference_select(_files(run2_dataset), "run2")
    assert _pairs(ref.cutflow) == rdf_run2["cutflow"]
    np.testing.assert_array_equal(ref.h_mass(), rdf_run2["h_mass"])
    assert rdf_run2["h_mass"].sum() > 100  # a real comparison, not of two empty histograms
    # every cut removes candidates on generated data
    flow = rdf_run2["cutflow"]
    labels = ["events", *RUN2_STEPS]
    for before, after in itertools.pairwise(labels):
        assert flow[after][1] < flow[before][1], after


def test_rdataframe_and_tau3mu_agree(rdf_run2, run2_dataset, fileset_of):
    ours = run_runner(fileset_of(run2_dataset), DsPhiPiProcessor(), chunksize=2500)
    (name,) = ours.cutflow
    assert _pairs(ours.cutflow[name]) == rdf_run2["cutflow"]
    h = ours.hists["h_mass"][{"dataset": name, "systematic": "nominal"}].values()
    np.testing.assert_array_equal(h, rdf_run2["h_mass"])


def _ours(
    files: list[str], era: str | None = None, tree: str = "Events"
) -> tuple[dict, np.ndarray]:
    fileset = {"d": {"files": dict.fromkeys(files, tree), "metadata": {"era": era}}}
    ours = run_runner(fileset, DsPhiPiProcessor(), chunksize=2500, inspection_cache=False)
    h = ours.hists["h_mass"][{"dataset": "d", "systematic": "nominal"}].values()
    return _pairs(ours.cutflow["d"]), h


def test_rdataframe_run3_reference_and_tau3mu_agree(run3_dataset):
    pytest.importorskip("ROOT")
    from rdf_original import run_rdf

    rdf = run_rdf(_files(run3_dataset), layout="run3")
    ref = reference_select(_files(run3_dataset), "run3")
    assert list(rdf["cutflow"]) == ["events", *RUN3_STEPS, "best_candidate"]
    assert _pairs(ref.cutflow) == rdf["cutflow"]
    np.testing.assert_array_equal(ref.h_mass(), rdf["h_mass"])
    assert rdf["h_mass"].sum() > 100
    cutflow, h = _ours(_files(run3_dataset), "2022C")
    assert cutflow == rdf["cutflow"]
    np.testing.assert_array_equal(h, rdf["h_mass"])
    for before, after in itertools.pairwise(["events", *RUN3_STEPS]):
        assert rdf["cutflow"][after][1] < rdf["cutflow"][before][1], after


def test_run3_files_written_by_root_read_as_generated(run3_dataset, tmp_path):
    """ROOT rewrites the generated Run 3 files (its own TTree writer, C arrays with
    counters, its own baskets): RDataFrame, the reference and tau3mu agree on them, and
    with the uproot-written originals."""
    ROOT = pytest.importorskip("ROOT")
    import uproot
    from rdf_original import run_rdf

    written = []
    for k, path in enumerate(_files(run3_dataset)):
        out = str(tmp_path / f"root_written_{k}.root")
        ROOT.RDataFrame("Events", path).Snapshot("Events", out)
        written.append(out)
    types = uproot.open(written[0])["Events"].typenames()
    assert types["Muon_pt"] == "float[]"
    assert types["Cand2MuTrk_mu1_idx"] == "int32_t[]"
    rdf = run_rdf(written, layout="run3")
    ref = reference_select(written, "run3")
    assert _pairs(ref.cutflow) == rdf["cutflow"]
    np.testing.assert_array_equal(ref.h_mass(), rdf["h_mass"])
    cutflow, h = _ours(written, "2022C")
    assert cutflow == rdf["cutflow"]
    np.testing.assert_array_equal(h, rdf["h_mass"])
    assert (cutflow, h.tolist()) == (lambda c, hh: (c, hh.tolist()))(*_ours(_files(run3_dataset)))


def test_rdataframe_reference_and_tau3mu_agree_on_a_2018_dataset(tmp_path):
    """A 2018 Run 2 dataset is cut on the _2018 trigger-match branches everywhere."""
    pytest.importorskip("ROOT")
    from rdf_original import run_rdf

    from tau3mu.synth import generate_dataset

    data = generate_dataset(tmp_path, layout="run2", files=1, events_per_file=3000, era="2018D")
    files = _files(data)
    rdf = run_rdf(files, layout="run2", era="2018D")
    ref = reference_select(files, "run2", era="2018D")
    assert _pairs(ref.cutflow) == rdf["cutflow"]
    cutflow, h = _ours(files, "2018D", "Tree3Mu/ntuple")
    assert cutflow == rdf["cutflow"]
    np.testing.assert_array_equal(h, rdf["h_mass"])
    # the trigger match keeps the share it keeps in 2017 (not the ~33 % of a wrong year)
    kept = rdf["cutflow"]["trigger_match"][1] / rdf["cutflow"]["phi_mass"][1]
    assert 0.6 < kept < 0.9


@pytest.mark.parametrize("layout", ["run2", "run3"])
def test_rdataframe_and_reference_agree_on_every_boundary(tmp_path, layout):
    """Hand-made events at each cut's edge, links that fail, ties, NaN, trigger names."""
    pytest.importorskip("ROOT")
    from rdf_original import run_rdf
    from test_reference_selection import _write_run2, _write_run3, boundary_events

    path = tmp_path / f"boundaries_{layout}.root"
    (_write_run2 if layout == "run2" else _write_run3)(path, boundary_events(layout))
    ref = reference_select(str(path), layout)
    rdf = run_rdf([str(path)], layout=layout)
    assert _pairs(ref.cutflow) == rdf["cutflow"]
    np.testing.assert_array_equal(ref.h_mass(), rdf["h_mass"])
    assert rdf["h_mass"].sum() > 20


def test_distributed_rdataframe_on_dask_workers_agrees(rdf_run2, run2_dataset, dask_client):
    """The same graph as distributed RDataFrame on real Dask worker processes."""
    from rdf_original import run_rdf

    scheduler = dask_client.scheduler.address
    files = _files(run2_dataset)
    distributed = run_rdf(files, scheduler=scheduler, npartitions=len(files))
    assert distributed["cutflow"] == rdf_run2["cutflow"]
    np.testing.assert_array_equal(distributed["h_mass"], rdf_run2["h_mass"])


def test_throughput_benchmark_compares_complete_results(rdf_run2, run2_dataset, fileset_of):
    """``bench_throughput.differences``, the benchmark's check that RDataFrame and tau3mu
    gave identical results: none on these files; a changed h_mass bin, a changed count or
    a missing step of the cutflow is found."""
    import copy

    from bench_throughput import differences

    ours = run_runner(fileset_of(run2_dataset), DsPhiPiProcessor(), chunksize=2500)
    (name,) = ours.cutflow
    assert differences(ours, name, rdf_run2) == []
    one_bin = {**rdf_run2, "h_mass": rdf_run2["h_mass"].copy()}
    one_bin["h_mass"][30] += 1
    (found,) = differences(ours, name, one_bin)
    assert found.startswith("h_mass differs in bins [30]")
    one_count = copy.deepcopy(rdf_run2)
    one_count["cutflow"]["phi_mass"][1] += 1
    (found,) = differences(ours, name, one_count)
    assert found.startswith("cutflow:")
    one_step_fewer = copy.deepcopy(rdf_run2)
    del one_step_fewer["cutflow"]["delta_r"]
    (found,) = differences(ours, name, one_step_fewer)
    assert found.startswith("cutflow:")
