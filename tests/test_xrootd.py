"""A real xrootd server on loopback: uproot reads over root://, retries survive a restart."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
import uproot
from services.network import port_open
from services.xrootd import xrootd_server, xrootd_unavailable_reason

from tau3mu.datasets import datasets_from_paths, load_datasets, to_fileset
from tau3mu.retries import with_retries
from tau3mu.xrootd import XRootDOpenError, configure_xrootd_client, open_root

_REASON = xrootd_unavailable_reason()
pytestmark = [
    pytest.mark.xrootd,
    pytest.mark.skipif(_REASON is not None, reason=f"no real xrootd: {_REASON}"),
]

ARRAYS = {
    "x": np.linspace(0.0, 1.0, 1000),
    "n": np.arange(1000, dtype=np.int32),
    "w": np.full(1000, 0.5, dtype=np.float32),
}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    for name in ("a.root", "b.root"):
        with uproot.recreate(folder / name) as f:
            f.mktree("Events", {k: v.dtype for k, v in ARRAYS.items()})
            f["Events"].extend(ARRAYS)
    return folder


@pytest.fixture(scope="module")
def server(export):
    with xrootd_server(export) as s:
        yield s


def _check(tree) -> None:
    got = tree.arrays(list(ARRAYS), library="np")
    for key, value in ARRAYS.items():
        np.testing.assert_array_equal(got[key], value)
        assert got[key].dtype == value.dtype


def test_server_is_real_and_local(server, export):
    assert server.pid is not None
    assert server.url(export / "a.root") == f"root://localhost:{server.port}/{export / 'a.root'}"
    assert server.url("a.root").startswith(f"root://localhost:{server.port}//")
    assert port_open(server.port)


@pytest.mark.parametrize("handler", ["xrootd", "fsspec"])
def test_uproot_reads_over_root_url(server, export, handler):
    url = server.url(export / "a.root")
    with open_root(url, handler=handler, timeout=10) as f:
        _check(f["Events"])
    # uproot's default source (fsspec-xrootd) too, without our helper
    with uproot.open(url) as f:
        _check(f["Events"])


def test_datasets_over_root(server, export, tmp_path):
    (ds,) = datasets_from_paths([f"{server.url_prefix}{export}/*.root"])
    assert ds.files == [server.url(export / "a.root"), server.url(export / "b.root")]
    assert to_fileset([ds])["files"]["files"] == dict.fromkeys(
        ds.files, "Events"
    )  # tree detected remotely
    config = tmp_path / "input.json"
    config.write_text(
        f'{{"d": {{"rootpath": "{export}/", "files": "a.root b.root", "treename": "Events"}}}}'
    )
    (d,) = load_datasets(config, prefix=f"root://localhost:{server.port}/")
    assert d.files == ds.files
    with open_root(d.files[1]) as f:
        _check(f["Events"])


def test_missing_remote_file_fails_at_once(server, export):
    tic = time.monotonic()
    with pytest.raises(OSError, match="no such file") as err:
        open_root(server.url(export / "missing.root"), attempts=5, base_delay=1.0)
    assert not isinstance(err.value, XRootDOpenError)  # not retried
    assert time.monotonic() - tic < 5


@pytest.fixture
def restartable(export):
    """A server of its own (these tests stop it); the XRootD client gives up on a refused
    connection after ~1 s, so that our retries, not the client's, bridge the outage."""
    configure_xrootd_client(connection_window=1, connection_retry=1)
    try:
        with xrootd_server(export) as s:
            yield s
    finally:
        configure_xrootd_client()


def test_retry_survives_a_restart(restartable, export, caplog):
    url = restartable.url(export / "b.root")
    with open_root(url) as f:
        _check(f["Events"])
    restartable.stop()
    assert restartable.pid is None
    assert not port_open(restartable.port)

    def bring_back():
        time.sleep(3.0)
        restartable.start()

    thread = threading.Thread(target=bring_back)
    thread.start()
    try:
        with (
            caplog.at_level(logging.WARNING, logger="tau3mu.retries"),
            open_root(url, attempts=6, base_delay=0.5, timeout=5) as f,
        ):
            _check(f["Events"])
    finally:
        thread.join()
    assert restartable.pid is not None
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert retries, "the first attempt(s) should have failed while the server was down"
    assert url in retries[0].getMessage()


