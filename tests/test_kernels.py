"""The numba kernels against plain Python references, on random jagged arrays (hypothesis).

Also: types on unknown-type and sliced inputs, virtual buffers, typetracers (touched
columns, output type equal to the eager one) and dask-awkward partitions.
"""

from __future__ import annotations

import math

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tau3mu.kernels import (
    best_candidate,
    delta_r,
    delta_r_values,
    gather,
    gather_values,
    match_to_collection,
    pair_mass,
    pair_mass_values,
    trigger_fired,
)
from tau3mu.kernels.gather import result_dtype

EXAMPLES = settings(max_examples=120, deadline=None)

# -- helpers ---------------------------------------------------------------------------


def jagged(rows: list[list], dtype) -> ak.Array:
    """A ``var * dtype`` array of known type, also when every event is empty."""
    flat = np.asarray([x for row in rows for x in row], dtype=dtype)
    return ak.unflatten(flat, np.asarray([len(row) for row in rows], dtype=np.int64))


def virtual(array: ak.Array) -> ak.Array:
    """The same array with virtual buffers (materialised on access, as coffea's NanoEvents)."""
    form, length, buffers = ak.to_buffers(ak.to_packed(array))
    return ak.from_buffers(form, length, {k: (lambda v=v: v) for k, v in buffers.items()})


def as_float(x: float, dtype) -> float:
    with np.errstate(over="ignore"):
        return float(np.asarray(x, dtype=np.float64).astype(dtype))


# -- 1. value matching -------------------------------------------------------------------

# small value sets make duplicates and exact matches likely; NaN, inf, -99 placeholders
# and values whose float32 rounding differs from the double (3.1) or overflows (1e300)
MATCH_VALUES = [0.5, 1.0, 3.1, as_float(3.1, np.float32), -99.0, math.nan, math.inf, 1e300]
match_values = st.sampled_from(MATCH_VALUES)


@st.composite
def candidates_and_collection(draw):
    n = draw(st.integers(0, 10))
    coll = [
        draw(st.lists(st.tuples(match_values, match_values, match_values), max_size=5))
        for _ in range(n)
    ]
    cands = []
    for entries in coll:
        row = []
        for _ in range(draw(st.integers(0, 4))):
            if entries and draw(st.booleans()):
                row.append(draw(st.sampled_from(entries)))  # a copy: matches unless NaN
            else:
                row.append((draw(match_values), draw(match_values), draw(match_values)))
        cands.append(row)
    return cands, coll


def reference_match(cands, coll, cand_dtype, coll_dtype, round_to_float32):
    out = []
    for row, entries in zip(cands, coll, strict=True):
        stored = [tuple(as_float(x, coll_dtype) for x in e) for e in entries]
        found = []
        for c in row:
            c = tuple(as_float(x, cand_dtype) for x in c)
            if round_to_float32:
                c = tuple(as_float(x, np.float32) for x in c)
            # element-wise ==: NaN never matches (tuple == compares NaN by identity)
            hits = [
                j for j, e in enumerate(stored) if all(a == b for a, b in zip(e, c, strict=True))
            ]
            found.append(hits[0] if hits else -1)
        out.append(found)
    return out


MATCH_CASES = [
    pytest.param(np.float64, np.float32, True, id="run2-muons"),
    pytest.param(np.float64, np.float64, False, id="run2-tracks"),
    pytest.param(np.float64, np.float32, False, id="widened"),
    pytest.param(np.float32, np.float32, False, id="float32"),
]


@pytest.mark.parametrize(("cand_dtype", "coll_dtype", "round_to_float32"), MATCH_CASES)
@EXAMPLES
@given(data=candidates_and_collection())
def test_match_equals_reference(data, cand_dtype, coll_dtype, round_to_float32):
    cands, coll = data
    with np.errstate(over="ignore"):
        got = match_to_collection(
            *(jagged([[e[k] for e in row] for row in cands], cand_dtype) for k in range(3)),
            *(jagged([[e[k] for e in row] for row in coll], coll_dtype) for k in range(3)),
            round_to_float32=round_to_float32,
        )
    assert str(got.type.content) == "var * int64"
    assert got.tolist() == reference_match(cands, coll, cand_dtype, coll_dtype, round_to_float32)


def test_match_rounds_the_candidates_doubles_to_float32_only_when_asked():
    muon = jagged([[3.1]], np.float32)
    zero = jagged([[0.0]], np.float32)
    copy = jagged([[3.1]], np.float64)  # the double 3.1 is not the float 3.1
    cand = (copy, *[jagged([[0.0]], np.float64)] * 2)
    assert match_to_collection(*cand, muon, zero, zero).tolist() == [[-1]]
    assert match_to_collection(*cand, muon, zero, zero, round_to_float32=True).tolist() == [[0]]


