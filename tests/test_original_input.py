"""The original analysis's own ``input.json``, byte for byte, against a mirror of its tree.

``tests/inputs/bph_interactive_analysis_input.json`` (source in ``tests/inputs/README.md``)
lists 143 files of five 2017 datasets under the folders of the author's EOS space, three
rootpaths without a leading slash and two with one. The mirror holds a small Run 2 file
(written with ROOT) for each, all different, plus a decoy file in every folder that the
datasets file does not list. ``tau3mu run`` reads it with ``--prefix``, locally and over a
real XRootD server, as the notebook did with ``root://eosuser.cern.ch//eos/user/...``; each
dataset's cutflow must equal the processor's on that dataset's listed files alone.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tau3mu.cli import main

ORIGINAL = Path(__file__).parent / "inputs" / "bph_interactive_analysis_input.json"
#: events per file: enough for some to pass the selection, few enough for 2 cores
EVENTS_PER_FILE = 30
#: the run number of 2017 data (synthetic files of all five datasets share it)
RUN_2017 = 297050


def _has_root() -> bool:
    try:
        import ROOT  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _has_root(), reason="ROOT writes the Run 2 layout"),
]


def listed_files(mirror: Path) -> dict[str, list[Path]]:
    """Each dataset's files as the datasets file lists them, joined here with pathlib."""
    spec = json.loads(ORIGINAL.read_text())
    return {
        name: [mirror / d["rootpath"].strip("/") / f for f in d["files"].split()]
        for name, d in spec.items()
    }


def write_mirror(root: Path, events_per_file: int = EVENTS_PER_FILE) -> Path:
    """Write the original's folder tree under ``root``: one distinct small Run 2 file of
    ``events_per_file`` events per listed name, plus a decoy in every folder that the
    datasets file does not list. Returns ``root``. (Also used by
    ``benchmarks/bench_small_files.py``.)"""
    from tau3mu.synth import simulate, write_run2

    index = 0
    for files in listed_files(root).values():
        for path in [*files, files[0].with_name("Tree_PhiPi_999.root")]:  # + a decoy
            path.parent.mkdir(parents=True, exist_ok=True)
            events = simulate(7, index, events_per_file, run_number=RUN_2017)
            write_run2(path, events, seed=index)
            index += 1
    return root


@pytest.fixture(scope="module")
def mirror() -> Iterator[Path]:
    """The original's folder tree (:func:`write_mirror`).

    In a folder of its own under the system's temporary folder, not pytest's: pytest
    makes its base folder private (0700) when any session starts on the machine, which
    would lock the XRootD server's user out mid-test."""
    root = write_mirror(Path(tempfile.mkdtemp(prefix="tau3mu-lustre-")))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _run(prefix: str, out: Path, capsys) -> tuple[int, str]:
    code = main(
        [
            "run",
            str(ORIGINAL),
            "--prefix",
            prefix,
            "--out",
            str(out),
            "--executor",
            "iterative",
            "--no-fit",
            "--no-progress",
        ]
    )
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def expected(mirror) -> dict:
    """The processor on each dataset's listed files alone, one dataset at a time."""
    from tau3mu.execution import run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    cutflows = {}
    for name, files in listed_files(mirror).items():
        fileset = {
            name: {
                "files": {str(f): "Tree3Mu/ntuple" for f in files},
                "metadata": {"type": "data", "era": "2017"},
            }
        }
        cutflows[name] = run_runner(fileset, DsPhiPiProcessor(snapshot=False)).cutflow[name]
    return cutflows


def _check(out: Path, err: str, mirror: Path, expected: dict) -> None:
    cutflow = json.loads((out / "cutflow.json").read_text())
    report = json.loads((out / "report.json").read_text())
    listed = listed_files(mirror)
    assert list(cutflow) == ["2017B", "2017C", "2017D", "2017E", "2017F"]
    assert sum(len(files) for files in listed.values()) == 143
    for name, files in listed.items():
        assert cutflow[name] == expected[name], name
        assert cutflow[name]["events"]["events"] == EVENTS_PER_FILE * len(files)
        assert report["datasets"][name]["metadata"] == {"skim": "dsphipi"}
        assert len(report["datasets"][name]["files"]) == len(files)
    assert all(cutflow[name]["trigger_match"]["events"] > 0 for name in cutflow)
    notes = [line for line in err.splitlines() if "does not use" in line]
    assert notes == [
        "note: keys tau3mu does not use, kept as dataset metadata: 'skim' (in 5 dataset(s))"
    ]


def test_original_input_json_locally(mirror, expected, tmp_path, capsys):
    code, err = _run(f"{mirror}/", tmp_path, capsys)
    assert code == 0, err
    _check(tmp_path, err, mirror, expected)


@pytest.mark.xrootd
def test_original_input_json_over_xrootd(mirror, expected, tmp_path, capsys):
    """As the notebook: ``root://host//path/to/lustre/`` + rootpath (with or without ``/``)."""
    from services.xrootd import xrootd_server, xrootd_unavailable_reason

    reason = xrootd_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no real xrootd: {reason}")
    with xrootd_server(mirror) as server:
        prefix = f"{server.url_prefix}{mirror}/"
        assert prefix.startswith(f"root://localhost:{server.port}//")
        code, err = _run(prefix, tmp_path, capsys)
        assert code == 0, err
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["datasets"]["2017E"]["files"][0] == (
            f"{prefix}SkimPhiPi_UL2017_Run2017E_ModFilter_Mini_v2/210131_221822/0000/"
            "Tree_PhiPi_1-10.root"
        )
        _check(tmp_path, err, mirror, expected)
