"""Muon ID scale factors from the real Muon POG 2017 file, clamped into its domain."""

from __future__ import annotations

import json
import pickle

import awkward as ak
import correctionlib
import numpy as np
import pytest

from tau3mu.corrections import DEFAULT_CORRECTION, MuonScaleFactors


@pytest.fixture(scope="module")
def scale_factors(pog_sf_file):
    return MuonScaleFactors(pog_sf_file)


@pytest.fixture(scope="module")
def raw(pog_sf_file):
    return correctionlib.CorrectionSet.from_file(str(pog_sf_file))[DEFAULT_CORRECTION]


def test_domain_read_from_file(scale_factors):
    assert scale_factors.domains["pt"].low == pytest.approx(3.0)
    assert scale_factors.domains["abseta"].high == pytest.approx(2.4)


def test_the_real_file_errors_below_3_gev(raw):
    """The reason clamping exists: the POG file's pt flow is "error"."""
    with pytest.raises(Exception, match=r"(?i)bound|range|flow"):
        raw.evaluate(1.5, 2.5, "nominal")


@pytest.mark.parametrize("variation", ["nominal", "systup", "systdown"])
@pytest.mark.parametrize(("eta", "pt"), [(0.3, 3.5), (-1.0, 7.2), (2.2, 25.0), (1.25, 4.0)])
def test_inside_domain_equals_correctionlib(scale_factors, raw, eta, pt, variation):
    assert scale_factors.evaluate(eta, pt, variation) == pytest.approx(
        raw.evaluate(abs(eta), pt, variation)
    )


def test_below_domain_is_clamped_to_lowest_bin(scale_factors, raw):
    assert scale_factors.evaluate(1.5, 2.2) == pytest.approx(raw.evaluate(1.5, 3.0, "nominal"))


def test_event_weights_count_clamped_values(scale_factors, raw):
    mu1 = (ak.Array([0.5, 1.9, -2.1]), ak.Array([4.0, 2.5, 2.1]))
    mu2 = (ak.Array([1.0, 0.1, 1.5]), ak.Array([3.5, 6.0, 12.0]))
    weights, clamped = scale_factors.event_weights([mu1, mu2])
    assert int(clamped) == 2
    expected = [
        raw.evaluate(0.5, 4.0, "nominal") * raw.evaluate(1.0, 3.5, "nominal"),
        raw.evaluate(1.9, 3.0, "nominal") * raw.evaluate(0.1, 6.0, "nominal"),
        raw.evaluate(2.1, 3.0, "nominal") * raw.evaluate(1.5, 12.0, "nominal"),
    ]
    np.testing.assert_allclose(ak.to_numpy(weights["nominal"]), expected)
    assert set(weights) == {"nominal", "sf_up", "sf_down"}
    assert np.all(ak.to_numpy(weights["sf_up"]) >= ak.to_numpy(weights["nominal"]))
    assert np.all(ak.to_numpy(weights["sf_down"]) <= ak.to_numpy(weights["nominal"]))


def test_works_on_jagged_arrays(scale_factors):
    out = scale_factors.evaluate(ak.Array([[0.5, 2.0], [], [1.3]]), ak.Array([[2.5, 4], [], [50]]))
    assert ak.num(out).tolist() == [2, 0, 1]


def test_pickles_without_the_file(scale_factors, tmp_path, pog_sf_file):
    """Remote workers do not share the client's disk: the object carries the JSON text."""
    copy = tmp_path / "sf.json"
    copy.write_text(pog_sf_file.read_text())
    sf = MuonScaleFactors(copy)
    copy.unlink()
    clone = pickle.loads(pickle.dumps(sf))
    assert clone.evaluate(0.5, 4.0) == pytest.approx(scale_factors.evaluate(0.5, 4.0))


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        MuonScaleFactors(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json is not valid JSON"):
        MuonScaleFactors(bad)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"schema_version": 2, "corrections": []}))
    with pytest.raises(KeyError, match="NUM_MediumID_DEN_TrackerMuons"):
        MuonScaleFactors(empty)
