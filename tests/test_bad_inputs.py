"""Bad input, as a hostile but fair user gives it: exit code 2 and one line naming the
option or the file, before any work where that can be known; odd names that are fine
work end to end. ``docs/bad-inputs.md`` lists the cases."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
import subprocess
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import uproot

from tau3mu.cli import main
from tau3mu.config import SelectionConfig
from tau3mu.errors import OptionError, OutputError, Tau3MuError
from tau3mu.synth import simulate
from tau3mu.synth.run3 import write_run3
from tau3mu.validation import (
    check_output_folder,
    load_muon_sf,
    selection_from_dict,
)

EVENTS = 2000
#: the era of the Run 3 files written here (the period follows from it)
ERA = "2022"


# -- files -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return write_run3(tmp_path_factory.mktemp("good") / "good.root", simulate(31, 0, EVENTS))


@pytest.fixture(scope="module")
def no_trigger(tmp_path_factory) -> Path:
    """A readable file in which no event fired a trigger: it selects nothing."""
    events = simulate(32, 0, 500)
    for fired in [*events.hlt.values(), *events.trigger3.values()]:
        fired[:] = False
    return write_run3(tmp_path_factory.mktemp("none") / "none.root", events)


def datasets_json(path: Path, datasets: dict[str, Path | dict], **common) -> str:
    """A datasets file: name -> file (or a full spec)."""
    content = {}
    for name, value in datasets.items():
        if isinstance(value, dict):
            content[name] = value
        else:
            content[name] = {
                "rootpath": str(value.parent) + "/",
                "files": value.name,
                "treename": "Events",
                "era": ERA,
                **common,
            }
    path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return str(path)


def refused(argv: list[str], capsys) -> str:
    """Run ``tau3mu ARGV``: it must exit with 2 and one line on stderr, no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tau3mu {argv[0]}: ")
    return lines[0]


@pytest.fixture
def input_json(tmp_path, good) -> str:
    return datasets_json(tmp_path / "input.json", {"d": good})


