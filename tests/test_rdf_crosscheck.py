"""Cross-check with ROOT: the corrected RDataFrame original, the per-event reference and
tau3mu agree exactly on the cutflow and bin by bin on ``h_mass``."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from reference_selection import reference_select

from tau3mu.config import RUN2_STEPS
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


def test_rdataframe_run3_and_reference_agree(run3_dataset):
    pytest.importorskip("ROOT")
    from rdf_original import run_rdf

    rdf = run_rdf(_files(run3_dataset), layout="run3")
    ref = reference_select(_files(run3_dataset), "run3")
    assert _pairs(ref.cutflow) == rdf["cutflow"]
    np.testing.assert_array_equal(ref.h_mass(), rdf["h_mass"])
    assert rdf["h_mass"].sum() > 100


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
