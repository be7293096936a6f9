"""The library pipeline: the executor a run picks by itself, and a second channel (defined
here) run through the same functions as the Ds -> phi pi channel, on generated files."""

from __future__ import annotations

import dataclasses
import json
import pickle
from typing import Any

import awkward as ak
import hist
import numpy as np
import pytest
import uproot
from coffea.processor import ProcessorABC, column_accumulator

from tau3mu.channels import DSPHIPI, Channel, channel_names, get_channel, register
from tau3mu.cli import main
from tau3mu.config import SelectionConfig
from tau3mu.datasets import datasets_from_paths, load_datasets, to_fileset
from tau3mu.errors import OptionError
from tau3mu.pipeline import RunOptions, analyse, choose_executor, count_events, run


# -- the executor chosen when none is named ---------------------------------------------
@pytest.fixture(scope="module")
def fileset(run3_dataset):
    return to_fileset(load_datasets(run3_dataset["datasets_json"]))


def test_one_core_or_one_worker_stays_in_this_process(fileset):
    one_core = choose_executor(fileset, RunOptions(), cores=1)
    assert (one_core.executor, one_core.workers, one_core.automatic) == ("iterative", 1, True)
    assert one_core.reason.startswith("one core")
    one_worker = choose_executor(fileset, RunOptions(workers=1, chunksize=10), cores=8)
    assert one_worker.executor == "iterative"
    assert one_worker.reason.startswith("--workers 1")