# -- --selection, through the command, whatever the shape of SelectionConfig -------------
def selection_fields(cls: type = SelectionConfig, prefix: str = "") -> dict[str, typing.Any]:
    """Every setting of ``cls`` as ``{"a.b": annotation}`` (nested dataclasses walked)."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out.update(selection_fields(kind, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = kind
    return out


def first_field(test) -> str:
    return next(path for path, kind in selection_fields().items() if test(path, kind))


def nested(path: str, value) -> dict:
    """``{"a": {"b": value}}`` for ``"a.b"``."""
    *parents, last = path.split(".")
    out = {last: value}
    for parent in reversed(parents):
        out = {parent: out}
    return out


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _is_float(path, kind) -> bool:
    return kind is float and _leaf(path).startswith("min_")


def _is_strings(path, kind) -> bool:
    return typing.get_origin(kind) is tuple and typing.get_args(kind) == (str, ...)


def _is_window(path, kind) -> bool:
    return _leaf(path).endswith("_window")


def _misspelt(path: str) -> str:
    *parents, last = path.split(".")
    i = len(last) - 3
    return ".".join([*parents, last[:i] + last[i + 1] + last[i] + last[i + 2 :]])


SELECTION_CASES = {
    "string for a number": (
        lambda: nested(first_field(_is_float), "1"),
        lambda: f'{first_field(_is_float)}: must be a number, not the string "1"',
    ),
    "bool for a number": (
        lambda: nested(first_field(_is_float), True),
        lambda: f"{first_field(_is_float)}: must be a number, not true",
    ),
    "negative threshold": (
        lambda: nested(first_field(_is_float), -1),
        lambda: f"{first_field(_is_float)}: must not be negative",
    ),
    "NaN": (
        lambda: nested(first_field(_is_float), float("nan")),
        lambda: f"{first_field(_is_float)}: must be a finite number",
    ),
    "bare string for a list": (
        lambda: nested(first_field(_is_strings), "L1_DoubleMu"),
        lambda: f'{first_field(_is_strings)}: must be a list such as ["L1_DoubleMu"]',
    ),
    "scalar window": (
        lambda: nested(first_field(_is_window), 1.8),
        lambda: f"{first_field(_is_window)}: must be [low, high], not 1.8",
    ),
    "inverted window": (
        lambda: nested(first_field(_is_window), [2.0, 1.6]),
        lambda: f"{first_field(_is_window)}: [2.0, 1.6] is not a window",
    ),
    "three-value window": (
        lambda: nested(first_field(_is_window), [1, 2, 3]),
        lambda: f"{first_field(_is_window)}: must be [low, high], not 3 value(s)",
    ),
    "zero bins": (
        lambda: {"mass_axis": {"bins": 0}},
        lambda: "mass_axis.bins: must be between 1 and",
    ),
    "fractional bins": (
        lambda: {"mass_axis": {"bins": 6.5}},
        lambda: "mass_axis.bins: must be a whole number, not 6.5",
    ),
    "empty axis": (
        lambda: {"mass_axis": {"start": 2.1, "stop": 1.7}},
        lambda: "mass_axis.start 2.1 is not below mass_axis.stop 1.7",
    ),
    "misspelt key": (
        lambda: nested(_misspelt(first_field(_is_float)), 1.0),
        lambda: (
            f"{_misspelt(first_field(_is_float))}: unknown setting "
            f"(did you mean {_leaf(first_field(_is_float))!r}?)"
        ),
    ),
    "object for a setting group": (
        lambda: {"mass_axis": 62},
        lambda: "mass_axis: must be an object of settings, not 62",
    ),
}


@pytest.mark.parametrize("case", SELECTION_CASES)
def test_selection_mistakes_are_one_line_before_any_work(case, input_json, tmp_path, capsys):
    content, words = SELECTION_CASES[case]
    cuts = tmp_path / "cuts.json"
    cuts.write_text(json.dumps(content()))
    out = tmp_path / "out"
    line = refused(["run", input_json, "--out", str(out), "--selection", str(cuts)], capsys)
    assert f"--selection {cuts}: {words()}" in line
    assert not out.exists()  # no work started: not even the output folder


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"mass_axis": {"bins": 62,}}', "not valid JSON: Expecting property name"),
        ("[1, 2]", "expected a JSON object of settings, not a list"),
        ('{"mass_axis": {}, "mass_axis": {}}', "'mass_axis' appears twice"),
    ],
)
def test_selection_file_that_is_not_a_settings_object(text, words, input_json, tmp_path, capsys):
    cuts = tmp_path / "cuts.json"
    cuts.write_text(text)
    line = refused(
        ["run", input_json, "--out", str(tmp_path / "o"), "--selection", str(cuts)], capsys
    )
    assert f"--selection {cuts}: {words}" in line


def test_missing_selection_file(input_json, tmp_path, capsys):
    line = refused(
        ["run", input_json, "--out", str(tmp_path / "o"), "--selection", str(tmp_path / "no.json")],
        capsys,
    )
    assert "cannot be read (No such file or directory)" in line


def test_selection_defaults_round_trip_through_json():
    config = SelectionConfig()
    data = json.loads(json.dumps(config.to_dict()))
    assert selection_from_dict(data, SelectionConfig, "x") == config


# -- the check is generic: a nested dataclass of the test's own --------------------------
@dataclass(frozen=True)
class Axis:
    bins: int = 10
    start: float = 0.0
    stop: float = 1.0


@dataclass(frozen=True)
class PeriodCuts:
    period: str = field(default="p1", init=False)
    paths: tuple[str, ...] = ("HLT_A", "HLT_B")
    optional_paths: tuple[str, ...] = ()
    mass_window: tuple[float, float] = (1.0, 2.0)
    min_tracks: float = 1.0
    track_pt: float = 1.2
    max_abseta: float = 2.4
    muon_mass: float = 0.1
    year: str | None = None
    side: Literal["left", "right"] = "left"


@dataclass(frozen=True)
class Nested:
    p1: PeriodCuts = field(default_factory=PeriodCuts)
    axis: Axis = field(default_factory=Axis)
    era: str | None = None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"p1": {"min_trakcs": 1}}, "p1.min_trakcs: unknown setting (did you mean 'min_tracks'?)"),
        ({"axes": {}}, "axes: unknown setting (did you mean 'axis'?)"),
        ({"p1": {"min_tracks": "1"}}, 'p1.min_tracks: must be a number, not the string "1"'),
        ({"p1": {"track_pt": -0.5}}, "p1.track_pt: must not be negative"),
        ({"p1": {"max_abseta": -1}}, "p1.max_abseta: must not be negative"),
        ({"p1": {"muon_mass": 0}}, "p1.muon_mass: must be positive"),
        ({"p1": {"paths": "HLT_A"}}, 'p1.paths: must be a list such as ["HLT_A"]'),
        ({"p1": {"paths": []}}, "p1.paths: must not be empty"),
        ({"p1": {"paths": ["HLT_A", 3]}}, "p1.paths[1]: must be a string, not 3"),
        ({"p1": {"mass_window": [2, 1]}}, "p1.mass_window: [2.0, 1.0] is not a window"),
        ({"p1": {"mass_window": [1, float("inf")]}}, "p1.mass_window[1]: must be a finite"),
        ({"p1": {"year": 2017}}, "p1.year: must be a string, not 2017"),
        ({"p1": {"side": "up"}}, "p1.side: must be one of ['left', 'right'], not 'up'"),
        ({"p1": {"period": "p2"}}, "p1.period: is 'p1' and cannot be set"),
        ({"axis": {"bins": -3}}, "axis.bins: must be between 1 and"),
        ({"axis": {"stop": -1}}, "axis.start 0.0 is not below axis.stop -1"),
        ({"era": ["2017"]}, "era: must be a string, not a list"),
    ],
)
def test_generic_check_of_a_nested_dataclass(data, words):
    with pytest.raises(OptionError) as info:
        selection_from_dict(data, Nested, "--selection cuts.json")
    assert str(info.value) == f"--selection cuts.json: {words}" or words in str(info.value)
    assert "\n" not in str(info.value)


def test_generic_check_builds_the_nested_dataclass():
    data = {
        "p1": {"paths": ["X"], "mass_window": [1, 3], "min_tracks": 2, "year": None},
        "p1_unused": None,
    }
    with pytest.raises(OptionError, match="p1_unused: unknown setting"):
        selection_from_dict(data, Nested, "w")
    del data["p1_unused"]
    data["p1"]["period"] = "p1"  # restating a fixed value is allowed
    built = selection_from_dict(data, Nested, "w")
    assert built == Nested(p1=PeriodCuts(paths=("X",), mass_window=(1.0, 3.0), min_tracks=2.0))
    assert isinstance(built.p1.min_tracks, float)
    assert selection_from_dict({}, Nested, "w") == Nested()


# -- numeric options and output folders --------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value", "least"),
    [
        ("--chunksize", "0", 1),
        ("--chunksize", "-1", 1),
        ("--workers", "0", 1),
        ("--workers", "-1", 1),
        ("--retries", "-1", 0),
    ],
)
def test_numeric_options_out_of_range(option, value, least, input_json, tmp_path, capsys):
    out = tmp_path / "out"
    line = refused(["run", input_json, "--out", str(out), option, value], capsys)
    assert line == f"tau3mu run: {option} {value}: must be at least {least}"
    assert not out.exists()


def test_out_that_is_a_file(input_json, tmp_path, capsys):
    afile = tmp_path / "results"
    afile.write_text("not a folder")
    line = refused(["run", input_json, "--out", str(afile)], capsys)
    assert line == f"tau3mu run: --out {afile}: is a file, not a folder"
    line = refused(["run", input_json, "--out", str(afile / "sub")], capsys)
    assert f"--out {afile / 'sub'}: is inside {afile}, which is a file" in line


def _unwritable() -> Path:
    """A folder in which nobody, root included, can create anything."""
    for candidate in (Path("/sys"), Path("/proc")):
        try:
            check_output_folder(candidate / "tau3mu-probe", "--out")
        except OutputError:
            return candidate
    pytest.skip("no folder here refuses new folders to this user")


@pytest.mark.parametrize("option", ["--out", "--checkpoint"])
def test_unwritable_output_folder_before_any_work(option, input_json, tmp_path, capsys):
    folder = _unwritable() / "tau3mu-results"
    args = ["run", input_json, "--out", str(tmp_path / "out")]
    args = [*args[:3], str(folder)] if option == "--out" else [*args, option, str(folder)]
    line = refused(args, capsys)
    assert f"{option} {folder}: cannot be created in {folder.parent}" in line
    assert not (tmp_path / "out").exists()


def test_checkpoint_that_cannot_be_written_mid_run_is_not_a_file_fault(good, tmp_path):
    """A checkpoint folder that refuses a chunk's file stops the run, blaming
    --checkpoint: never the input file, never a chunk skipped by --skip-bad-files."""
    from tau3mu.checkpoints import CheckpointError
    from tau3mu.execution import run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    folder = _unwritable() / "tau3mu-ckpt"
    fileset = {"d": {"files": {str(good): "Events"}}}
    with pytest.raises(CheckpointError) as info:
        run_runner(fileset, DsPhiPiProcessor(), skip_bad_files=True, checkpoint=str(folder))
    assert str(info.value).startswith(f"--checkpoint {folder}: cannot write ")
    assert str(good) not in str(info.value)


# -- --muon-sf ---------------------------------------------------------------------------
def correction(name: str, inputs: list[dict], content) -> dict:
    return {
        "name": name,
        "version": 1,
        "inputs": inputs,
        "output": {"name": "weight", "type": "real"},
        "data": content,
    }


def sf_document(
    name: str = "NUM_MediumID_DEN_TrackerMuons", keys=("nominal", "systup", "systdown")
):
    """A small schema-v2 file shaped like the Muon POG's: (abseta, pt, scale_factors)."""
    by_variation = {
        "nodetype": "category",
        "input": "scale_factors",
        "content": [{"key": k, "value": 1.0 + 0.01 * i} for i, k in enumerate(keys)],
    }
    binned = {
        "nodetype": "multibinning",
        "inputs": ["abseta", "pt"],
        "edges": [[0.0, 1.2, 2.4], [3.0, 10.0, 200.0]],
        "content": [by_variation] * 4,
        "flow": "error",
    }
    inputs = [
        {"name": "abseta", "type": "real"},
        {"name": "pt", "type": "real"},
        {"name": "scale_factors", "type": "string"},
    ]
    return {"schema_version": 2, "corrections": [correction(name, inputs, binned)]}