def test_match_duplicates_give_the_first_index_and_nan_never_matches():
    coll = jagged([[1.0, 2.0, 2.0, math.nan]], np.float64)
    cand = jagged([[2.0, math.nan, 5.0]], np.float64)
    assert match_to_collection(cand, cand, cand, coll, coll, coll).tolist() == [[1, -1, -1]]


def test_match_rejects_inconsistent_inputs():
    a = jagged([[1.0], [2.0]], np.float64)
    b = jagged([[1.0, 1.0], []], np.float64)
    with pytest.raises(ValueError, match="entries per event"):
        match_to_collection(a, b, a, a, a, a)
    with pytest.raises(ValueError, match="events"):
        match_to_collection(a, a, a, a[:1], a[:1], a[:1])
    with pytest.raises(TypeError, match="var \\* number"):
        match_to_collection(*[ak.Array([[1.0, None]])] * 3, a, a, a)


# -- 2. gather -------------------------------------------------------------------------


@st.composite
def values_and_links(draw):
    n = draw(st.integers(0, 10))
    vals = [draw(st.lists(st.integers(0, 5), max_size=5)) for _ in range(n)]
    idx = [draw(st.lists(st.integers(-3, len(v) - 1), max_size=4)) for v in vals]
    return vals, idx


GATHER_CASES = [
    pytest.param(np.float64, math.nan, id="float64-nan"),
    pytest.param(np.float32, math.nan, id="float32-nan"),
    pytest.param(np.float32, -99.0, id="float32-99"),
    pytest.param(np.int32, -1, id="int32"),
    pytest.param(np.uint8, -1, id="uint8-promoted"),
    pytest.param(np.bool_, False, id="bool"),
]


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize(("value_dtype", "fill"), GATHER_CASES)
@pytest.mark.parametrize("option", [False, True])
@settings(max_examples=40, deadline=None)
@given(data=values_and_links())
def test_gather_equals_reference(data, value_dtype, fill, index_dtype, option):
    vals, idx = data
    values = jagged(vals, value_dtype)
    got = gather(values, jagged(idx, index_dtype), fill=fill, option=option)
    dtype = result_dtype(np.dtype(value_dtype), fill)
    missing = None if option else fill
    expected = [
        [
            np.asarray(v[i], dtype=value_dtype).astype(dtype).item() if i >= 0 else missing
            for i in row
        ]
        for v, row in zip(values.tolist(), idx, strict=True)
    ]
    assert str(got.type.content) == f"var * {'?' if option else ''}{dtype}"
    # NaN == NaN for the comparison
    assert str(got.tolist()) == str(expected)
    if not option:  # the same on flat buffers
        v_off = np.concatenate(([0], np.cumsum([len(v) for v in vals])))
        i_off = np.concatenate(([0], np.cumsum([len(row) for row in idx])))
        flat = gather_values(
            v_off,
            ak.to_numpy(ak.flatten(values)),
            i_off,
            np.asarray([i for row in idx for i in row], dtype=index_dtype),
            fill,
        )
        assert str(flat.tolist()) == str([x for row in expected for x in row])


def test_gather_keeps_the_values_dtype_when_the_fill_fits():
    assert result_dtype(np.dtype(np.float32), math.nan) == np.float32
    assert result_dtype(np.dtype(np.int32), -1) == np.int32
    assert result_dtype(np.dtype(np.uint8), -1) == np.int16
    assert result_dtype(np.dtype(np.bool_), 0) == np.int64
    assert result_dtype(np.dtype(np.int64), math.nan) == np.float64


def test_gather_out_of_range_is_an_error_naming_the_event():
    with pytest.raises(IndexError, match="event 1 of the chunk"):
        gather(jagged([[1.0], [2.0]], np.float64), jagged([[0], [1]], np.int64))


def test_gather_rejects_inconsistent_inputs():
    with pytest.raises(ValueError, match="events"):
        gather(jagged([[1.0], [2.0]], np.float64), jagged([[0]], np.int64))
    with pytest.raises(TypeError, match="integers"):
        gather(jagged([[1.0]], np.float64), jagged([[0.0]], np.float64))


# -- 3. best candidate ------------------------------------------------------------------


