"""What each branch of a synthetic Run 2 ``Tree3Mu/ntuple`` holds: the simulated events'
columns in the layout's branch names, the trigger menus as ``vector<string>``, the
generated particles and flight branches of :mod:`tau3mu.synth.truth`, and plausible
filler values of the right multiplicity for the branches the analysis does not read.

One ``numpy`` generator per file (seeded by the dataset's seed) draws the per-branch
numbers in a fixed order: the PV and HLT-muon counts, the trigger menus, the PV track
counts, the pileup, then the filler values in the tree's branch order.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

from tau3mu.config import MUON_MASS
from tau3mu.eras import year_of
from tau3mu.layouts import RUN2
from tau3mu.synth.events import SyntheticEvents, offsets_of
from tau3mu.synth.physics import HLT_PATHS, L1_SEEDS
from tau3mu.synth.truth import generated_particles, run2_flight_branches

#: C++ types of the branch list -> (kind, numpy dtype)
_TYPES: dict[str, tuple[str, Any]] = {
    "std::vector<double>": ("vector", np.float64),
    "std::vector<float>": ("vector", np.float32),
    "std::vector<int>": ("vector", np.int32),
    "std::vector<string>": ("strings", None),
    "uint": ("scalar", np.uint32),
    "int": ("scalar", np.int32),
}
#: branches beyond the real list: refitted muon tracks (the Run 2 phi_mass step) and truth
EXTRA_BRANCHES: tuple[tuple[str, str], ...] = (
    *(
        (RUN2.candidate()[f"mu{i}_refit_{k}"], "std::vector<double>")
        for i in (1, 2)
        for k in ("pt", "eta", "phi")
    ),
    (RUN2.truth, "std::vector<int>"),
)


def branch_list() -> list[tuple[str, str]]:
    """(name, C++ type) of the 270 branches of the real ``Tree3Mu/ntuple``."""
    text = resources.files("tau3mu.data").joinpath("tree3mu_branches.txt").read_text()
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip()]  # type: ignore[misc]


def multiplicity(name: str) -> str:
    """What one entry of a vector branch stands for, from the producer's naming."""
    if name.startswith("Trigger_hlt"):
        return "hlt"
    if name.startswith("Trigger_l1"):
        return "l1"
    if name.startswith("GenParticle_"):
        return "gen"
    if name.startswith("Muon") and "_HLT" in name:
        return "hlt_muon"
    if name.startswith("Muon"):
        return "muon"
    if name.startswith("Track_"):
        return "track"
    if name in ("PV_x", "PV_y", "PV_z", "PV_NTracks"):
        return "pv"
    if name in ("BS_x", "BS_y", "BS_z", "NGoodTriplets"):
        return "event"
    return "candidate"


def _filler_values(rng: np.random.Generator, name: str, n: int, dtype) -> np.ndarray:
    """Cheap plausible values for a branch the analysis does not read."""
    if np.dtype(dtype).kind == "i":
        return rng.integers(0, 4, n).astype(dtype)
    lowered = name.lower()
    if "eta" in lowered:
        values = rng.uniform(-2.4, 2.4, n)
    elif "phi" in lowered:
        values = rng.uniform(-np.pi, np.pi, n)
    elif "chi2" in lowered or "pt" in lowered or lowered.endswith("_p"):
        values = rng.exponential(3.0, n)
    elif lowered.startswith("is") or "_is" in lowered or "valid" in lowered:
        values = (rng.random(n) < 0.8).astype(np.float64)
    else:
        values = rng.normal(0.0, 1.0, n)
    return values.astype(np.float32).astype(dtype)