def test_a_good_muon_sf_file_passes(tmp_path):
    path = tmp_path / "sf.json"
    path.write_text(json.dumps(sf_document()))
    sf = load_muon_sf(path)
    assert float(sf.evaluate(np.array([0.5]), np.array([5.0]))[0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json", "not valid JSON"),
        (json.dumps({"corrections": []}), "not a correctionlib (schema v2) file"),
        (json.dumps(sf_document("Other")), "no correction 'NUM_MediumID_DEN_TrackerMuons'"),
        (
            json.dumps(sf_document(keys=("nominal",))),
            "'NUM_MediumID_DEN_TrackerMuons' cannot be evaluated as (abseta, pt, 'systup')",
        ),
    ],
    ids=["not-json", "not-correctionlib", "other-correction", "no-variations"],
)
def test_muon_sf_mistakes(content, words, input_json, tmp_path, capsys):
    path = tmp_path / "sf.json"
    path.write_text(content)
    out = tmp_path / "out"
    line = refused(["run", input_json, "--out", str(out), "--muon-sf", str(path)], capsys)
    assert f"--muon-sf {path}: {words}" in line
    assert not out.exists()


# -- datasets: numbers, names, the list of a misspelt one --------------------------------
@pytest.mark.parametrize("lumi", ["NaN", "Infinity", "-Infinity"])
def test_lumi_must_be_finite(lumi, good, tmp_path, capsys):
    path = tmp_path / "input.json"
    spec = {"rootpath": f"{good.parent}/", "files": good.name, "treename": "Events", "era": ERA}
    path.write_text(json.dumps({"d": spec})[:-2] + f', "lumi": {lumi}}}}}')
    line = refused(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    assert "'lumi' must be a non-negative number" in line


def test_names_that_share_a_file_name_are_refused(good, tmp_path, capsys):
    config = datasets_json(tmp_path / "input.json", {"A/B": good, "A_B": good})
    out = tmp_path / "out"
    line = refused(["run", config, "--out", str(out)], capsys)
    assert "datasets 'A/B' and 'A_B' would share the output name 'A_B'" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("names", "words"),
    [
        (["run2017", "Run2017"], "datasets 'run2017' and 'Run2017'"),
        (["d_sf_up"], "may not end in _sf_up or _sf_down"),
        ([" "], "a dataset has an empty name"),
        (["é" * 130], "too long for its figure's file name (273 bytes, at most 255)"),
    ],
)
def test_other_names_that_would_lose_outputs(names, words, good, tmp_path, capsys):
    config = datasets_json(tmp_path / "input.json", dict.fromkeys(names, good))
    assert words in refused(["run", config, "--out", str(tmp_path / "o")], capsys)


