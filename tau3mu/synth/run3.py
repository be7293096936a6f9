"""Write simulated events in the layout of the CMS group's Run 3 NanoAOD producer.

The branches are the producer's (``docs/physics.md``, "Input layouts"): ``Cand2MuTrk_*``
with index links, ``Muon_*`` with per-path trigger-match flags, ``trgDR`` and ``trgDPT``,
``Track_*``, one uint8 ``Trigger_*`` bit per HLT path and L1 seed, ``PVtx_*``, and in
simulation ``Muon_decayType``, ``Muon_genPartPdgId``, ``GenPart_*`` and ``Pileup_*``.
What the layout-independent simulation does not draw (the Medium ID, the per-muon
trigger match) is drawn here, from the file's seed.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, TypeAlias

import awkward as ak
import numpy as np
import vector

from tau3mu.config import (
    DPLUS_MASS,
    DS_MASS,
    MUON_MASS,
    ORIGIN_FROM_B,
    PHI_MASS,
    PION_MASS,
    TRUTH_BACKGROUND,
    TRUTH_DPLUS,
    TRUTH_DS,
)
from tau3mu.layouts import RUN3
from tau3mu.synth.events import SyntheticEvents
from tau3mu.synth.truth import B_MASS, B_PT_SHARE

#: events per cluster (one basket per branch): ~16 MB compressed (NanoAOD flushes ~10 MB).
#: A divisor of the readers' 100k-event chunks, so that no basket is inflated by two
#: chunks; and uproot costs ~0.5 ms of Python per basket written, ~0.07 s per 200k
#: events fewer than with clusters of 30k
CLUSTER_EVENTS = 50_000

#: share of the muons that pass the PF requirement and also the Medium ID
MEDIUM_EFFICIENCY = 0.96
#: the producer's trigger-object matching cone, and its values for unmatched muons
MATCH_CONE = 0.3
UNMATCHED_DR, UNMATCHED_DPT = -1.0, 10000.0
#: relative pt difference to the trigger object of matched muons (Gaussian sigma)
MATCH_DPT_SIGMA = 0.04
#: one branch of the ``Events`` tree: a numpy column, or an awkward array of records
Branch: TypeAlias = "np.ndarray | ak.Array"

_PDG = {TRUTH_DS: 431, TRUTH_DPLUS: 411}


def _jagged(counts: np.ndarray, columns: dict[str, np.ndarray]) -> ak.Array:
    """A collection for uproot's ``mktree``: a jagged record array."""
    offsets = ak.index.Index64(np.concatenate(([0], np.cumsum(counts))).astype(np.int64))
    contents = [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in columns.values()]
    record = ak.contents.RecordArray(contents, list(columns), length=int(np.sum(counts)))
    return ak.Array(ak.contents.ListOffsetArray(offsets, record))


def _muons(
    events: SyntheticEvents, rng: np.random.Generator, hlt: dict[str, np.ndarray], mc: bool
) -> dict[str, np.ndarray]:
    """The producer's ``Muon`` columns, trigger match and simulation truth included."""
    mu = events.muons.columns
    n = len(mu["pt"])
    pt, eta = mu["pt"].astype(np.float32), mu["eta"].astype(np.float32)
    event = np.repeat(np.arange(len(events)), events.muons.counts)
    in_cone = mu["trig_dr"] < MATCH_CONE
    columns = {
        "pt": pt,
        "eta": eta,
        "phi": mu["phi"].astype(np.float32),
        "mass": np.full(n, MUON_MASS, dtype=np.float32),
        "energy": np.hypot(pt * np.cosh(eta), MUON_MASS).astype(np.float32),
        "charge": mu["charge"].astype(np.int32),
        "isGlobal": mu["is_global"].astype(np.bool_),
        "isPF": mu["is_pf"].astype(np.bool_),
        "isMedium": mu["is_pf"].astype(np.bool_) & (rng.random(n) < MEDIUM_EFFICIENCY),
    }
    matched_any = np.zeros(n, dtype=bool)
    for path, fired in hlt.items():
        flag = in_cone & (fired[event] > 0)
        columns[path] = flag.astype(np.int32)
        matched_any |= flag
    dpt = rng.normal(0.0, MATCH_DPT_SIGMA, n).astype(np.float32)
    columns["isTriggering"] = matched_any
    columns["trgDR"] = np.where(matched_any, mu["trig_dr"], UNMATCHED_DR).astype(np.float32)
    columns["trgDPT"] = np.where(matched_any, dpt, UNMATCHED_DPT).astype(np.float32)
    if mc:
        columns["decayType"] = np.zeros(n, dtype=np.int32)
        columns["genPartPdgId"] = np.zeros(n, dtype=np.int32)
    return columns


