"""Datasets: the input.json format, its mistakes, paths and globs, coffea filesets."""

from __future__ import annotations

import json

import pytest

from tau3mu.datasets import (
    Dataset,
    DatasetError,
    datasets_from_paths,
    input_notes,
    load_datasets,
    to_fileset,
)
from tau3mu.xrootd import is_remote, is_xrootd, join_url

GOOD = {
    "DoubleMuonLowMass_2017B": {
        "rootpath": "/eos/user/t/tau3mu/2017B/",
        "files": "a.root  b.root\nc.root",
        "treename": "Tree3Mu/ntuple",
        "era": "2017",
        "lumi": 4.8,
        "type": "data",
    },
    "DsPhiPi_MC": {
        "rootpath": "root://eoscms.cern.ch//eos/cms/mc",
        "files": "m.root",
        "treename": "Events",
        "era": 2022,
        "type": "mc",
        "metadata": {"xsec": 1.5},
    },
}


def _write(tmp_path, content) -> str:
    path = tmp_path / "input.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_reads_the_original_format(tmp_path):
    data, mc = load_datasets(_write(tmp_path, GOOD))
    assert data == Dataset(
        name="DoubleMuonLowMass_2017B",
        files=[f"/eos/user/t/tau3mu/2017B/{f}" for f in ("a.root", "b.root", "c.root")],
        treename="Tree3Mu/ntuple",
        era="2017",
        lumi=4.8,
        type="data",
    )
    assert not data.is_mc
    assert mc.is_mc
    assert mc.era == "2022"
    assert mc.lumi is None
    assert mc.files == ["root://eoscms.cern.ch//eos/cms/mc/m.root"]
    assert mc.metadata == {"xsec": 1.5}


def test_prefix_goes_before_local_rootpaths_only(tmp_path):
    data, mc = load_datasets(_write(tmp_path, GOOD), prefix="root://eosuser.cern.ch/")
    assert data.files[0] == "root://eosuser.cern.ch//eos/user/t/tau3mu/2017B/a.root"
    assert mc.files == ["root://eoscms.cern.ch//eos/cms/mc/m.root"]


def test_selection_keeps_the_requested_order(tmp_path):
    names = [
        d.name
        for d in load_datasets(
            _write(tmp_path, GOOD), names=["DsPhiPi_MC", "DoubleMuonLowMass_2017B"]
        )
    ]
    assert names == ["DsPhiPi_MC", "DoubleMuonLowMass_2017B"]


def test_unknown_dataset_lists_known_ones_and_suggests(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_datasets(_write(tmp_path, GOOD), names=["DoubleMuonLowMass_2017C"])
    message = str(err.value)
    assert "input.json" in message
    assert "did you mean 'DoubleMuonLowMass_2017B'?" in message
    assert "DsPhiPi_MC" in message


def _one(**spec):
    return {"d": {"rootpath": "/x/", "files": "a.root", "treename": "Events", **spec}}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            {"d": {"rootpath": "/x/", "flies": "a.root", "treename": "Events"}},
            [
                "dataset 'd'",
                "missing key(s) ['files']",
                "'flies' is given: a misspelling of 'files'?",
            ],
        ),
        (
            {"d": {"rootpath": "/x/", "treename": "Events"}},
            ["dataset 'd'", "missing key(s) ['files']"],
        ),
        (_one(files=""), ["'files' is empty"]),
        (_one(files=3), ["'files' must be a string", "not int"]),
        (_one(rootpath=None), ["'rootpath' must be a string, not null"]),
        (_one(lumi="4.8"), ["'lumi' must be a non-negative number"]),
        (_one(lumi=True), ["'lumi'"]),
        (_one(type="MC"), ["'type' must be one of", "did you mean 'mc'?"]),
        (_one(era=[2017]), ["'era' must be a string"]),
        (_one(files="a.root a.root"), ["listed twice", "a.root"]),
        (_one(treename=" "), ["'treename' is empty"]),
        ({"d": ["a.root"]}, ["dataset 'd'", "expected an object"]),
        ([], ["expected a non-empty object of datasets"]),
        (
            '{"d": {"rootpath": "/x/",\n "files": "a.root",, "treename": "Events"}}',
            ["not valid JSON", "line 2, column 20", '"files": "a.root",,'],
        ),
        (
            '{"d": {"rootpath": "/x/", "files": "a.root", "treename": "Events"}, "d": {}}',
            ["'d' appears twice"],
        ),
    ],
)
def test_mistakes_are_named(tmp_path, content, words):
    with pytest.raises(DatasetError) as err:
        load_datasets(_write(tmp_path, content))
    message = str(err.value)
    assert "input.json" in message or "datasets" in message
    for word in words:
        assert word in message


def test_missing_datasets_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nope\.json: cannot read"):
        load_datasets(tmp_path / "nope.json")


