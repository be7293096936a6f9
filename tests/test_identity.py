"""One file counted once, one event counted once, and an empty tree is zero events.

Real files: Run 3 ntuples written by uproot (each with its own ROOT file UUID), a byte
copy (the same UUID), and a resubmitted job's output holding the same events as another
file (CRAB's ``Tree_PhiPi_1-10.root`` beside ``Tree_PhiPi_10.root``).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from tau3mu.cli import main
from tau3mu.duplicates import FILLED_FROM, NOT_CORRECTED, drop_duplicate_events
from tau3mu.execution import run_runner
from tau3mu.inspection import inspect_inputs
from tau3mu.processors.dsphipi import DsPhiPiProcessor
from tau3mu.synth import simulate
from tau3mu.synth.run3 import run3_branches, write_run3

EVENTS = 3000


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """``Tree_PhiPi_10`` and its resubmission ``Tree_PhiPi_1-10`` (the same events, another
    file), ``Tree_PhiPi_11`` (other events) and a file whose tree has no entries."""
    out = tmp_path_factory.mktemp("crab")
    write_run3(out / "Tree_PhiPi_10.root", simulate(41, 0, EVENTS))
    write_run3(out / "Tree_PhiPi_1-10.root", simulate(41, 0, EVENTS))
    write_run3(out / "Tree_PhiPi_11.root", simulate(41, 1, EVENTS))
    branches = run3_branches(simulate(42, 0, 10))
    with uproot.recreate(out / "Tree_PhiPi_12.root") as f:
        f.mktree(
            "Events",
            {k: v.type if hasattr(v, "fields") else v.dtype for k, v in branches.items()},
            counter_name=lambda c: f"n{c}",
        )
        f["Events"].extend({k: v[:0] for k, v in branches.items()})
    return out


def _datasets_json(folder: Path, files: str, name: str = "2017E") -> Path:
    path = folder / f"input_{abs(hash(files))}.json"
    spec = {"rootpath": str(folder), "files": files, "treename": "Events", "skim": "dsphipi"}
    path.write_text(json.dumps({name: spec}))
    return path


def _run(datasets: Path, out: Path, *extra: str) -> int:
    argv = ["run", str(datasets), "--out", str(out), "--executor", "iterative"]
    return main([*argv, "--no-fit", "--no-progress", *extra])


def _fileset(folder: Path, *names: str) -> dict:
    files = {str(folder / n): "Events" for n in names}
    return {"2017E": {"files": files, "metadata": {"type": "data", "era": "2022E"}}}


def test_a_copy_of_a_file_in_one_dataset_is_refused_with_both_names(folder, tmp_path, capsys):
    shutil.copyfile(folder / "Tree_PhiPi_11.root", tmp_path / "copy.root")
    datasets = tmp_path / "input.json"
    spec = {"treename": "Events", "rootpath": "/"}
    files = f"{folder / 'Tree_PhiPi_11.root'} {tmp_path / 'copy.root'}"
    datasets.write_text(json.dumps({"d": {**spec, "files": files}}))
    assert _run(datasets, tmp_path / "out") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "dataset 'd'" in line
    assert str(folder / "Tree_PhiPi_11.root") in line
    assert str(tmp_path / "copy.root") in line
    assert "same ROOT file" in line
    # one file in two datasets: each dataset is its own result, nothing counts twice
    same = _fileset(folder, "Tree_PhiPi_11.root")
    inspected = inspect_inputs({"a": same["2017E"], "b": same["2017E"]}, cache=False)
    assert set(inspected.fileset) == {"a", "b"}


@pytest.mark.parametrize("mode", ["runner", "dask-awkward"])
def test_a_tree_with_zero_entries_is_zero_events(folder, tmp_path, mode):
    datasets = _datasets_json(folder, "Tree_PhiPi_11.root Tree_PhiPi_12.root")
    assert _run(datasets, tmp_path, "--mode", mode) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    accounting = report["accounting"]
    assert accounting["skipped_files"] == []
    assert accounting["processed_events"] == EVENTS == accounting["input_events"]
    assert accounting["balanced"]
    cutflow = json.loads((tmp_path / "cutflow.json").read_text())
    alone = run_runner(_fileset(folder, "Tree_PhiPi_11.root"), DsPhiPiProcessor()).cutflow
    assert cutflow == alone


@pytest.fixture(scope="module")
def with_copies(folder):
    return run_runner(
        _fileset(folder, "Tree_PhiPi_10.root", "Tree_PhiPi_1-10.root", "Tree_PhiPi_11.root"),
        DsPhiPiProcessor(),
    )


@pytest.fixture(scope="module")
def without_copies(folder):
    return run_runner(
        _fileset(folder, "Tree_PhiPi_10.root", "Tree_PhiPi_11.root"), DsPhiPiProcessor()
    )


def test_dropping_duplicates_equals_reading_each_event_once(with_copies, without_copies):
    selected_twice = len(
        [1 for row in without_copies.snapshot["2017E"].event if row < 10_000_000]
    )  # the events of Tree_PhiPi_10 (file index 0) that pass
    assert selected_twice > 0
    dropped_result, dropped = drop_duplicate_events(with_copies)
    assert dropped == {"2017E": selected_twice}
    for name in FILLED_FROM:
        got, want = dropped_result.hists[name], without_copies.hists[name]
        np.testing.assert_allclose(got.values(flow=True), want.values(flow=True), atol=1e-9)
        np.testing.assert_allclose(got.variances(flow=True), want.variances(flow=True), atol=1e-9)
        # not a no-op: the copies were in the histogram before (flows included: ct is NaN
        # in files without the flight distance)
        assert with_copies.hists[name].sum(flow=True).value > want.sum(flow=True).value
    got, want = dropped_result.snapshot["2017E"], without_copies.snapshot["2017E"]
    assert got.fields == want.fields
    for field in want.fields:  # NaN where Run 3 has no value (pv_ntracks) equals NaN
        np.testing.assert_array_equal(ak.to_numpy(got[field]), ak.to_numpy(want[field]))
    assert dropped_result.truth == without_copies.truth
    for name in NOT_CORRECTED:  # documented: what the snapshot cannot correct
        assert dropped_result.hists[name] == with_copies.hists[name]
    assert dropped_result.cutflow == with_copies.cutflow
    assert drop_duplicate_events(without_copies)[1] == {"2017E": 0}


def test_duplicates_are_counted_and_said(folder, with_copies, tmp_path, capsys):
    files = "Tree_PhiPi_10.root Tree_PhiPi_1-10.root Tree_PhiPi_11.root"
    datasets = _datasets_json(folder, files)
    extra = len(with_copies.snapshot["2017E"]) - len(
        set(with_copies.snapshot["2017E"].event.to_list())
    )
    for drop in (False, True):
        out = tmp_path / f"drop_{drop}"
        assert _run(datasets, out, *(["--drop-duplicate-events"] if drop else [])) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["duplicate_events"] == {"extra_copies": {"2017E": extra}, "dropped": drop}
        printed = capsys.readouterr().out
        assert f"duplicate events (same run, lumi, event; extra copies) 2017E: {extra:,}" in printed
        with uproot.open(out / "snapshot.root") as f:
            rows = f["ntuple"].num_entries
        assert rows == len(with_copies.snapshot["2017E"]) - (extra if drop else 0)
        with open(out / "histograms.pkl", "rb") as handle:
            hists = pickle.load(handle)
        mass = hists["h_mass"][{"dataset": "2017E", "systematic": "nominal"}].sum(flow=True).value
        assert mass == pytest.approx(
            with_copies.hists["h_mass"][{"dataset": "2017E", "systematic": "nominal"}]
            .sum(flow=True)
            .value
            - (extra if drop else 0)
        )