@st.composite
def masked_values(draw):
    n = draw(st.integers(0, 12))
    pool = st.sampled_from([0.0, 1.0, 2.0, 3.0, math.nan, math.inf, -math.inf])
    vals = [draw(st.lists(pool, max_size=6)) for _ in range(n)]
    mask = [[draw(st.sampled_from([True, False, None])) for _ in row] for row in vals]
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("option_mask", [False, True])
@EXAMPLES
@given(data=masked_values())
def test_best_candidate_equals_reference(data, dtype, option_mask):
    vals, mask = data
    if dtype is np.int64:  # integers have no NaN or inf
        vals = [[v if math.isfinite(v) else 7.0 for v in row] for row in vals]
    mask_array = jagged([[bool(x) for x in m] for m in mask], np.bool_)
    if option_mask:  # var * ?bool: None does not pass
        mask_array = ak.mask(mask_array, jagged([[x is not None for x in m] for m in mask], bool))
    else:
        mask = [[bool(x) for x in m] for m in mask]
    got = best_candidate(jagged(vals, dtype), mask_array)
    assert str(got.type.content) == "int64"
    assert got.tolist() == reference_best(vals, mask)


def test_best_candidate_ties_go_to_the_lowest_index():
    values = jagged([[2.0, 1.0, 1.0], [5.0, 5.0]], np.float64)
    mask = jagged([[True, True, True], [False, True]], np.bool_)
    assert best_candidate(values, mask).tolist() == [1, 1]


def test_best_candidate_rejects_a_mask_of_another_structure():
    with pytest.raises(ValueError, match="entries per event"):
        best_candidate(jagged([[1.0, 2.0]], np.float64), jagged([[True]], np.bool_))


# -- 4. trigger names -------------------------------------------------------------------

NAMES = [
    "HLT_DoubleMu3_Trk_Tau3mu_v12",
    "HLT_DoubleMu3_Trk_Tau3mu_v3",
    "HLT_DoubleMu4_3_LowMass_v5",
    "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4",
    "L1_TripleMu_5_3_3",
    "L1_SingleMu22",
    "",
    "HLT_Tau3mu",
    "HLT_µµ_v1",
]
PATTERNS = ["HLT_DoubleMu3_Trk_Tau3mu_v", "L1_DoubleMu", "L1_TripleMu", "µ_v", "Mu", ""]


@pytest.mark.parametrize("decision_dtype", [np.int32, np.int64, np.bool_])
@EXAMPLES
@given(
    rows=st.lists(
        st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 1)), max_size=6), max_size=10
    ),
    patterns=st.lists(st.sampled_from(PATTERNS), max_size=3, unique=True),
)
def test_trigger_equals_reference(rows, patterns, decision_dtype):
    names = ak.Array([[n for n, _ in row] for row in rows])
    decisions = jagged([[d for _, d in row] for row in rows], decision_dtype)
    got = trigger_fired(names, decisions, patterns=tuple(patterns))
    expected = [any(d and any(p in n for p in patterns) for n, d in row) for row in rows]
    assert got.tolist() == expected


def test_trigger_takes_a_single_pattern_as_a_string():
    names = ak.Array([["HLT_DoubleMu3_Trk_Tau3mu_v12"], ["H"]])
    decisions = jagged([[1], [1]], np.int32)
    assert trigger_fired(names, decisions, "HLT_DoubleMu3").tolist() == [True, False]


def test_trigger_rejects_inconsistent_inputs():
    with pytest.raises(ValueError, match="different lengths in event 1"):
        trigger_fired(ak.Array([["a"], ["a", "b"]]), jagged([[1], [1]], np.int32), ("a",))
    with pytest.raises(TypeError, match="string"):
        trigger_fired(jagged([[1]], np.int32), jagged([[1]], np.int32), ("a",))


# -- 5. two-body kinematics -------------------------------------------------------------


def reference_pair_mass(p1, p2, mass):
    (pt1, eta1, phi1), (pt2, eta2, phi2) = p1, p2
    if not (pt1 > 0 and pt2 > 0):
        return math.nan
    px = pt1 * math.cos(phi1) + pt2 * math.cos(phi2)
    py = pt1 * math.sin(phi1) + pt2 * math.sin(phi2)
    pz1, pz2 = pt1 * math.sinh(eta1), pt2 * math.sinh(eta2)
    e1 = math.sqrt(pt1**2 + pz1**2 + mass**2)
    e2 = math.sqrt(pt2**2 + pz2**2 + mass**2)
    m2 = (e1 + e2) ** 2 - px**2 - py**2 - (pz1 + pz2) ** 2
    return math.sqrt(m2) if m2 > 0 else (0.0 if m2 <= 0 else math.nan)


def reference_delta_r(eta1, phi1, eta2, phi2):
    dphi = phi1 - phi2
    while dphi >= math.pi:
        dphi -= 2 * math.pi
    while dphi < -math.pi:
        dphi += 2 * math.pi
    return math.hypot(eta1 - eta2, dphi)