def test_paths_globs_folders_and_urls(tmp_path):
    for name in ("b.root", "a.root", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.root").write_bytes(b"")
    (ds,) = datasets_from_paths(
        [
            str(tmp_path / "*.root"),
            str(tmp_path / "sub"),
            "root://host//eos/x.root",
        ]
    )
    assert ds.name == "files"
    assert ds.treename is None
    assert ds.files == [
        str(tmp_path / "a.root"),
        str(tmp_path / "b.root"),
        str(tmp_path / "sub" / "d.root"),
        "root://host//eos/x.root",
    ]
    # a plain path that does not exist is kept for the inspection to report
    (missing,) = datasets_from_paths([str(tmp_path / "missing.root")], treename="Events", name="x")
    assert missing.files == [str(tmp_path / "missing.root")]
    with pytest.raises(DatasetError, match="no file matches"):
        datasets_from_paths([str(tmp_path / "*.nothing")])
    # a file that a pattern matches too is refused, named, not dropped in silence
    with pytest.raises(DatasetError, match=r"a\.root' is given twice \(by '.*\*\.root' and by"):
        datasets_from_paths([str(tmp_path / "*.root"), str(tmp_path / "a.root")])
    with pytest.raises(DatasetError, match=r"a\.root' is given twice \(by '.*sub/\.\./a"):
        datasets_from_paths([str(tmp_path / "a.root"), str(tmp_path / "sub" / ".." / "a.root")])
    with pytest.raises(DatasetError, match=r"x\.root' is given twice \(by 'root:"):
        datasets_from_paths(["root://host//eos/x.root", "root://host//eos/x.root"])
    with pytest.raises(DatasetError, match=r"without \.root files"):
        datasets_from_paths([str(_empty(tmp_path))])


def _empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_to_fileset_form():
    d = Dataset(
        name="d",
        files=["/a.root", "/b.root"],
        treename="Events",
        era="2018",
        lumi=1.0,
        type="mc",
        metadata={"xsec": 2.0},
    )
    assert to_fileset([d]) == {
        "d": {
            "files": {"/a.root": "Events", "/b.root": "Events"},
            "metadata": {"type": "mc", "era": "2018", "lumi": 1.0, "is_mc": True, "xsec": 2.0},
        }
    }
    no_tree = Dataset(name="e", files=["/a.root"], treename=None)
    assert to_fileset([no_tree], default_tree="Tree3Mu/ntuple")["e"]["files"] == {
        "/a.root": "Tree3Mu/ntuple"
    }


def test_tree_detection(run3_files, tmp_path):
    (ds,) = datasets_from_paths([str(tmp_path / "missing.root"), *run3_files])
    fileset = to_fileset([ds])  # the first file is missing: the next one decides
    assert set(fileset["files"]["files"].values()) == {"Events"}
    (bad,) = datasets_from_paths([str(tmp_path / "missing.root")])
    with pytest.raises(DatasetError, match="cannot detect the tree"):
        to_fileset([bad])


@pytest.mark.parametrize(
    ("base", "path", "joined"),
    [
        ("root://eosuser.cern.ch/", "/eos/user/a.root", "root://eosuser.cern.ch//eos/user/a.root"),
        ("root://host:1094//eos/dir", "a.root", "root://host:1094//eos/dir/a.root"),
        ("root://host//eos/dir/", "a.root", "root://host//eos/dir/a.root"),
        ("root://host//", "a.root", "root://host//a.root"),
        ("root://host//eos/", "root://other//b.root", "root://other//b.root"),
        ("/data/", "a.root", "/data/a.root"),
        ("/mnt/eos", "/eos/a.root", "/mnt/eos/eos/a.root"),
        ("", "a.root", "a.root"),
    ],
)
def test_join_url(base, path, joined):
    assert join_url(base, path) == joined


def test_is_remote():
    assert is_remote("root://h//a.root")
    assert is_xrootd("root://h//a.root")
    assert is_xrootd("xroots://h//a.root")
    assert is_remote("https://h/a.root")
    assert not is_xrootd("https://h/a.root")
    assert not is_remote("/a.root")
    assert not is_remote("file:///a.root")


# -- the original input.json's keys, its rootpaths, patterns, one file once ----------------
def test_keys_tau3mu_does_not_use_are_metadata_named_once(tmp_path):
    content = {name: {**_one(skim="dsphipi")["d"], "era": f"2017{name}"} for name in ("B", "C")}
    content["C"]["comment"] = "reprocessed"
    content["C"]["trenname"] = "typo"
    datasets = load_datasets(_write(tmp_path, content))
    assert datasets[0].metadata == {"skim": "dsphipi"}
    assert datasets[1].metadata == {"skim": "dsphipi", "comment": "reprocessed", "trenname": "typo"}
    assert to_fileset(datasets)["C"]["metadata"]["comment"] == "reprocessed"
    (line,) = input_notes(datasets)
    assert "'skim'" in line
    assert "'comment'" in line
    assert "'trenname' (did you mean 'treename'?)" in line
    assert input_notes(load_datasets(_write(tmp_path, _one()))) == []


NOTEBOOK_PREFIX = "root://eosuser.cern.ch//eos/user/f/fsimone/lustre/"


@pytest.mark.parametrize(
    ("prefix", "rootpath", "folder"),
    [
        # the original input.json: 2017B-D without a leading slash, 2017E-F with one
        (
            NOTEBOOK_PREFIX,
            "Skim_B/0000/",
            "root://eosuser.cern.ch//eos/user/f/fsimone/lustre/Skim_B/0000",
        ),
        (
            NOTEBOOK_PREFIX,
            "/Skim_E/0000/",
            "root://eosuser.cern.ch//eos/user/f/fsimone/lustre/Skim_E/0000",
        ),
        (
            NOTEBOOK_PREFIX,
            "/Skim_E/0000",
            "root://eosuser.cern.ch//eos/user/f/fsimone/lustre/Skim_E/0000",
        ),
        (
            NOTEBOOK_PREFIX.rstrip("/"),
            "Skim_B",
            "root://eosuser.cern.ch//eos/user/f/fsimone/lustre/Skim_B",
        ),
        (
            "root://eosuser.cern.ch/",
            "/eos/user/x/2017B/",
            "root://eosuser.cern.ch//eos/user/x/2017B",
        ),
        ("root://host:1094", "eos/x", "root://host:1094//eos/x"),
        ("https://host/data/", "/x/", "https://host/data/x"),
        ("/mnt/lustre/", "/Skim_E/0000/", "/mnt/lustre/Skim_E/0000"),
        ("/mnt/lustre", "Skim_B/0000/", "/mnt/lustre/Skim_B/0000"),
        (NOTEBOOK_PREFIX, "root://other//eos/x/", "root://other//eos/x/"),
        (None, "/eos/x/", "/eos/x/"),
    ],
)
def test_rootpath_joins_the_prefix_as_the_notebook_did(prefix, rootpath, folder):
    from tau3mu.datasets import join_rootpath

    assert join_rootpath(prefix, rootpath) == folder


def test_original_notebook_file_urls(tmp_path):
    content = {
        "2017E": {"rootpath": "/Skim_E/0000/", "files": "Tree_PhiPi_1.root", "treename": "T"},
        "2017B": {"rootpath": "Skim_B/0000/", "files": "Tree_PhiPi_1.root", "treename": "T"},
    }
    e, b = load_datasets(_write(tmp_path, content), prefix=NOTEBOOK_PREFIX)
    assert e.files == [NOTEBOOK_PREFIX + "Skim_E/0000/Tree_PhiPi_1.root"]
    assert b.files == [NOTEBOOK_PREFIX + "Skim_B/0000/Tree_PhiPi_1.root"]


def test_files_and_rootpath_may_be_patterns(tmp_path):
    for stream in (0, 1):
        for job in ("240101_1", "240102_2"):
            folder = tmp_path / f"Parking{stream}" / "Skim" / job / "0000"
            folder.mkdir(parents=True)
            for i in (1, 2):
                (folder / f"out_{i}.root").write_bytes(b"")
            (folder / "log.txt").write_bytes(b"")
    content = {
        "streams": {
            "rootpath": "Parking*/Skim/*/00*/",
            "files": "out_*.root",
            "treename": "Events",
        },
        "one": {"rootpath": "Parking0/Skim", "files": "*/0000/out_1.root", "treename": "Events"},
    }
    streams, one = load_datasets(_write(tmp_path, content), prefix=str(tmp_path))
    assert len(streams.files) == 8
    assert streams.files == sorted(streams.files)
    assert all(f.endswith(".root") for f in streams.files)
    assert len(one.files) == 2
    notes = input_notes([streams, one])
    assert notes == [
        f"dataset 'streams': 8 file(s) found by {tmp_path}/Parking*/Skim/*/00*/out_*.root (8)",
        f"dataset 'one': 2 file(s) found by {tmp_path}/Parking0/Skim/*/0000/out_1.root (2)",
    ]
    nothing = {"x": {"rootpath": "Parking*/Skim/*/", "files": "nope_*.root", "treename": "Events"}}
    with pytest.raises(
        DatasetError, match=r"dataset 'x': the pattern .*nope_\*\.root' matches no file"
    ):
        load_datasets(_write(tmp_path, nothing), prefix=str(tmp_path))


def test_one_file_under_two_names_is_refused(tmp_path):
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.root").write_bytes(b"")
    (folder / "link.root").symlink_to(folder / "a.root")
    for files, names in (
        ("a.root link.root", ["'", "a.root' and '", "link.root' are the same file"]),
        ("a.root sub/../a.root", ["a.root' and '", "sub/../a.root' are the same file"]),
        ("a.root a*.root", ["a.root' listed twice (its patterns overlap)"]),
    ):
        content = {"d": {"rootpath": str(folder), "files": files, "treename": "Events"}}
        with pytest.raises(DatasetError) as err:
            load_datasets(_write(tmp_path, content))
        for name in names:
            assert name in str(err.value)
