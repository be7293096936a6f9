"""Datasets: the input.json format, its mistakes, paths and globs, coffea filesets."""

from __future__ import annotations

import json

import pytest

from tau3mu.datasets import Dataset, DatasetError, datasets_from_paths, load_datasets, to_fileset
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
            ["dataset 'd'", "'flies'", "did you mean 'files'?"],
        ),
        (_one(treenmae="Events"), ["did you mean 'treename'?"]),
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
            str(tmp_path / "a.root"),
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