def test_down_server_gives_a_clear_error(restartable, export, caplog):
    url = restartable.url(export / "a.root")
    restartable.stop()
    tic = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="tau3mu.retries"),
        pytest.raises(XRootDOpenError) as err,
    ):
        open_root(url, attempts=3, base_delay=0.2, timeout=3)
    message = str(err.value)
    assert url in message
    assert "failed 3 times" in message
    assert "last error" in message
    assert time.monotonic() - tic < 60
    assert sum("retrying in" in r.getMessage() for r in caplog.records) == 2


def test_backoff_delays_double_and_cap():
    delays: list[float] = []
    calls = iter([TimeoutError("t1"), OSError("o2"), OSError("o3"), OSError("o4")])

    def flaky() -> str:
        err = next(calls, None)
        if err is not None:
            raise err
        return "ok"

    assert (
        with_retries(
            flaky, what="x", attempts=5, base_delay=1.0, max_delay=3.0, sleep=delays.append
        )
        == "ok"
    )
    assert delays == [1.0, 2.0, 3.0, 3.0]
    with pytest.raises(KeyError):  # not an I/O error: raised at once
        with_retries(lambda: {}["k"], what="x", sleep=delays.append)


def test_input_json_patterns_are_listed_on_the_server(tmp_path):
    """Run 3's parking streams as the CMS group lists them: globs in rootpath and files,
    expanded by the XRootD server; the count is said, an empty match is an error."""
    import json

    from tau3mu.datasets import DatasetError, input_notes

    export = tmp_path / "store"
    expected = []
    for stream in (0, 1):
        folder = (
            export
            / f"ParkingDoubleMuonLowMass{stream}"
            / f"SkimDsPhiPi_2024eraC_stream{stream}_Mini_v4"
            / "240501_120000"
        )
        for block in ("0000", "0001"):
            (folder / block).mkdir(parents=True)
            for i in (1, 2):
                path = folder / block / f"dsphipi_output_Data_{i}.root"
                with uproot.recreate(path) as f:
                    f["Events"] = {"x": np.arange(3)}
                expected.append(path)
            (folder / block / "crab.log").write_text("not a root file")
    pattern = "ParkingDoubleMuonLowMass*/SkimDsPhiPi_2024eraC_stream*_Mini_v4/*/00*/"
    datasets = tmp_path / "input.json"
    datasets.write_text(
        json.dumps(
            {
                "2024C": {
                    "rootpath": pattern,
                    "files": "dsphipi_output_Data_*.root",
                    "treename": "Events",
                    "era": "2024C",
                },
                "none": {"rootpath": pattern, "files": "nothing_*.root", "treename": "Events"},
            }
        )
    )
    with xrootd_server(export) as server:
        prefix = server.url(export) + "/"
        (ds,) = load_datasets(datasets, names=["2024C"], prefix=prefix)
        assert ds.files == sorted(server.url(p) for p in expected)
        assert input_notes([ds]) == [
            f"dataset '2024C': 8 file(s) found by {prefix}{pattern}dsphipi_output_Data_*.root (8)"
        ]
        with pytest.raises(DatasetError, match=r"dataset 'none': the pattern .* matches no file"):
            load_datasets(datasets, names=["none"], prefix=prefix)


def test_a_remote_file_shorter_than_its_header_says_is_truncated(server, export):
    """The inspection reads a remote tree lazily too, so it asks the server for the file's
    size and compares it with the header's end, as for a local file."""
    from tau3mu.filecheck import FileRules, file_verdict

    data = (export / "a.root").read_bytes()
    (export / "cut.root").write_bytes(data[:-1])
    cut = file_verdict(server.url(export / "cut.root"), "Events", FileRules(None, "2017"))
    assert (
        cut.reason
        == f"truncated (the file has {len(data) - 1} bytes, its header records {len(data)})"
    )
    whole = file_verdict(server.url(export / "a.root"), "Events", FileRules(None, "2017"))
    assert not (whole.reason or "").startswith("truncated")
