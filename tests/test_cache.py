"""The inspection cache: a local file found good and unchanged is not opened again."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import uproot

from tau3mu.cache import InspectionCache, cache_dir
from tau3mu.cli import main
from tau3mu.inspection import InputFileError, inspect_inputs


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("TAU3MU_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def copies(run3_files, tmp_path):
    """Copies of the Run 3 files that a test may change."""
    out = []
    for path in run3_files:
        target = tmp_path / os.path.basename(path)
        shutil.copyfile(path, target)
        out.append(str(target))
    return out


@pytest.fixture
def opens(monkeypatch):
    """Count the files uproot opens."""
    calls = []
    real = uproot.open

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(uproot, "open", counting)
    return calls


def _fileset(paths, tree="Events", era="2022"):
    return {"d": {"files": dict.fromkeys(paths, tree), "metadata": {"era": era}}}


def test_known_good_files_are_not_reopened(cache, copies, opens):
    first = inspect_inputs(_fileset(copies))
    assert first.known_good == 0
    assert len(opens) == len(copies)
    second = inspect_inputs(_fileset(copies))
    assert second.known_good == len(copies)
    assert len(opens) == len(copies)  # nothing opened the second time
    assert second.entries == first.entries
    assert second.uuids == first.uuids
    assert second.coffea_metadata() == first.coffea_metadata()


@pytest.mark.parametrize("change", ["truncate", "touch"])
def test_a_changed_file_is_inspected_again(cache, copies, opens, change):
    inspect_inputs(_fileset(copies))
    if change == "truncate":
        with open(copies[0], "r+b") as f:
            f.truncate(os.path.getsize(copies[0]) // 2)
        with pytest.raises(InputFileError, match=os.path.basename(copies[0])):
            inspect_inputs(_fileset(copies))
    else:
        stat = os.stat(copies[0])
        os.utime(copies[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        again = inspect_inputs(_fileset(copies))
        assert again.known_good == len(copies) - 1
        assert opens.count(copies[0]) == 2


def test_bad_files_are_inspected_every_time(cache, copies, tmp_path, opens):
    bad = tmp_path / "not_root.root"
    bad.write_bytes(b"not a ROOT file" * 100)
    for _ in range(2):
        result = inspect_inputs(_fileset([*copies, str(bad)]), skip_bad_files=True)
        assert [s["file"] for s in result.skipped] == [str(bad)]
    assert opens.count(str(bad)) == 2


def test_verdicts_are_per_era_and_tree(cache, copies):
    from tau3mu.config import SelectionConfig

    inspect_inputs(_fileset(copies))
    assert inspect_inputs(_fileset(copies)).known_good == len(copies)
    assert inspect_inputs(_fileset(copies, era="2023")).known_good == 0
    # the run's default era, for a dataset that names none
    plain = {"d": {"files": dict.fromkeys(copies, "Events")}}
    assert inspect_inputs(plain, config=SelectionConfig(era="2024C")).known_good == 0
    assert inspect_inputs(plain, config=SelectionConfig(era="2024C")).known_good == len(copies)
    known = InspectionCache(cache, era="2022", rules="other rules")
    assert known.get(copies[0], "Events") is None


@pytest.mark.parametrize("how", ["env", "argument"])
def test_cache_can_be_turned_off(cache, copies, opens, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("TAU3MU_CACHE_DIR", "off")
        assert cache_dir() is None
    kwargs = {"cache": False} if how == "argument" else {}
    for _ in range(2):
        assert inspect_inputs(_fileset(copies), **kwargs).known_good == 0
    assert len(opens) == 2 * len(copies)


def test_remote_files_and_unwritable_folders_are_left_alone(copies, tmp_path):
    known = InspectionCache(tmp_path, era="2017", rules="r")
    known.put("root://localhost:1094//data/f.root", "Events", 10, b"\0" * 16)
    assert known.get("root://localhost:1094//data/f.root", "Events") is None
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    stuck = InspectionCache(blocker, era="2017", rules="r")
    stuck.put(copies[0], "Events", 10, b"\0" * 16)  # no error: the cache only saves work
    assert stuck.get(copies[0], "Events") is None


def test_run_reports_files_known_good(cache, run3_dataset, tmp_path):
    reports = []
    for i, extra in enumerate([[], [], ["--no-inspection-cache"]]):
        out = tmp_path / f"out{i}"
        args = ["run", run3_dataset["datasets_json"], "--out", str(out), "--no-fit"]
        assert main([*args, "--executor", "iterative", "--no-progress", *extra]) == 0
        reports.append(json.loads((out / "report.json").read_text()))
    assert [r["files_known_good"] for r in reports] == [0, len(run3_dataset["files"]), 0]
    assert reports[0]["accounting"] == reports[1]["accounting"]
