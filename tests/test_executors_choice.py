"""The automatic executor choice counts events without opening files an earlier
inspection found good."""

from __future__ import annotations

import pytest

from tau3mu.config import SelectionConfig
from tau3mu.datasets import load_datasets, to_fileset
from tau3mu.inspection import inspect_inputs, known_entries
from tau3mu.pipeline import RunOptions, choose_executor, count_events


@pytest.fixture(scope="module")
def fileset(run3_dataset):
    return to_fileset(load_datasets(run3_dataset["datasets_json"]))


def test_known_files_are_counted_without_opening(tmp_path):
    missing = str(tmp_path / "missing.root")
    fileset = {"d": {"files": {missing: "Events"}, "metadata": {}}}
    assert count_events(fileset, limit=1) == 0  # opened: it does not open
    assert count_events(fileset, limit=1, known={missing: 5}) == 5  # not opened


def test_known_entries_are_the_inspections(fileset, tmp_path, monkeypatch):
    monkeypatch.setenv("TAU3MU_CACHE_DIR", str(tmp_path / "cache"))
    config = SelectionConfig()
    assert known_entries(fileset, config) == {}  # nothing inspected yet
    inspection = inspect_inputs(fileset, config=config, cache=True)
    expected = {path: n for files in inspection.entries.values() for path, n in files.items()}
    assert known_entries(fileset, config) == expected
    # the choice counts them without opening a file, and says how many there are
    events = sum(expected.values())
    choice = choose_executor(fileset, RunOptions(chunksize=-(-events // 2)), cores=2)
    assert choice.executor == "iterative"
    assert f"{events:,} events, at most one chunk per worker" in choice.reason