def _true_candidates(events: SyntheticEvents) -> tuple[np.ndarray, np.ndarray]:
    """(event, candidate position) of each signal event's true candidate."""
    cand = events.candidates
    truth = cand.columns["truth"]
    event = np.repeat(np.arange(len(events)), cand.counts)
    true = np.flatnonzero(truth != TRUTH_BACKGROUND)
    first = true[np.unique(event[true], return_index=True)[1]]
    return event[first], first


def _generated(events: SyntheticEvents, muons: dict[str, np.ndarray]) -> dict[str, Branch]:
    """``GenPart``: per signal event the Ds+ (or D+), its phi and pion, and the phi's two
    muons, with mother indices as the producer writes them (-1 for none); the
    truth-matched muons get ``decayType`` 1 (a prompt Ds+ or D+: no b hadron among the
    ancestors), or 2 with a sixth particle, the b hadron (B+), as the D's mother, for
    decays from a b hadron (``events.origin``), and ``genPartPdgId`` +-13. The parent's direction is the reconstructed
    triplet's (the simulation keeps no true parent momentum)."""
    cand, mu, trk = events.candidates.columns, events.muons.columns, events.tracks.columns
    ev, c = _true_candidates(events)
    m1 = events.muons.offsets[ev] + cand["mu1_idx"][c]
    m2 = events.muons.offsets[ev] + cand["mu2_idx"][c]
    tk = events.tracks.offsets[ev] + cand["trk_idx"][c]
    pdg = np.where(cand["truth"][c] == TRUTH_DS, _PDG[TRUTH_DS], _PDG[TRUTH_DPLUS])
    sign = np.sign(cand["charge"][c])

    def true(columns: dict[str, np.ndarray], index: np.ndarray, mass: float) -> Any:
        return vector.array(
            {k: columns[f"true_{k}"][index] for k in ("pt", "eta", "phi")}
            | {"mass": np.full(len(index), mass)}
        )

    mu1, mu2 = true(mu, m1, MUON_MASS), true(mu, m2, MUON_MASS)
    phi = mu1 + mu2
    from_b = (
        events.origin[ev] == ORIGIN_FROM_B if events.origin is not None else np.zeros(len(c), bool)
    )
    # (pt, eta, phi, mass, pdgId, status, mother) of the five particles, in file order,
    # and the b hadron (sixth) of non-prompt decays, the D's mother
    rows: list[tuple[Any, ...]] = [
        (
            cand["pt"][c],
            cand["eta"][c],
            cand["phi"][c],
            np.where(pdg == 431, DS_MASS, DPLUS_MASS),
            pdg * sign,
            2,
            np.where(from_b, 5, -1),
        ),
        (phi.pt, phi.eta, phi.phi, PHI_MASS, 333, 2, 0),
        (trk["true_pt"][tk], trk["true_eta"][tk], trk["true_phi"][tk], PION_MASS, 211 * sign, 1, 0),
        (mu1.pt, mu1.eta, mu1.phi, MUON_MASS, -13 * mu["charge"][m1], 1, 1),
        (mu2.pt, mu2.eta, mu2.phi, MUON_MASS, -13 * mu["charge"][m2], 1, 1),
        (cand["pt"][c] / B_PT_SHARE, cand["eta"][c], cand["phi"][c], B_MASS, 521 * sign, 2, -1),
    ]
    dtypes = (np.float32, np.float32, np.float32, np.float32, np.int32, np.int32, np.int16)
    present = np.ones((len(c), len(rows)), dtype=bool)
    present[:, -1] = from_b
    columns = {
        name: np.stack([np.broadcast_to(row[k], len(c)) for row in rows], axis=1)[present]
        .reshape(-1)
        .astype(dtype)
        for k, (name, dtype) in enumerate(zip(RUN3.gen_fields, dtypes, strict=True))
    }
    counts = np.zeros(len(events), dtype=np.int64)
    counts[ev] = len(rows) - 1 + from_b
    for index in (m1, m2):
        muons["decayType"][index] = np.where(from_b, 2, 1)
        muons["genPartPdgId"][index] = -13 * muons["charge"][index]
    return {RUN3.gen_collection: _jagged(counts, columns)}


