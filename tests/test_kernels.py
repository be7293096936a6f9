"""The numba kernels against plain Python references, on random jagged arrays (hypothesis)."""

from __future__ import annotations

import math

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tau3mu.kernels import best_candidate, gather, match_to_collection, trigger_fired

# small value sets make duplicates and exact matches likely; NaN is always in play
values = st.sampled_from([0.5, 1.0, 2.25, 3.0, -1.5, math.nan])
events = st.integers(min_value=0, max_value=12)


@st.composite
def candidates_and_collection(draw):
    n = draw(events)
    coll = [draw(st.lists(st.tuples(values, values, values), max_size=5)) for _ in range(n)]
    cands = []
    for entries in coll:
        row = []
        for _ in range(draw(st.integers(0, 4))):
            if entries and draw(st.booleans()):
                row.append(draw(st.sampled_from(entries)))  # a copy: must match
            else:
                row.append((draw(values), draw(values), draw(values)))
        cands.append(row)
    return cands, coll


def _columns(rows, k, dtype=np.float64):
    return ak.values_astype(ak.Array([[entry[k] for entry in row] for row in rows]), dtype)


def reference_match(cands, coll):
    out = []
    for row, entries in zip(cands, coll, strict=True):
        # element-wise ==, so NaN never matches (tuple == would compare NaN by identity)
        out.append(
            [
                next(
                    (
                        j
                        for j, e in enumerate(entries)
                        if all(a == b for a, b in zip(e, c, strict=True))
                    ),
                    -1,
                )
                for c in row
            ]
        )
    return out


@settings(max_examples=150, deadline=None)
@given(candidates_and_collection())
def test_match_equals_reference(data):
    cands, coll = data
    got = match_to_collection(
        *(_columns(cands, k) for k in range(3)), *(_columns(coll, k) for k in range(3))
    )
    assert got.tolist() == reference_match(cands, coll)


def test_match_compares_at_float32_precision_when_asked():
    muon = ak.Array([[np.float32(3.1)]])
    copy = ak.Array([[float(np.float32(3.1))]])
    same = [ak.Array([[0.0]])] * 2
    assert match_to_collection(copy, *same, muon, *same).tolist() == [[0]]
    # the double 3.1 is not the float 3.1: without the cast it does not match
    assert match_to_collection(
        ak.Array([[3.1]]), *same, ak.values_astype(muon, np.float64), *same
    ).tolist() == [[-1]]


@st.composite
def values_and_links(draw):
    n = draw(events)
    vals = [draw(st.lists(st.floats(-5, 5), max_size=5)) for _ in range(n)]
    idx = [draw(st.lists(st.integers(-1, max(len(v) - 1, -1)), max_size=4)) for v in vals]
    return vals, idx


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@settings(max_examples=100, deadline=None)
@given(data=values_and_links())
def test_gather_equals_reference(data, index_dtype):
    vals, idx = data
    got = gather(
        ak.values_astype(ak.Array(vals), np.float64),
        ak.values_astype(ak.Array(idx), index_dtype),
        fill=-7.0,
    )
    expected = [[v[i] if i >= 0 else -7.0 for i in row] for v, row in zip(vals, idx, strict=True)]
    assert got.tolist() == expected


def test_gather_out_of_range_is_an_error():
    with pytest.raises(IndexError, match="event 1"):
        gather(ak.Array([[1.0], [2.0]]), ak.Array([[0], [3]]))


def test_gather_keeps_float32_and_fills_nan():
    out = gather(ak.Array(np.array([1.5], dtype=np.float32)[None, :]), ak.Array([[-1, 0]]))
    assert str(ak.type(out).content.content) == "float32"
    assert np.isnan(out[0, 0]) and out[0, 1] == 1.5


@st.composite
def masked_values(draw):
    n = draw(events)
    vals = [
        draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, math.nan]), max_size=6))
        for _ in range(n)
    ]
    mask = [[draw(st.booleans()) for _ in row] for row in vals]
    return vals, mask


def reference_best(vals, mask):
    out = []
    for row, m in zip(vals, mask, strict=True):
        best = -1
        for i, (v, ok) in enumerate(zip(row, m, strict=True)):
            if ok and not math.isnan(v) and (best < 0 or v < row[best]):
                best = i
        out.append(best)
    return out


@settings(max_examples=150, deadline=None)
@given(masked_values())
def test_best_candidate_equals_reference(data):
    vals, mask = data
    got = best_candidate(
        ak.values_astype(ak.Array(vals), np.float64), ak.values_astype(ak.Array(mask), bool)
    )
    assert got.tolist() == reference_best(vals, mask)


def test_best_candidate_ties_go_to_the_lowest_index():
    assert best_candidate(ak.Array([[2.0, 1.0, 1.0]]), ak.Array([[True, True, True]])).tolist() == [
        1
    ]


names = st.sampled_from(
    [
        "HLT_DoubleMu3_Trk_Tau3mu_v12",
        "HLT_DoubleMu3_Trk_Tau3mu_v3",
        "HLT_DoubleMu4_3_LowMass_v5",
        "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4",
        "L1_TripleMu_5_3_3",
        "L1_SingleMu22",
        "",
        "HLT_Tau3mu",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(names, st.integers(0, 1)), max_size=5), max_size=10))
def test_trigger_equals_reference(rows):
    patterns = ("HLT_DoubleMu3_Trk_Tau3mu_v", "L1_TripleMu")
    got = trigger_fired(
        ak.Array([[n for n, _ in row] for row in rows]),
        ak.values_astype(ak.Array([[d for _, d in row] for row in rows]), np.int32),
        patterns=patterns,
    )
    expected = [any(d and any(p in n for p in patterns) for n, d in row) for row in rows]
    assert got.tolist() == expected


def test_trigger_unequal_lengths_is_an_error():
    with pytest.raises(ValueError, match="different lengths"):
        trigger_fired(ak.Array([["a", "b"]]), ak.Array([[1]]), patterns=("a",))


def test_kernels_run_per_partition_in_dask_awkward():
    """Graph building hands typetracers to the kernels; results equal the eager ones."""
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 4, 50)
    vals = ak.unflatten(rng.random(counts.sum()), counts)
    mask = vals > 0.3
    lazy_vals = dak.from_awkward(vals, npartitions=3)
    lazy_mask = dak.from_awkward(mask, npartitions=3)
    lazy = dak.map_partitions(best_candidate, lazy_vals, lazy_mask)
    assert lazy.compute().tolist() == best_candidate(vals, mask).tolist()
    index = ak.unflatten(np.zeros(counts.sum(), dtype=np.int64), counts)
    lazy = dak.map_partitions(gather, lazy_vals, dak.from_awkward(index, npartitions=3), fill=-1.0)
    assert lazy.compute().tolist() == gather(vals, index, fill=-1.0).tolist()
