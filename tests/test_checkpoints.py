"""Checkpoints: kept inside their folder, private, and never unpickled unless signed for the chunk."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import stat
from pathlib import Path

import pytest
from same_output import assert_same_output

from tau3mu.checkpoints import key_path, path_component, seal, user_key
from tau3mu.credentials import Secret
from tau3mu.execution import run_runner
from tau3mu.processors.dsphipi import DsPhiPiProcessor

CHUNKSIZE = 3000  # 4 chunks of the 2 x 6000-event run3_dataset


class _CreatesMarker:
    """Unpickling this creates a file: what a hostile checkpoint could do, made visible."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _hostile_pickle(marker: Path) -> bytes:
    """A pickle that creates ``marker`` when loaded; checked to do so on a spare path."""
    spare = marker.with_name(marker.name + ".selftest")
    pickle.loads(pickle.dumps(_CreatesMarker(spare))).close()
    assert spare.exists(), "the hostile pickle must really act when unpickled"
    spare.unlink()
    return pickle.dumps(_CreatesMarker(marker))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("text", ["..", ".", "", "../../x", "/abs/y", "a/b", "DoubleMuon_2017"])
def test_path_component_is_one_harmless_name(text):
    name = path_component(text)
    assert name not in ("", ".", "..")
    assert "/" not in name
    assert os.sep not in name
    assert name == path_component(text)
    assert name != path_component(text + "_")


@pytest.mark.parametrize("dataset", ["../../x", "ABSOLUTE", ".."])
def test_dataset_name_cannot_place_checkpoints_outside_the_folder(
    dataset, run3_dataset, fileset_of, tmp_path
):
    """Every file a run writes lies under ``--checkpoint``, whatever the dataset is called
    (``ABSOLUTE``: an absolute path, in this test's folder), and the rerun finds them."""
    ((_, spec),) = fileset_of(run3_dataset).items()
    if dataset == "ABSOLUTE":
        dataset = str(tmp_path / "outside")
    fileset = {dataset: spec}
    checkpoint = tmp_path / "a" / "b" / "ckpt"
    first = run_runner(fileset, DsPhiPiProcessor(), chunksize=CHUNKSIZE, checkpoint=str(checkpoint))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 4
    assert all(checkpoint in p.parents for p in written), written
    assert not (tmp_path / "outside").exists()
    again = run_runner(fileset, DsPhiPiProcessor(), chunksize=CHUNKSIZE, checkpoint=str(checkpoint))
    assert again.metrics["accounting"]["resumed_chunks"] == 4
    assert_same_output(again, first)


def test_checkpoint_folder_and_key_are_private(run3_dataset, fileset_of, tmp_path):
    """The folder is made 0700 (an existing one of ours that others can enter is made
    private); the key file is 0600."""
    made = tmp_path / "new" / "ckpt"
    run_runner(
        fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=CHUNKSIZE, checkpoint=str(made)
    )
    assert _mode(made) == 0o700
    assert _mode(key_path()) == 0o600
    opened = tmp_path / "open"
    opened.mkdir(mode=0o755)
    os.chmod(opened, 0o755)
    run_runner(
        fileset_of(run3_dataset), DsPhiPiProcessor(), chunksize=CHUNKSIZE, checkpoint=str(opened)
    )
    assert _mode(opened) == 0o700


def test_key_that_others_can_read_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("TAU3MU_CACHE_DIR", str(tmp_path / "cache"))
    first = user_key()
    assert _mode(key_path()) == 0o600
    assert _mode(key_path().parent) == 0o700
    assert user_key() == first  # kept between runs
    os.chmod(key_path(), 0o644)
    second = user_key()
    assert second != first
    assert _mode(key_path()) == 0o600
    assert repr(second) == "<secret: 32 bytes>"


def _forge(kind: str, target: Path, other: Path, hostile: bytes) -> None:
    """Replace the checkpoint ``target`` by a foreign one of ``kind``."""
    header, _, _ = target.read_bytes().partition(b"\n")
    fingerprint = json.loads(header)["fingerprint"]
    if kind == "bare pickle":
        target.write_bytes(hostile)
    elif kind == "payload swapped":
        target.write_bytes(header + b"\n" + hostile)
    elif kind == "another user's key":
        target.write_bytes(seal(Secret(os.urandom(32)), fingerprint, hostile))
    elif kind == "another chunk's checkpoint":
        shutil.copyfile(other, target)
    else:
        raise ValueError(kind)


@pytest.mark.parametrize(
    "kind", ["bare pickle", "payload swapped", "another user's key", "another chunk's checkpoint"]
)
def test_foreign_checkpoint_is_refused_and_recomputed_not_unpickled(
    kind, run3_dataset, fileset_of, tmp_path, caplog
):
    """A checkpoint file someone else put in the folder is never unpickled (its pickle
    would create a marker file): the chunk is computed again, the result is the clean
    run's, and the file is replaced by a good checkpoint."""
    fileset = fileset_of(run3_dataset)
    checkpoint = tmp_path / "ckpt"
    clean = run_runner(fileset, DsPhiPiProcessor(), chunksize=CHUNKSIZE, checkpoint=str(checkpoint))
    files = sorted(checkpoint.rglob("*.pkl"))
    assert len(files) == 4
    marker = tmp_path / "unpickled"
    _forge(kind, files[1], files[0], _hostile_pickle(marker))

    with caplog.at_level(logging.WARNING, logger="tau3mu.checkpoints"):
        out = run_runner(
            fileset, DsPhiPiProcessor(), chunksize=CHUNKSIZE, checkpoint=str(checkpoint)
        )
    assert not marker.exists(), "the foreign checkpoint was unpickled"
    assert out.metrics["accounting"]["resumed_chunks"] == 3
    assert_same_output(out, clean)
    (warning,) = [r.getMessage() for r in caplog.records if "ignoring checkpoint" in r.getMessage()]
    assert str(files[1]) in warning
    again = run_runner(fileset, DsPhiPiProcessor(), chunksize=CHUNKSIZE, checkpoint=str(checkpoint))
    assert again.metrics["accounting"]["resumed_chunks"] == 4
    assert_same_output(again, clean)


def test_worker_processes_sign_and_check_with_the_users_key(run3_dataset, fileset_of, tmp_path):
    """Under the futures executor the chunks are saved and loaded in worker processes:
    the key travels with the checkpointer, and what they sign the next run accepts."""
    fileset = fileset_of(run3_dataset)
    checkpoint = str(tmp_path / "ckpt")
    options = {"executor": "futures", "workers": 2, "chunksize": CHUNKSIZE}
    first = run_runner(fileset, DsPhiPiProcessor(), checkpoint=checkpoint, **options)
    assert len(list((tmp_path / "ckpt").rglob("*.pkl"))) == 4
    again = run_runner(fileset, DsPhiPiProcessor(), checkpoint=checkpoint, **options)
    assert again.metrics["accounting"]["resumed_chunks"] == 4
    assert_same_output(again, first)


def test_atomic_writes_leave_the_old_content_on_failure(tmp_path):
    from tau3mu.atomic import atomic_open, current_umask, write_bytes, write_text

    target = tmp_path / "sub" / "a.json"
    assert write_text(target, "first") == target
    assert target.read_text() == "first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()

    def interrupted() -> None:
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted()
    assert target.read_text() == "first"
    write_bytes(target, b"\x00second")
    assert target.read_bytes() == b"\x00second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]  # no temporary left