def run3_branches(
    events: SyntheticEvents, *, truth: bool = True, mc: bool = False, seed: int = 0
) -> dict[str, Branch]:
    """The ``Events`` tree's content as uproot ``extend`` input (collections as records)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB3]))
    n = len(events)
    bits = {name: fired.astype(np.uint8) for name, fired in events.trigger3.items()}
    hlt = {path: bits[path] for path in RUN3.hlt_paths}
    out: dict[str, Branch] = {
        RUN3.event["run"]: events.run.astype(np.uint32),
        RUN3.event["lumi"]: events.lumi.astype(np.uint32),
        RUN3.event["event"]: events.event.astype(np.uint64),
    }
    out |= {RUN3.trigger_bit(name): fired for name, fired in bits.items()}
    cand = events.candidates.columns
    candidates = {
        "pt": cand["pt"],
        "eta": cand["eta"],
        "phi": cand["phi"],
        "charge": cand["charge"].astype(np.int32),
        "mu1_idx": cand["mu1_idx"].astype(np.int32),
        "mu2_idx": cand["mu2_idx"].astype(np.int32),
        "tr_idx": cand["trk_idx"].astype(np.int32),
        "mass": cand["mass"],
        "chi2": cand["vtx_chi2"],
        "ndof": np.full(len(cand["mass"]), 3.0, dtype=np.float32),
        "flightDistBSSig": cand["flight_sig"],
        **(
            {"flightDistBS": cand["flight_dist"], "flightDistBSErr": cand["flight_dist_err"]}
            if "flight_dist" in cand
            else {}
        ),
        "refit_mu1_pt": cand["mu1_refit_pt"],
        "refit_mu2_pt": cand["mu2_refit_pt"],
        "refit_tr_pt": cand["trk_pt"],
    }
    if truth:
        candidates["truth"] = cand["truth"].astype(np.int32)
    muons = _muons(events, rng, hlt, mc)
    if mc:
        out |= _generated(events, muons)
        out["Pileup_nTrueInt"] = rng.gamma(30.0, 1.0, n).astype(np.float32)
        out["Pileup_nPU"] = rng.poisson(out["Pileup_nTrueInt"]).astype(np.int32)
    out[RUN3.candidate_collection] = _jagged(events.candidates.counts, candidates)
    out[RUN3.muon_collection] = _jagged(events.muons.counts, muons)
    track = events.tracks.columns
    out[RUN3.track_collection] = _jagged(
        events.tracks.counts,
        {
            "pt": track["pt"].astype(np.float32),
            "eta": track["eta"].astype(np.float32),
            "phi": track["phi"].astype(np.float32),
            "mass": np.full(len(track["pt"]), PION_MASS, dtype=np.float32),
            "charge": track["charge"].astype(np.int32),
            "dz": track["dz"].astype(np.float32),
            "dxy": track["dxy"].astype(np.float32),
            "trackHighPurity": np.ones(len(track["pt"]), dtype=np.bool_),
        },
    )
    n_pv = 1 + rng.poisson(30, n)
    out["PVtx"] = _jagged(n_pv, {"z": rng.normal(0.0, 4.0, int(n_pv.sum())).astype(np.float32)})
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
    mc: bool = False,
    seed: int = 0,
) -> Path:
    """Write ``events`` as a Run 3 ``Events`` tree (counters ``n<Coll>``, ``<Coll>_<field>``).

    ``mc`` adds the simulation branches; ``seed`` seeds what is drawn here (the Run 3
    trigger menu, Medium ID, trigger match); ``deflate`` chooses the library behind
    ``compression="zlib"`` (see :func:`codec`).
    """
    import uproot

    compressor = codec(compression, compression_level, deflate=deflate)
    branches = run3_branches(events, truth=truth, mc=mc, seed=seed)
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