def _menus(
    menu_of_event: np.ndarray, menus: list[list[tuple[str, int]]], fired: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised ``vector<string>`` content and decisions from a few distinct menus.

    ``menus[m]`` lists (name, index of its decision row in ``fired``); event i uses menu
    ``menu_of_event[i]``. Returns (event offsets, string offsets, chars, decisions).
    """
    names = [name.encode() for menu in menus for name, _ in menu]
    rows = np.array([row for menu in menus for _, row in menu], dtype=np.int64)
    per_menu = np.array([len(menu) for menu in menus], dtype=np.int64)
    menu_start = offsets_of(per_menu)[:-1]
    name_len = np.array([len(x) for x in names], dtype=np.int64)
    name_start = offsets_of(name_len)[:-1]
    table = np.frombuffer(b"".join(names), dtype=np.uint8)
    counts = per_menu[menu_of_event]
    event_offsets = offsets_of(counts)
    ev = np.repeat(np.arange(len(counts)), counts)
    string_id = menu_start[menu_of_event][ev] + (np.arange(len(ev)) - event_offsets[ev])
    lengths = name_len[string_id]
    string_offsets = offsets_of(lengths)
    owner = np.repeat(np.arange(len(string_id)), lengths)
    chars = table[name_start[string_id][owner] + (np.arange(len(owner)) - string_offsets[owner])]
    decisions = fired[rows[string_id], ev].astype(np.int32)
    return event_offsets, string_offsets, np.ascontiguousarray(chars), decisions


def run2_columns(
    events: SyntheticEvents, *, seed: int, era: str = "2017", truth: bool = True, mc: bool = False
) -> dict[str, tuple[str, Any]]:
    """Per branch of the Run 2 tree, in the real tree's order: (kind, data) ready for the
    C++ filler of :mod:`tau3mu.synth.run2`.

    kind "double"/"float"/"int": data (event offsets, values); "strings": (event offsets,
    string offsets, chars); "scalar_u"/"scalar_i": the per-event values. ``era``'s year
    names the trigger-match branches; ``truth``: write the truth branch; ``mc``: the
    generated particles (where ``events.origin`` was drawn).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB2A]))
    n = len(events)
    n_pv = 12 + rng.poisson(18, n)
    generated = generated_particles(events) if mc and events.origin is not None else None
    n_gen = generated[0] if generated else np.full(n, 6 if mc else 0, dtype=np.int64)
    n_hlt_mu = 1 + rng.poisson(1.2, n)
    counts = {
        "candidate": events.candidates.counts,
        "muon": events.muons.counts,
        "track": events.tracks.counts,
        "pv": n_pv,
        "gen": n_gen,
        "hlt_muon": n_hlt_mu,
        "event": np.ones(n, dtype=np.int64),
    }
    offsets = {key: offsets_of(value) for key, value in counts.items()}
    # trigger menu: several paths and seeds per event, with versions in the HLT names
    hlt, l1 = _trigger_menus(events, rng)
    year = str(year_of(era))
    known = _known_columns(events, year, truth, generated, n_pv, rng)
    scalars = _scalars(events, n_pv, rng)
    replaced = run2_flight_branches(events.candidates.columns)
    columns: dict[str, tuple[str, Any]] = {}
    for name, cpp in _branch_layout(year, truth):
        kind, dtype = _TYPES[cpp]
        if kind == "scalar":
            columns[name] = (
                "scalar_u" if dtype == np.uint32 else "scalar_i",
                np.ascontiguousarray(scalars[name], dtype=dtype),
            )
        elif kind == "strings":
            columns[name] = ("strings", hlt[:3] if "hlt" in name else l1[:3])
        elif name == RUN2.hlt_decision:
            columns[name] = ("int", (hlt[0], hlt[3]))
        elif name == RUN2.l1_decision:
            columns[name] = ("int", (l1[0], l1[3]))
        elif name == "Trigger_l1prescale":
            columns[name] = ("int", (l1[0], np.ones(len(l1[3]), np.int32)))
        else:
            what, data = known.get(name, (multiplicity(name), None))
            off = offsets[what]
            if data is None:
                data = _filler_values(rng, name, int(off[-1]), dtype)
                data = replaced.get(name, data)  # after its filler: later draws unchanged
            data = np.ascontiguousarray(data, dtype=dtype)
            cpp_kind = {np.float64: "double", np.float32: "float", np.int32: "int"}[dtype]
            columns[name] = (cpp_kind, (off, data))
    return columns


def _branch_layout(year: str, truth: bool) -> list[tuple[str, str]]:
    """(name, C++ type) of every branch written: the real tree's, then EXTRA_BRANCHES
    (the truth branch only with ``truth``); the trigger-match branches named after the
    era's ``year``, as in the real tree."""
    layout = branch_list() + [b for b in EXTRA_BRANCHES if truth or b[0] != RUN2.truth]
    return [
        (name.replace("_dRtriggerMatch_2017", f"_dRtriggerMatch_{year}"), cpp)
        for name, cpp in layout
    ]


