"""The output writers: strict JSON, file modes, dataset order, the one snapshot file."""

from __future__ import annotations

import json
import math
import os
import stat

import hist
import numpy as np
import pytest
import uproot

from tau3mu import outputs
from tau3mu.outputs import write_json


def strict_json(text: str):
    """Parse as a strict parser (JavaScript's JSON.parse) would: NaN/Infinity are errors."""

    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), None),
        (float("inf"), None),
        (-math.inf, None),
        (np.float64("nan"), None),
        (np.float32(1.5), 1.5),
        (np.array([np.nan, 2.0, np.inf]), [None, 2.0, None]),
        (
            {"params": {"n": {"error": np.nan, "value": 3}}},
            {"params": {"n": {"error": None, "value": 3}}},
        ),
        ((1, np.int64(2), [np.nan]), [1, 2, [None]]),
        (1e308, 1e308),
    ],
)
def test_json_is_strict(tmp_path, value, expected):
    path = write_json(tmp_path / "out.json", {"x": value})
    assert strict_json(path.read_text()) == {"x": expected}


def _output_in_order(names: list[str]):
    """An AnalysisOutput whose datasets were merged in the order ``names``."""
    import awkward as ak
    import hist

    from tau3mu.execution import AnalysisOutput

    h = hist.Hist(
        hist.axis.StrCategory([], name="dataset", label="Dataset", growth=True),
        hist.axis.StrCategory([], name="systematic", growth=True),
        hist.axis.Regular(4, 0, 4, name="mass"),
        storage=hist.storage.Weight(),
    )
    for i, name in enumerate(names):
        h.fill(dataset=name, systematic="nominal", mass=[i + 0.5] * (i + 1))
    return AnalysisOutput(
        cutflow={n: {"events": {"events": i, "candidates": i}} for i, n in enumerate(names)},
        hists={"h_mass": h},
        snapshot={n: ak.Array([{"run": i}]) for i, n in enumerate(names)},
        truth={n: {"ds": i} for i, n in enumerate(names)},
    )


@pytest.mark.parametrize(
    ("merged", "wanted"),
    [
        (["b", "a", "c"], ["a", "b", "c"]),
        (["c", "b", "a"], ["a", "b", "c"]),
        (["a", "b"], ["b", "a"]),
        (["a", "b"], ["a", "b"]),
        (["x", "a"], ["a"]),  # not in the input: kept, after the others
    ],
)
def test_in_input_order(merged, wanted):
    from tau3mu.outputs import in_input_order

    out = in_input_order(_output_in_order(merged), wanted)
    expected = [n for n in wanted if n in merged] + [n for n in merged if n not in wanted]
    assert list(out.cutflow) == list(out.snapshot) == list(out.truth) == expected
    h = out.hists["h_mass"]
    assert list(h.axes["dataset"]) == expected
    assert h.axes["dataset"].label == "Dataset"
    for name in merged:  # each dataset keeps its own contents
        i = merged.index(name)
        assert h[{"dataset": name, "systematic": "nominal"}].values()[i] == i + 1
        assert out.cutflow[name]["events"]["events"] == i
        assert out.snapshot[name]["run"].tolist() == [i]


@pytest.fixture
def umask(request):
    """Run the test under the umask given as its parameter."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o027], indirect=True)
def test_outputs_honour_the_umask(umask, tmp_path):
    """Atomic writes (mkstemp, 0600) give files the mode open() would: 0666 & ~umask."""
    import uproot

    from tau3mu.atomic import atomic_open, atomic_path, current_umask

    assert current_umask() == umask
    write_json(tmp_path / "a.json", {"a": 1})
    with atomic_open(tmp_path / "b.bin", "wb") as handle:
        handle.write(b"x")
    with atomic_path(tmp_path / "c.root") as tmp, uproot.recreate(tmp) as f:
        f["h"] = (np.ones(3), np.arange(4.0))
    for name in ("a.json", "b.bin", "c.root"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_snapshot_columns_fill_what_a_dataset_lacks():
    """One table from datasets with different columns: variations take the nominal weight,
    integers -1, floats NaN; an empty dataset has no rows but keeps its index."""
    import awkward as ak

    from tau3mu.outputs import snapshot_columns

    mc = ak.zip(
        {
            "run": np.array([1, 2], np.int64),
            "weight": np.array([0.9, 1.1]),
            "weight_sf_up": np.array([1.0, 1.2]),
            "truth": np.array([1, 0], np.int32),
        }
    )
    data = ak.zip({"run": np.array([3], np.int64), "weight": np.array([1.0]), "x": [2.5]})
    columns, index = snapshot_columns({"mc": mc, "empty": ak.Array([]), "data": data})
    assert index.tolist() == [0, 0, 2]
    assert index.dtype == np.int32
    assert columns["run"].tolist() == [1, 2, 3]
    assert columns["weight_sf_up"].tolist() == [1.0, 1.2, 1.0]
    assert columns["truth"].tolist() == [1, 0, -1]
    assert columns["truth"].dtype == np.int32
    assert np.isnan(columns["x"][:2]).all()
    assert columns["x"][2] == 2.5


# -- atomic writes: a failure half way leaves the previous file as it was --------------
class _Boom(RuntimeError):
    pass


def _hists(scale: float) -> dict[str, hist.Hist]:
    h = hist.Hist(
        hist.axis.StrCategory(["d"], name="dataset"),
        hist.axis.StrCategory(["nominal"], name="systematic"),
        hist.axis.Regular(62, 1.65, 2.01, name="mass"),
        storage=hist.storage.Weight(),
    )
    h.fill(dataset="d", systematic="nominal", mass=np.full(10, 1.97), weight=scale)
    return {"h_mass": h}


def _leftovers(directory) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".part")]


def test_a_json_write_that_fails_half_way_keeps_the_old_file(tmp_path):
    path = tmp_path / "fit.json"
    outputs.write_json(path, {"yield": 1.0})
    before = path.read_bytes()

    class Unserialisable:
        pass

    with pytest.raises(TypeError):  # fails after "yield" was written to the temporary file
        outputs.write_json(path, {"yield": 2.0, "later": Unserialisable()})
    assert path.read_bytes() == before
    assert json.loads(before) == {"yield": 1.0}
    assert _leftovers(tmp_path) == []


def test_histograms_written_half_way_keep_the_old_file(tmp_path, monkeypatch):
    outputs.write_histograms(tmp_path, _hists(1.0))
    before = (tmp_path / "histograms.root").read_bytes()

    original = outputs.histogram_slices

    def one_then_fail(*args, **kwargs):
        slices = original(*args, **kwargs)
        first = next(iter(slices.items()))

        class Failing(dict):
            def items(self):
                yield first
                raise _Boom("interrupted after the first histogram")

        return Failing(slices)

    monkeypatch.setattr(outputs, "histogram_slices", one_then_fail)
    with pytest.raises(_Boom):
        outputs.write_histograms(tmp_path, _hists(5.0))
    assert (tmp_path / "histograms.root").read_bytes() == before
    with uproot.open(tmp_path / "histograms.root") as f:
        (key,) = [k for k in f.keys(cycle=False) if k.startswith("h_mass")]
        assert f[key].values().sum() == pytest.approx(10.0)
    assert _leftovers(tmp_path) == []