def test_tiny_inputs_stay_in_this_process_large_ones_go_to_dask(fileset, run3_dataset):
    events = run3_dataset["events"]
    # one chunk per worker: a local cluster would only add its start
    few = choose_executor(fileset, RunOptions(chunksize=-(-events // 2)), cores=2)
    assert (few.executor, few.automatic) == ("iterative", True)
    assert f"{events:,} events, at most one chunk per worker" in few.reason
    # more: worth the cluster
    large = choose_executor(fileset, RunOptions(chunksize=events // 2 - 1), cores=2)
    assert (large.executor, large.workers, large.automatic) == ("dask", 2, True)
    assert "events, 2 workers" in large.reason


def test_the_users_choice_stands(fileset):
    for executor in ("iterative", "futures", "dask"):
        choice = choose_executor(fileset, RunOptions(executor=executor, workers=3), cores=1)
        assert (choice.executor, choice.automatic) == (executor, False)
    scheduler = choose_executor(fileset, RunOptions(scheduler="tcp://x:1"), cores=1)
    assert (scheduler.executor, scheduler.reason) == ("dask", "--scheduler tcp://x:1")
    assert choose_executor(fileset, RunOptions(htcondor=True), cores=1).executor == "dask"


def test_events_are_counted_up_to_the_limit_only_where_cheap(fileset, run3_dataset, tmp_path):
    events = run3_dataset["events"]
    assert count_events(fileset, limit=10**9) == events
    # the count stops after the file that reaches the limit
    assert events > count_events(fileset, limit=1) > 0
    remote = {"d": {"files": {"root://host//f.root": "Events"}, "metadata": {}}}
    assert count_events(remote, limit=1) is None
    assert choose_executor(remote, RunOptions(), cores=2).executor == "dask"
    missing = {"d": {"files": {str(tmp_path / "missing.root"): "Events"}, "metadata": {}}}
    assert count_events(missing, limit=1) == 0


def test_run_without_executor_says_what_it_chose(run3_dataset, tmp_path, capsys):
    argv = ["run", run3_dataset["datasets_json"], "--out", str(tmp_path), "--no-fit"]
    assert main([*argv, "--workers", "2", "--chunksize", "100000", "--no-progress"]) == 0
    err = capsys.readouterr().err
    (line,) = (x for x in err.splitlines() if x.startswith("executor:"))
    assert line.startswith("executor: iterative (this process), chosen: 12,000 events")
    assert "Dask:" not in err  # no cluster started
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["executor"] == "iterative"
    assert report["executor_choice"]["automatic"] is True
    assert report["executor_choice"]["reason"] in line
    assert report["workers"] == 1


# -- a second channel, defined here -------------------------------------------------------
class EventCounter(ProcessorABC):
    """Counts events, and histograms the lumi section of events with an even event number."""

    def __init__(self, config: SelectionConfig) -> None:
        self.config = config

    def process(self, events: Any) -> dict[str, Any]:
        dataset = events.metadata["dataset"]
        even = events[events.event % 2 == 0]
        h = book_lumi(self.config)["h_lumi"]
        h.fill(dataset=dataset, systematic="nominal", lumi=ak.to_numpy(even.lumi))
        rows = ak.zip({name: even[name] for name in ("run", "lumi", "event")}, depth_limit=1)
        return {
            "cutflow": {
                dataset: {
                    "events": {"events": len(events), "candidates": 0},
                    "even": {"events": len(even), "candidates": 0},
                }
            },
            "hists": {"h_lumi": h},
            # plain arrays: the events' own attributes hold their open file
            "snapshot": {dataset: column_accumulator(ak.Array(ak.to_packed(rows).layout))},
        }

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator


def book_lumi(config: SelectionConfig) -> dict[str, Any]:
    return {
        "h_lumi": hist.Hist(
            hist.axis.StrCategory([], name="dataset", growth=True),
            hist.axis.StrCategory([], name="systematic", growth=True),
            hist.axis.Regular(100, 0, 1000, name="lumi"),
            storage=hist.storage.Weight(),
        )
    }


COUNTER = Channel(
    name="test_event_counter",
    description="events with an even event number (a test channel)",
    config_type=SelectionConfig,
    make_processor=lambda config, weights: EventCounter(config),
    book_histograms=book_lumi,
    fit_histogram=None,
)


def test_a_second_channel_runs_through_the_pipeline(run3_files, tmp_path):
    register(COUNTER, replace=True)
    assert {"dsphipi", "test_event_counter"} <= set(channel_names())
    datasets = datasets_from_paths(run3_files, name="counted")
    options = RunOptions(channel="test_event_counter", executor="iterative", progress=False)
    report = run(datasets, tmp_path, options)
    # the truth, read here with uproot alone
    events = np.concatenate(
        [uproot.open(f)["Events/event"].array(library="np") for f in run3_files]
    )
    cutflow = json.loads((tmp_path / "cutflow.json").read_text())
    assert cutflow == {
        "counted": {
            "events": {"events": len(events), "candidates": 0},
            "even": {"events": int(np.sum(events % 2 == 0)), "candidates": 0},
        }
    }
    with open(tmp_path / "histograms.pkl", "rb") as handle:
        h = pickle.load(handle)["h_lumi"]
    assert h[{"dataset": "counted", "systematic": "nominal"}].sum().value == np.sum(events % 2 == 0)
    assert report["channel"] == "test_event_counter"
    assert report["fit"] == {}
    assert report["fit_time_s"] is None
    assert "fit" not in report["outputs"]
    assert not (tmp_path / "fit.json").exists()
    snapshot = uproot.open(tmp_path / "snapshot.root")["ntuple"].arrays(library="np")
    assert sorted(snapshot["event"]) == sorted(events[events % 2 == 0])


def test_channels_are_found_by_name():
    assert get_channel("dsphipi") is DSPHIPI
    assert DSPHIPI.default_config() == SelectionConfig()
    assert "h_mass" in DSPHIPI.book_histograms(SelectionConfig())
    with pytest.raises(OptionError, match=r"unknown channel 'nope'; known channels: .*dsphipi"):
        get_channel("nope")
    with pytest.raises(ValueError, match="registered already"):
        register(dataclasses.replace(DSPHIPI, description="another"))


def test_analyse_refuses_bad_options_before_reading(run3_files):
    datasets = datasets_from_paths(run3_files)
    with pytest.raises(OptionError, match="--chunksize 0: must be at least 1"):
        analyse(datasets, RunOptions(chunksize=0))
    with pytest.raises(OptionError, match="--checkpoint needs --mode runner"):
        analyse(datasets, RunOptions(mode="dask-awkward", checkpoint="x"))
