"""Write simulated events in the Run 3 nanoAOD-like layout (SPEC 2.2) with uproot."""

from __future__ import annotations

import functools
from pathlib import Path

import awkward as ak
import numpy as np

from tau3mu.layouts import RUN3
from tau3mu.synth.compiled import CANDIDATE_COLUMNS
from tau3mu.synth.physics import HLT_PATHS, L1_SEEDS, Collection, SyntheticEvents

#: events per cluster (one basket per branch): ~16 MB compressed (NanoAOD flushes ~10 MB).
#: A divisor of the readers' 100k-event chunks, so that no basket is inflated by two
#: chunks; and uproot costs ~0.5 ms of Python per basket written, ~0.07 s per 200k
#: events fewer than with clusters of 30k
CLUSTER_EVENTS = 50_000

#: analysis name -> numpy dtype of the Run 3 branch (nanoAOD conventions): every candidate
#: column but the copies of the linked muons' and track's kinematics (Run 3 links by index)
_LINKED_COPIES = {f"{obj}_{v}" for obj in ("mu1", "mu2", "trk") for v in ("pt", "eta", "phi")}
_CANDIDATE_DTYPES = {name: t for name, t in CANDIDATE_COLUMNS if name not in _LINKED_COPIES}
_MUON_DTYPES = {
    "pt": np.float32,
    "eta": np.float32,
    "phi": np.float32,
    "charge": np.int32,
    "is_global": np.bool_,
    "is_pf": np.bool_,
}
_TRACK_DTYPES = {
    "pt": np.float32,
    "eta": np.float32,
    "phi": np.float32,
    "charge": np.int32,
    "dz": np.float32,
    "dxy": np.float32,
}


def _zip(collection: Collection, names: dict[str, str], dtypes: dict[str, type]) -> ak.Array:
    offsets = ak.index.Index64(collection.offsets)
    contents = [
        ak.contents.NumpyArray(collection.columns[key].astype(dtype, copy=False))
        for key, dtype in dtypes.items()
    ]
    record = ak.contents.RecordArray(
        contents, [names[key] for key in dtypes], length=int(collection.counts.sum())
    )
    return ak.Array(ak.contents.ListOffsetArray(offsets, record))


def run3_branches(events: SyntheticEvents, *, truth: bool = True) -> dict[str, object]:
    """The ``Events`` tree's content as uproot ``extend`` input (collections as records)."""
    cand_dtypes = dict(_CANDIDATE_DTYPES)
    if not truth:
        cand_dtypes.pop("truth")
    out: dict[str, object] = {
        RUN3.event["run"]: events.run.astype(np.uint32),
        RUN3.event["lumi"]: events.lumi.astype(np.uint32),
        RUN3.event["event"]: events.event.astype(np.uint64),
    }
    for path in HLT_PATHS:
        out[path] = events.hlt[path]
    for seed in L1_SEEDS:
        out[seed] = events.l1[seed]
    out[RUN3.candidate_collection] = _zip(
        events.candidates, dict(RUN3.candidate_fields), cand_dtypes
    )
    out[RUN3.muon_collection] = _zip(events.muons, dict(RUN3.muon_fields), _MUON_DTYPES)
    out[RUN3.track_collection] = _zip(events.tracks, dict(RUN3.track_fields), _TRACK_DTYPES)
    return out


def codec(compression: str, level: int, *, deflate: str = "isal"):
    """uproot's compression object for ``compression`` at ROOT level ``level``.

    ZLIB (ROOT algorithm 1) is a standard zlib stream whichever library deflates it:
    ``deflate="isal"`` (default) uses ISA-L, ~10x faster than the standard library's zlib
    on these float32 baskets (~430 against ~40 MB/s here) for ~14 % larger output at
    level 1; ``deflate="zlib"`` the standard library (smallest files, slowest).
    """
    import uproot

    codecs = {"zlib": uproot.ZLIB, "lz4": uproot.LZ4, "zstd": uproot.ZSTD, "lzma": uproot.LZMA}
    if compression not in codecs:
        raise ValueError(f"unknown compression {compression!r}; use one of {sorted(codecs)}")
    if compression == "zlib" and deflate == "isal" and level > 0:
        return _isal_zlib_class()(level)
    if deflate not in ("isal", "zlib"):
        raise ValueError(f"unknown deflate library {deflate!r}; use isal or zlib")
    return codecs[compression](level)


@functools.cache
def _isal_zlib_class() -> type:
    import uproot
    from isal import isal_zlib

    class IsalZLIB(uproot.ZLIB):
        """ROOT's ZLIB: a zlib stream deflated by ISA-L (levels 1-3 of 0-3 for ROOT's 1-9)."""

        @property
        def code_pair(self) -> tuple[int, int]:  # uproot matches the exact class
            return uproot.const.kZLIB, self.level

        def compress(self, data: bytes) -> bytes:
            return isal_zlib.compress(data, level=min(3, 1 + (self.level - 1) // 3))

    return IsalZLIB


def write_run3(
    path: str | Path,
    events: SyntheticEvents,
    *,
    compression: str = "zlib",
    compression_level: int = 1,
    truth: bool = True,
    deflate: str = "isal",
) -> Path:
    """Write ``events`` as a Run 3 ``Events`` tree (counters ``n<Coll>``, ``<Coll>_<field>``).

    ``deflate`` chooses the library behind ``compression="zlib"`` (see :func:`codec`).
    """
    import uproot

    compressor = codec(compression, compression_level, deflate=deflate)
    branches = run3_branches(events, truth=truth)
    path = Path(path)
    with uproot.recreate(path, compression=compressor) as f:
        types = {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()}
        tree = f.mktree(
            RUN3.tree,
            types,
            counter_name=lambda collection: f"n{collection}",
            field_name=lambda collection, field: f"{collection}_{field}",
        )
        # one extend per cluster: uproot writes one basket per branch and extend, and a
        # reader of a chunk inflates every basket the chunk touches (NanoAOD flushes
        # clusters of ~10 MB compressed, tens of thousands of events)
        n = len(branches[RUN3.event["run"]])
        for start in range(0, max(n, 1), CLUSTER_EVENTS):
            tree.extend({k: v[start : start + CLUSTER_EVENTS] for k, v in branches.items()})
    return path