def test_misspelt_dataset_among_many_is_a_short_line(good, tmp_path, capsys):
    spec = {"rootpath": "/nowhere/", "files": "a.root", "treename": "Events"}
    names = [f"DoubleMuonLowMass_2017{chr(65 + i % 26)}_part{i:05d}" for i in range(20_000)]
    path = tmp_path / "input.json"
    path.write_text(json.dumps(dict.fromkeys(names, spec)))
    typo = "DoubleMuonLowMass_2017C_part0002"
    line = refused(["run", str(path), "--dataset", typo, "--out", str(tmp_path / "o")], capsys)
    assert len(line) < 600
    assert line.index("did you mean") < line.index("known datasets")
    assert "(20,000 in all)" in line


def test_broken_rerun_keeps_the_previous_report(good, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"events": 2000}\n')  # a complete run's marker
    broken = tmp_path / "input.json"
    broken.write_text('{"d": {"rootpath": "/x/", "files": "a.root",, "treename": "Events"}}')
    refused(["run", str(broken), "--out", str(out)], capsys)
    cuts = tmp_path / "cuts.json"
    cuts.write_text('{"mass_axis": {"bins": "62"}}')
    config = datasets_json(tmp_path / "good.json", {"d": good})
    refused(["run", config, "--out", str(out), "--selection", str(cuts)], capsys)
    assert (out / "report.json").read_text() == '{"events": 2000}\n'


