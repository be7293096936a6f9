"""The one-pass ``std::vector`` readers: the same arrays as uproot's, malformed entries named.

The kernels are checked against entries serialised here as ROOT streams them (random
contents, hypothesis), the uproot interpretations against uproot's own reader on files
ROOT wrote, and a corrupt header must stop the read with the file, branch and basket.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from hypothesis import given, settings
from hypothesis import strategies as st

from tau3mu import opentrees, vectors
from tau3mu.kernels.vectors import split_string_vectors, strip_vector_headers
from tau3mu.reading import uproot_options

TREE = "Tree3Mu/ntuple"
VERSION = 9  # ROOT's class version of std::vector


def _entry(body: bytes) -> bytes:
    """One streamed object: byte count (with kByteCountMask), class version, body."""
    return (0x40000000 | (len(body) + 2)).to_bytes(4, "big") + VERSION.to_bytes(2, "big") + body


def _basket(entries: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    data = b"".join(entries)
    offsets = np.zeros(len(entries) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in entries], out=offsets[1:])
    return np.frombuffer(data, dtype=np.uint8), offsets


def number_vectors(lists: list[list], dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """A basket of ``std::vector<number>`` entries, as ROOT writes them (big-endian)."""
    big = np.dtype(dtype).newbyteorder(">")
    return _basket(
        [_entry(len(x).to_bytes(4, "big") + np.asarray(x, dtype=big).tobytes()) for x in lists]
    )


def _string(text: str) -> bytes:
    raw = text.encode()
    size = bytes([len(raw)]) if len(raw) < 255 else b"\xff" + len(raw).to_bytes(4, "big")
    return size + raw


def string_vectors(lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """A basket of ``std::vector<std::string>`` entries, as ROOT writes them."""
    return _basket(
        [_entry(len(x).to_bytes(4, "big") + b"".join(_string(s) for s in x)) for x in lists]
    )


DTYPES = {
    "f8": st.floats(allow_nan=True, width=64),
    "f4": st.floats(allow_nan=True, width=32),
    "i4": st.integers(-(2**31), 2**31 - 1),
    "i2": st.integers(-(2**15), 2**15 - 1),
    "u1": st.integers(0, 255),
}


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_strip_vector_headers_matches_the_entries(dtype: str, data) -> None:
    lists = data.draw(st.lists(st.lists(DTYPES[dtype], max_size=12), max_size=30))
    raw, byte_offsets = number_vectors(lists, dtype)
    itemsize = np.dtype(dtype).itemsize
    content, offsets = strip_vector_headers(raw, byte_offsets, itemsize)
    values = content.view(np.dtype(dtype).newbyteorder(">"))
    assert offsets.tolist() == np.cumsum([0] + [len(x) for x in lists]).tolist()
    expected = np.array([v for x in lists for v in x], dtype=dtype)
    np.testing.assert_array_equal(values, expected)


@settings(max_examples=80, deadline=None)
@given(
    lists=st.lists(
        st.lists(st.one_of(st.text(max_size=20), st.text(min_size=255, max_size=300)), max_size=6),
        max_size=20,
    )
)
def test_split_string_vectors_matches_the_entries(lists: list[list[str]]) -> None:
    raw, byte_offsets = string_vectors(lists)
    entries, strings, chars = split_string_vectors(raw, byte_offsets)
    layout = vectors._string_lists(entries, strings, chars)
    assert ak.to_list(ak.Array(layout)) == lists


@pytest.mark.parametrize(
    ("what", "patch"),
    [
        ("element count", lambda b: b[:6] + (3).to_bytes(4, "big") + b[10:]),
        ("byte count", lambda b: (0x40000000 | 99).to_bytes(4, "big") + b[4:]),
        ("no byte-count flag", lambda b: b"\x00" + b[1:]),
    ],
)
def test_a_malformed_number_vector_is_named(what: str, patch) -> None:
    good = _entry((2).to_bytes(4, "big") + np.array([1.5, 2.5], ">f8").tobytes())
    raw, byte_offsets = _basket([good, patch(good), good])
    with pytest.raises(ValueError, match=r"entry 1 is not a std::vector of 8-byte numbers"):
        strip_vector_headers(raw, byte_offsets, 8)


@pytest.mark.parametrize(
    ("lists", "cut"),
    [([["HLT_a", "HLT_b"]], 1), ([["x" * 300]], 3)],  # a string that runs past its entry
)
def test_a_malformed_string_vector_is_named(lists, cut: int) -> None:
    raw, byte_offsets = string_vectors([["ok"], *lists])
    # shorten the entry's bytes (and its byte count) so that its strings overrun it
    entry = bytes(raw[byte_offsets[1] : byte_offsets[2]])
    short = (0x40000000 | (len(entry) - 4 - cut)).to_bytes(4, "big") + entry[4:-cut]
    raw, byte_offsets = _basket([bytes(raw[: byte_offsets[1]]), short])
    with pytest.raises(ValueError, match=r"entry 1 is not a std::vector<std::string>"):
        split_string_vectors(raw, byte_offsets)


def test_an_entry_beyond_the_basket_is_named() -> None:
    raw, byte_offsets = number_vectors([[1.0], [2.0, 3.0]], "f8")
    with pytest.raises(ValueError, match=r"entry 1 is not"):
        strip_vector_headers(raw[:-4], byte_offsets, 8)


# -- on files ROOT wrote ------------------------------------------------------------------
def _trees(path: str) -> tuple[uproot.TTree, uproot.TTree]:
    stock = uproot.open(path)[TREE]
    fast = uproot.open(path, **uproot_options([path]))[TREE]
    return stock, fast


def test_run2_files_read_as_uproot_reads_them(run2_files, monkeypatch) -> None:
    monkeypatch.delenv("TAU3MU_VECTORS", raising=False)
    stock, fast = _trees(run2_files[0])
    kinds = {type(fast[b].interpretation) for b in fast.keys()}  # noqa: SIM118
    assert {vectors.AsStdVector, vectors.AsStringVector} <= kinds
    names = [b for b in fast.keys() if fast[b].typename.startswith("std::vector")]  # noqa: SIM118
    assert "Trigger_hltname" in names
    assert "Triplet2_Mass" in names
    start, stop = 1234, stock.num_entries - 777  # chunk edges inside baskets
    expected = stock.arrays(names, entry_start=start, entry_stop=stop)
    got = fast.arrays(names, entry_start=start, entry_stop=stop)
    for name in names:
        assert got[name].layout.form == expected[name].layout.form, name
        assert ak.array_equal(got[name], expected[name], equal_nan=True), name


def test_uproot_reader_on_request(run2_files, monkeypatch) -> None:
    monkeypatch.setenv("TAU3MU_VECTORS", "uproot")
    tree = uproot.open(run2_files[0])[TREE]
    assert vectors.use_fast_vectors(tree) == 0
    assert type(tree["Triplet2_Mass"].interpretation) is uproot.AsJagged
    monkeypatch.setenv("TAU3MU_VECTORS", "fast")
    with pytest.raises(ValueError, match="TAU3MU_VECTORS"):
        vectors.use_fast_vectors(tree)


def test_run3_counted_arrays_keep_uproots_reader(run3_files) -> None:
    tree = uproot.open(run3_files[0], **uproot_options([run3_files[0]]))["Events"]
    assert vectors.use_fast_vectors(tree) == 0


def test_the_object_cache_keeps_nothing_and_pickles() -> None:
    cache = vectors.VectorTrees()
    cache["key"] = object()
    assert len(cache) == 0
    assert cache.get("key") is None
    assert isinstance(pickle.loads(pickle.dumps(cache)), vectors.VectorTrees)


@pytest.mark.parametrize("where", ["local", "kept", "xrootd"])
def test_every_eager_read_path_gets_the_readers(where: str) -> None:
    path = {"local": "/data/a.root", "kept": "/data/a.root", "xrootd": "root://host//a.root"}
    options = uproot_options([path[where]], keep_trees=where == "kept")
    expected = opentrees.KeptTreesFor if where == "kept" else vectors.VectorTrees
    assert isinstance(options["object_cache"], expected)
    # uproot.dask refuses an object cache: its look at the first file (graph=True) has none;
    # the graph's partitions read with the eager options (tests/test_dask_awkward.py)
    assert "object_cache" not in uproot_options([path[where]], graph=True)


@pytest.fixture(scope="module")
def corrupt_vector_file(tmp_path_factory) -> tuple[str, int]:
    """An uncompressed ROOT file whose std::vector in entry 7 claims 3 elements, not 2."""
    ROOT = pytest.importorskip("ROOT")
    path = str(tmp_path_factory.mktemp("corrupt") / "corrupt_vector.root")
    f = ROOT.TFile(path, "RECREATE", "", 0)
    f.mkdir("Tree3Mu").cd()
    tree = ROOT.TTree("ntuple", "ntuple")
    values = ROOT.std.vector("double")()
    tree.Branch("Triplet2_Mass", values)
    for i in range(20):
        values.clear()
        for v in (1000.25 + i, 2000.5 + i):
            values.push_back(v)
        tree.Fill()
    tree.Write()
    f.Close()
    raw = bytearray(Path(path).read_bytes())
    body = (2).to_bytes(4, "big") + np.array([1007.25, 2007.5], ">f8").tobytes()
    assert raw.count(body) == 1
    at = raw.find(body)
    raw[at : at + 4] = (3).to_bytes(4, "big")
    Path(path).write_bytes(bytes(raw))
    return path, 7


def test_a_corrupt_vector_names_file_branch_and_basket(corrupt_vector_file) -> None:
    path, _ = corrupt_vector_file
    tree = uproot.open(path, **uproot_options([path]))[TREE]
    with pytest.raises(uproot.deserialization.DeserializationError) as info:
        tree["Triplet2_Mass"].array()
    message = str(info.value)
    assert "corrupt_vector.root" in message
    assert "branch 'Triplet2_Mass', basket 0" in message
    assert "entry 7 is not a std::vector of 8-byte numbers" in message


def test_a_corrupt_vector_stops_the_run_naming_the_chunk(corrupt_run2_file) -> None:
    from tau3mu.chunks import ChunkError
    from tau3mu.execution import run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    path, event = corrupt_run2_file
    fileset = {"d": {"files": {path: TREE}, "metadata": {"type": "data"}}}
    with pytest.raises(ChunkError) as info:
        run_runner(fileset, DsPhiPiProcessor(), chunksize=10**6, progress=False)
    message = str(info.value)
    assert f"{path} entries 0-" in message
    assert "branch 'Triplet2_Mass', basket " in message
    assert f"entry {event} is not a std::vector of 8-byte numbers" in message