def same_floats(got, expected):
    assert len(got) == len(expected)
    for g_row, e_row in zip(got, expected, strict=True):
        assert len(g_row) == len(e_row)
        for g, e in zip(g_row, e_row, strict=True):
            assert (math.isnan(g) and math.isnan(e)) or math.isclose(
                g, e, rel_tol=1e-9, abs_tol=1e-9
            )


kinematic = st.one_of(st.floats(-4, 4), st.sampled_from([-99.0, 0.0, math.nan, math.pi, -math.pi]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@EXAMPLES
@given(rows=st.lists(st.lists(st.tuples(*[kinematic] * 6), max_size=4), max_size=8))
def test_pair_mass_and_delta_r_equal_reference(rows, dtype):
    columns = [jagged([[e[k] for e in row] for row in rows], dtype) for k in range(6)]
    stored = [list(zip(*(c[i] for c in columns), strict=True)) for i in range(len(rows))]
    stored = [[tuple(float(x) for x in e) for e in row] for row in stored]
    got = pair_mass(*columns, mass=0.10566)
    assert str(got.type.content) == "var * float64"
    expected = [[reference_pair_mass(e[:3], e[3:], 0.10566) for e in row] for row in stored]
    same_floats(got.tolist(), expected)
    flat = [ak.to_numpy(ak.flatten(c)) for c in columns]
    same_floats(
        [pair_mass_values(*flat, mass=0.10566).tolist()], [[x for row in expected for x in row]]
    )
    got = delta_r(columns[1], columns[2], columns[4], columns[5])
    expected = [[reference_delta_r(e[1], e[2], e[4], e[5]) for e in row] for row in stored]
    same_floats(got.tolist(), expected)
    flat = [ak.to_numpy(ak.flatten(columns[k])) for k in (1, 2, 4, 5)]
    same_floats([delta_r_values(*flat).tolist()], [[x for row in expected for x in row]])


def test_pair_mass_of_the_phi():
    # two muons of 0.5 GeV each way from a phi at rest in the transverse plane
    p = math.sqrt((1.019461 / 2) ** 2 - 0.105658**2)
    one = jagged([[p]], np.float64)
    zero = jagged([[0.0]], np.float64)
    got = pair_mass(one, zero, zero, one, zero, jagged([[math.pi]], np.float64), mass=0.105658)
    assert got.tolist()[0][0] == pytest.approx(1.019461, abs=1e-12)


def test_delta_r_wraps_phi():
    got = delta_r(
        *[jagged([[0.0]], np.float64)] * 2, jagged([[0.0]], np.float64), jagged([[6.0]], np.float64)
    )
    assert got.tolist()[0][0] == pytest.approx(2 * math.pi - 6.0)


# -- all kernels: unknown types, slices, virtual buffers, typetracers, dask --------------


def example_inputs():
    """(kernel, positional arrays, keyword arguments) for each public kernel."""
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 4, 40)
    coll_counts = rng.integers(0, 4, 40)
    coll = jagged([list(rng.integers(0, 3, c) * 0.5) for c in coll_counts], np.float32)
    cand = jagged([list(rng.integers(0, 3, c) * 0.5) for c in counts], np.float64)
    index = jagged(
        [
            list(rng.integers(-1, m, c)) if m else [-1] * c
            for c, m in zip(counts, coll_counts, strict=True)
        ],
        np.int32,
    )
    chi2 = jagged([list(rng.random(c)) for c in counts], np.float64)
    names = ak.Array([[NAMES[k] for k in rng.integers(0, len(NAMES), c)] for c in counts])
    return [
        (match_to_collection, (cand, cand, cand, coll, coll, coll), {"round_to_float32": True}),
        (gather, (coll, index), {"fill": -1.0}),
        (gather, (coll, index), {"fill": math.nan, "option": True}),
        (best_candidate, (chi2, chi2 > 0.4), {}),
        (pair_mass, (cand, cand, chi2, cand, chi2, cand), {"mass": 0.10566}),
        (delta_r, (cand, chi2, chi2, cand), {}),
        (
            trigger_fired,
            (names, ak.values_astype(chi2 > 0.5, np.int32)),
            {"patterns": ("L1_", "_v1")},
        ),
    ]


CASES = [
    pytest.param(*case, id=f"{case[0].__name__}-{i}") for i, case in enumerate(example_inputs())
]


@pytest.mark.parametrize(("kernel", "arrays", "kwargs"), CASES)
def test_unknown_type_and_sliced_inputs(kernel, arrays, kwargs):
    full = kernel(*arrays, **kwargs)
    assert str(kernel(*(a[5:17] for a in arrays), **kwargs).tolist()) == str(full[5:17].tolist())
    assert kernel(*(a[:0] for a in arrays), **kwargs).tolist() == []
    # arrays of unknown type: no events, or only empty events
    assert kernel(*(ak.Array([]) for _ in arrays), **kwargs).tolist() == []
    out = kernel(*(ak.Array([[], []]) for _ in arrays), **kwargs).tolist()
    assert out in ([[], []], [-1, -1], [False, False])


@pytest.mark.parametrize(("kernel", "arrays", "kwargs"), CASES)
def test_virtual_buffers_are_materialised(kernel, arrays, kwargs):
    expected = kernel(*arrays, **kwargs)
    assert str(kernel(*(virtual(a) for a in arrays), **kwargs).tolist()) == str(expected.tolist())


@pytest.mark.parametrize(("kernel", "arrays", "kwargs"), CASES)
def test_typetracer_touches_inputs_and_has_the_eager_type(kernel, arrays, kwargs):
    tracers, reports = [], []
    for i, array in enumerate(arrays):
        form = ak.to_layout(array).form_with_key(f"in{i}-{{id}}")
        layout, report = ak.typetracer.typetracer_with_report(form)
        tracers.append(ak.Array(layout))
        reports.append((form, report))
    lazy = kernel(*tracers, **kwargs)
    assert ak.backend(lazy) == "typetracer"
    assert str(lazy.type.content) == str(kernel(*arrays, **kwargs).type.content)
    for form, report in reports:
        leaves = {
            f.form_key for f in _walk(form) if isinstance(f, ak.forms.NumpyForm)
        }  # the data buffers
        assert leaves <= set(report.data_touched)


def _walk(form):
    yield form
    if hasattr(form, "content"):
        yield from _walk(form.content)


@pytest.mark.parametrize(("kernel", "arrays", "kwargs"), CASES)
def test_map_partitions_equals_eager(kernel, arrays, kwargs):
    lazy = dak.map_partitions(
        kernel, *(dak.from_awkward(a, npartitions=3) for a in arrays), **kwargs
    )
    eager = kernel(*arrays, **kwargs)
    result = lazy.compute()
    assert str(result.type.content) == str(eager.type.content)
    assert str(result.tolist()) == str(eager.tolist())  # str: NaN == NaN


def test_only_the_inputs_columns_are_read(tmp_path):
    """dask-awkward's column optimisation sees what the kernels touch (parquet source)."""
    inputs = {kernel.__name__: (args, kw) for kernel, args, kw in example_inputs()}
    (m_args, m_kw), (g_args, g_kw) = inputs["match_to_collection"], inputs["gather"]
    (b_args, _), (t_args, t_kw) = inputs["best_candidate"], inputs["trigger_fired"]
    table = ak.zip(
        {
            "cpt": m_args[0],
            "mpt": m_args[3],
            "idx": g_args[1],
            "chi2": b_args[0],
            "names": t_args[0],
            "decisions": t_args[1],
            "passing": b_args[1],
            "unused": b_args[0],
        },
        depth_limit=1,
    )
    ak.to_parquet(table, tmp_path / "events.parquet")
    events = dak.from_parquet(tmp_path / "events.parquet", split_row_groups=False)
    cases = [
        (match_to_collection, ("cpt",) * 3 + ("mpt",) * 3, m_kw),
        (gather, ("mpt", "idx"), g_kw),
        (best_candidate, ("chi2", "passing"), {}),
        (trigger_fired, ("names", "decisions"), t_kw),
        (pair_mass, ("cpt", "chi2", "cpt", "cpt", "cpt", "chi2"), {"mass": 0.1}),
    ]
    for kernel, fields, kwargs in cases:
        lazy = dak.map_partitions(kernel, *(events[f] for f in fields), **kwargs)
        (columns,) = dak.report_necessary_columns(lazy).values()
        assert set(columns) == set(fields), kernel.__name__
        eager = kernel(*(table[f] for f in fields), **kwargs)
        assert str(lazy.compute().tolist()) == str(eager.tolist())


@pytest.mark.parametrize("strings", [["ab", "c"], [["ab"], ["c"]]])
def test_flat_buffers_refuse_strings(strings):
    """A string is a list of bytes to awkward; the kernels' buffers are lists of numbers
    only, whether or not the array is already packed."""
    from tau3mu.kernels.buffers import jagged as flat

    for array in (ak.Array(strings), ak.Array(strings)[::-1]):
        with pytest.raises(TypeError, match="x: expected"):
            flat(array, "x")