# -- odd names that are fine, and a dataset that selects nothing -------------------------
@pytest.fixture(scope="module")
def odd_run(good, no_trigger, tmp_path_factory):
    """Datasets with a slash, spaces and non-ASCII names, one in a non-ASCII folder, and
    one that selects no event; simulation with scale factors among them."""
    base = tmp_path_factory.mktemp("odd")
    folder = base / "données ünï"
    folder.mkdir()
    shutil.copy(good, folder / "fichier_é.root")
    sf = base / "sf.json"
    sf.write_text(json.dumps(sf_document()))
    names = {
        "DoubleMu/2017 B": good,
        "Ωmega données": folder / "fichier_é.root",
        "nothing selected": no_trigger,
    }
    content = {}
    for i, (name, path) in enumerate(names.items()):
        kind = "mc" if i else "data"
        content[name] = {
            "rootpath": f"{path.parent}/",
            "files": path.name,
            "treename": "Events",
            "era": ERA,
            "type": kind,
            **({"lumi": 1.0, "xsec": 1.0, "ngen": 1000.0} if kind == "mc" else {}),
        }
    config = base / "ïnput.json"
    config.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    out = base / "sortie ö"
    argv = ["run", str(config), "--out", str(out), "--executor", "iterative", "--no-progress"]
    argv += ["--fit-engine", "iminuit", "--muon-sf", str(sf), "--chunksize", "700"]
    assert main(argv) == 0
    return out, list(names)