def _known_columns(
    events: SyntheticEvents,
    year: str,
    truth: bool,
    generated: tuple[np.ndarray, dict[str, np.ndarray]] | None,
    n_pv: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, tuple[str, np.ndarray]]:
    """Branch -> (multiplicity, values) of the branches with simulated content; draws
    the PV track counts from ``rng``."""
    cand, muon, track = events.candidates, events.muons, events.tracks
    known: dict[str, tuple[str, np.ndarray]] = {}
    for key, branch in RUN2.candidate(year).items():
        known[branch] = ("candidate", cand.columns[key])
    for key, branch in RUN2.muon.items():
        known[branch] = ("muon", muon.columns[key])
    for key, branch in RUN2.track.items():
        known[branch] = ("track", track.columns[key])
    e_mu = np.sqrt((muon.columns["pt"] * np.cosh(muon.columns["eta"])) ** 2 + MUON_MASS**2)
    known.update(
        {
            "MuonCharge": ("muon", muon.columns["charge"]),
            "MuonEnergy": ("muon", e_mu),
            "Track_charge": ("track", track.columns["charge"]),
            "Triplet2_Pt": ("candidate", cand.columns["pt"]),
            "Triplet2_Eta": ("candidate", cand.columns["eta"]),
            "Triplet2_Phi": ("candidate", cand.columns["phi"]),
            "Triplet2_Charge": ("candidate", cand.columns["charge"]),
            "Mu01_dRtriggerMatch": ("candidate", cand.columns["mu1_trig_dr"]),
            "Mu02_dRtriggerMatch": ("candidate", cand.columns["mu2_trig_dr"]),
            "NGoodTriplets": ("event", cand.counts),
            "PV_NTracks": ("pv", rng.poisson(25, int(n_pv.sum()))),
        }
    )
    if truth:
        known[RUN2.truth] = ("candidate", cand.columns["truth"])
    known |= {name: ("gen", values) for name, values in (generated or ({}, {}))[1].items()}
    return known


def _scalars(
    events: SyntheticEvents, n_pv: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The per-event scalar branches; draws the pileup from ``rng``."""
    return {
        "evt": events.event.astype(np.uint32),
        "run": events.run,
        "lumi": events.lumi,
        "nPileUpInt": rng.poisson(30, len(events)),
        "MuonCollectionSize": events.muons.counts,
        "TripletCollectionSize2": events.candidates.counts,
        "PVCollection_Size": n_pv,
        "SelectedTripletsSize": events.candidates.counts,
    }


def _trigger_menus(events: SyntheticEvents, rng: np.random.Generator) -> tuple[tuple, tuple]:
    """Per event, the HLT paths (with version suffix) and L1 seeds the producer kept.

    Every event lists the Tau3mu path (version per file) and the LowMass path; most also
    the IsoTau path; some lack the L1_SingleMu22 seed. Decisions come from the simulation.
    """
    n = len(events)
    hlt_fired = np.stack([np.asarray(events.hlt[p], dtype=bool) for p in HLT_PATHS])
    l1_fired = np.stack([np.asarray(events.l1[s], dtype=bool) for s in L1_SEEDS])
    versions = np.unique(events.hlt_version) if n else np.array([8])
    drop = rng.integers(0, 12, n)
    hlt_menus, l1_menus = [], []
    for version in versions:
        base = [(f"{HLT_PATHS[0]}_v{version}", 0), (f"{HLT_PATHS[1]}_v{3 + version % 4}", 1)]
        hlt_menus += [base, [*base, (f"{HLT_PATHS[2]}_v{max(version - 6, 1)}", 2)]]
    l1_menus = [
        [(s, i) for i, s in enumerate(L1_SEEDS)],
        [(s, i) for i, s in enumerate(L1_SEEDS[:3])],
    ]
    version_index = np.searchsorted(versions, events.hlt_version)
    hlt_menu = 2 * version_index + (drop != 0)
    l1_menu = (drop == 1).astype(np.int64)
    return _menus(hlt_menu, hlt_menus, hlt_fired), _menus(l1_menu, l1_menus, l1_fired)


__all__ = ["EXTRA_BRANCHES", "branch_list", "multiplicity", "run2_columns"]