def test_odd_names_keep_every_output(odd_run):
    out, names = odd_run
    from tau3mu.outputs import safe_name

    with uproot.open(out / "histograms.root") as f:
        keys = {k.split(";")[0] for k in f.keys(cycle=False)}
        for name in names:
            assert f"h_mass_{safe_name(name)}" in keys
            assert f"h_mu_pt_{safe_name(name)}" in keys
        assert f"h_mass_{safe_name(names[1])}_sf_up" in keys  # simulation: variations
        assert f"h_mass_{safe_name(names[2])}_sf_down" in keys
    for name in names:
        assert (out / f"mass_fit_{safe_name(name)}.png").is_file()
    fit = json.loads((out / "fit.json").read_text())
    assert list(fit) == names
    report = json.loads((out / "report.json").read_text())
    assert list(report["snapshot"]["datasets"].values()) == names
    assert list(report["outputs"]["plots"]) == names
    cutflow = json.loads((out / "cutflow.json").read_text())
    assert list(cutflow) == names
    tree = uproot.open(out / "snapshot.root")["ntuple"]
    rows = np.bincount(tree["dataset"].array(library="np"), minlength=3)
    assert rows.tolist() == [report["snapshot"]["rows"][n] for n in names]
    assert rows[0] > 0
    assert rows[1] > 0


def test_dataset_that_selects_nothing_keeps_empty_histograms_and_says_why(odd_run):
    out, names = odd_run
    empty = names[2]
    cutflow = json.loads((out / "cutflow.json").read_text())[empty]
    assert cutflow["events"]["events"] == 500
    assert cutflow["best_candidate"]["events"] == 0
    with open(out / "histograms.pkl", "rb") as handle:
        hists = pickle.load(handle)
    for h in hists.values():
        assert empty in list(h.axes["dataset"])
        assert h[{"dataset": empty}].values().sum() == 0
    fit = json.loads((out / "fit.json").read_text())[empty]
    assert fit["result"] == "failed"
    assert "only 0 entries" in fit["reason"]
    report = json.loads((out / "report.json").read_text())
    assert report["snapshot"]["rows"][empty] == 0
    assert report["fit"][empty]["converged"] is False


def test_refit_of_odd_names(odd_run, tmp_path):
    out, names = odd_run
    assert (
        main(
            ["fit", str(out / "histograms.pkl"), "--out", str(tmp_path), "--fit-engine", "iminuit"]
        )
        == 1
    )
    assert list(json.loads((tmp_path / "fit.json").read_text())) == names


# -- tau3mu fit on files that are not histograms -----------------------------------------
@pytest.mark.parametrize("kind", ["text", "json", "root-without-histogram", "pickle-of-a-list"])
def test_fit_on_a_file_that_is_not_a_histogram(kind, good, tmp_path, capsys):
    path = tmp_path / f"input.{kind}"
    if kind == "text":
        path.write_text("hello\n")
    elif kind == "json":
        path.write_text('{"h_mass": [1, 2, 3]}')
    elif kind == "root-without-histogram":
        path = good
    else:
        path.write_bytes(pickle.dumps({"h_mass": [1, 2, 3]}))
    line = refused(["fit", str(path), "--out", str(tmp_path / "fit")], capsys)
    assert line.startswith(f"tau3mu fit: {path}: ")


def test_fit_of_an_unknown_dataset(odd_run, tmp_path, capsys):
    out, _ = odd_run
    line = refused(
        ["fit", str(out / "histograms.pkl"), "--dataset", "nope", "--out", str(tmp_path)], capsys
    )
    assert "--dataset: unknown dataset(s) 'nope'" in line


# -- the command as a process: one line, or the traceback on request ---------------------
def test_process_prints_one_line_and_traceback_only_with_v(input_json, tmp_path):
    argv = [sys.executable, "-m", "tau3mu.cli", "run", input_json, "--out", str(tmp_path / "o")]
    argv += ["--chunksize", "0"]
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2
    assert plain.stderr == "tau3mu run: --chunksize 0: must be at least 1\n"
    verbose = subprocess.run([*argv, "-v"], capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr
    assert verbose.stderr.endswith("tau3mu run: --chunksize 0: must be at least 1\n")


CONSOLE_ENTRY = """
import gc, sys
from tau3mu import cli
from tau3mu.collector import THRESHOLDS
sys.argv = ["tau3mu", "run", sys.argv[1], "--out", sys.argv[2], "--chunksize", "0"]
code = cli.console_main()
print(code, gc.get_freeze_count() > 0, gc.get_threshold() == THRESHOLDS)
"""


def test_console_entry_returns_the_exit_code_and_sets_the_collector(input_json, tmp_path):
    """The ``tau3mu`` script's entry point: main's exit code, the collector's thresholds,
    and every object left moved out of the collector's reach before the process exits."""
    argv = [sys.executable, "-c", CONSOLE_ENTRY, input_json, str(tmp_path / "o")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "True", "True"]
    assert done.stderr == "tau3mu run: --chunksize 0: must be at least 1\n"


def test_every_user_error_shares_one_base():
    from tau3mu.accounting import AccountingError
    from tau3mu.checkpoints import CheckpointError
    from tau3mu.chunks import ChunkError
    from tau3mu.cluster import ClusterError
    from tau3mu.credentials import ProxyError
    from tau3mu.datasets import DatasetError
    from tau3mu.inspection import InputFileError

    for cls in (ClusterError, ProxyError, DatasetError, InputFileError, ChunkError):
        assert issubclass(cls, Tau3MuError)
    assert issubclass(AccountingError, Tau3MuError)
    assert issubclass(CheckpointError, OutputError)


def test_output_that_cannot_be_written_after_the_run_names_out(input_json, tmp_path, capsys):
    """A folder that passed the check but refuses an output at the end (here a folder
    in the way of histograms.root) is --out's fault, one line, not a traceback."""
    out = tmp_path / "out"
    (out / "histograms.root").mkdir(parents=True)
    argv = ["run", input_json, "--out", str(out), "--executor", "iterative", "--no-fit"]
    line = refused([*argv, "--no-progress"], capsys)
    assert line.startswith(f"tau3mu run: --out {out}: cannot write histograms.root (")
    assert not (out / "report.json").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["demo", "--events", "2"], "--events 2: must be at least 8"),
        (["demo", "--lumi", "nan"], "--lumi nan: must be a positive number"),
        (["demo", "--workers", "0"], "--workers 0: must be at least 1"),
        (["generate", "--files", "0"], "--files 0: must be at least 1"),
        (["generate", "--events-per-file", "-5"], "--events-per-file -5: must be at least 1"),
        (["generate", "--lumi", "-1"], "--lumi -1.0: must be a positive number"),
    ],
)
def test_demo_and_generate_numbers(argv, words, tmp_path, capsys):
    out = tmp_path / "out"
    where = ["--out", str(out)] if argv[0] == "demo" else [str(out)]
    line = refused([argv[0], *where, *argv[1:]], capsys)
    assert line == f"tau3mu {argv[0]}: {words}"
    assert not out.exists()


@pytest.mark.parametrize("command", ["demo", "generate"])
def test_demo_and_generate_into_a_file(command, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    where = ["--out", str(afile)] if command == "demo" else [str(afile)]
    line = refused([command, *where], capsys)
    assert line.endswith(f"{afile}: is a file, not a folder")


def test_binary_datasets_file(good, tmp_path, capsys):
    path = tmp_path / "input.json"
    path.write_bytes(good.read_bytes()[:300])
    line = refused(["run", str(path), "--out", str(tmp_path / "o")], capsys)
    assert f"{path}: cannot read the datasets file ('utf-8' codec can't decode" in line


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--chunksize", "abc"], "tau3mu run: argument --chunksize: invalid int value: 'abc'"),
        (["--executor", "nope"], "tau3mu run: argument --executor: invalid choice: 'nope'"),
        (["--bogus"], "tau3mu: unrecognized arguments: --bogus"),
    ],
)
def test_argument_errors_are_one_line_too(extra, words, input_json, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", input_json, "--out", str(tmp_path / "o"), *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(words)
    assert err.endswith("--help lists the options)\n")


def test_unknown_era_in_the_selection():
    """Where tau3mu.eras exists, an era it does not know is refused by name."""
    pytest.importorskip("tau3mu.eras")
    with pytest.raises(OptionError, match=r"^w: era: era '1999'"):
        selection_from_dict({"era": "1999"}, SelectionConfig, "w")
