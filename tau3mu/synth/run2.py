"""Write simulated events in the Run 2 layout: ``Tree3Mu/ntuple`` with ``std::vector`` branches.

uproot writes jagged data only as C arrays with counters and cannot write
``vector<string>``, so this writer uses ROOT (the ``validation`` extra). The event loop
runs in compiled C++ (declared once through cling): Python hands it pointers to flat
numpy buffers (offsets and contents) per branch, and C++ copies each event's slice into
the branch's ``std::vector`` and fills. All 270 branches of the real tree are written
(``data/tree3mu_branches.txt``), those the analysis does not read with
plausible values of the right multiplicity, plus the refitted muon tracks the selection
needs and the truth branch.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tau3mu.config import MUON_MASS
from tau3mu.eras import year_of
from tau3mu.layouts import RUN2
from tau3mu.synth.events import SyntheticEvents, offsets_of
from tau3mu.synth.physics import HLT_PATHS, L1_SEEDS
from tau3mu.synth.truth import generated_particles, run2_flight_branches

#: C++ types of the branch list -> (kind, numpy dtype)
_TYPES = {
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

_CPP = r"""
#include <TTree.h>
#include <memory>
#include <string>
#include <vector>

namespace tau3mu_synth {
template <typename T>
struct Vec { std::vector<T> buffer; const long long* offsets; const T* data; };
struct Str { std::vector<std::string> buffer; const long long* events; const long long* strings; const char* chars; };
template <typename T>
struct Scalar { T value; const T* data; };

class Filler {
 public:
  explicit Filler(TTree* tree) : tree_(tree) {}
  void add_double(const char* name, long long offsets, long long data) { add_vec(vd_, name, offsets, data); }
  void add_float(const char* name, long long offsets, long long data) { add_vec(vf_, name, offsets, data); }
  void add_int(const char* name, long long offsets, long long data) { add_vec(vi_, name, offsets, data); }
  void add_strings(const char* name, long long events, long long strings, long long chars) {
    auto b = std::make_unique<Str>();
    b->events = reinterpret_cast<const long long*>(events);
    b->strings = reinterpret_cast<const long long*>(strings);
    b->chars = reinterpret_cast<const char*>(chars);
    tree_->Branch(name, &b->buffer);
    vs_.push_back(std::move(b));
  }
  void add_uint_scalar(const char* name, long long data) {
    auto b = std::make_unique<Scalar<unsigned int>>();
    b->data = reinterpret_cast<const unsigned int*>(data);
    tree_->Branch(name, &b->value, (std::string(name) + "/i").c_str());
    su_.push_back(std::move(b));
  }
  void add_int_scalar(const char* name, long long data) {
    auto b = std::make_unique<Scalar<int>>();
    b->data = reinterpret_cast<const int*>(data);
    tree_->Branch(name, &b->value, (std::string(name) + "/I").c_str());
    si_.push_back(std::move(b));
  }
  void fill(long long n) {
    for (long long i = 0; i < n; ++i) {
      for (auto& b : vd_) b->buffer.assign(b->data + b->offsets[i], b->data + b->offsets[i + 1]);
      for (auto& b : vf_) b->buffer.assign(b->data + b->offsets[i], b->data + b->offsets[i + 1]);
      for (auto& b : vi_) b->buffer.assign(b->data + b->offsets[i], b->data + b->offsets[i + 1]);
      for (auto& b : vs_) {
        b->buffer.clear();
        for (long long s = b->events[i]; s < b->events[i + 1]; ++s)
          b->buffer.emplace_back(b->chars + b->strings[s], b->strings[s + 1] - b->strings[s]);
      }
      for (auto& b : su_) b->value = b->data[i];
      for (auto& b : si_) b->value = b->data[i];
      tree_->Fill();
    }
  }

 private:
  template <typename T>
  void add_vec(std::vector<std::unique_ptr<Vec<T>>>& into, const char* name, long long offsets, long long data) {
    auto b = std::make_unique<Vec<T>>();
    b->offsets = reinterpret_cast<const long long*>(offsets);
    b->data = reinterpret_cast<const T*>(data);
    tree_->Branch(name, &b->buffer);
    into.push_back(std::move(b));
  }
  TTree* tree_;
  std::vector<std::unique_ptr<Vec<double>>> vd_;
  std::vector<std::unique_ptr<Vec<float>>> vf_;
  std::vector<std::unique_ptr<Vec<int>>> vi_;
  std::vector<std::unique_ptr<Str>> vs_;
  std::vector<std::unique_ptr<Scalar<unsigned int>>> su_;
  std::vector<std::unique_ptr<Scalar<int>>> si_;
};
}  // namespace tau3mu_synth
"""


class ROOTMissingError(ImportError):
    """ROOT is needed to write the Run 2 layout (std::vector and vector<string> branches)."""


@functools.cache
def load_root() -> Any:
    """ROOT in batch mode with the filler declared, once per process (ROOTMissingError)."""
    try:
        import ROOT
    except ImportError as err:
        raise ROOTMissingError(
            "writing the Run 2 layout (std::vector and vector<string> branches) needs ROOT, "
            "which uproot cannot replace here; install it with "
            "`pip install 'tau3mu[validation]'` (or `pip install root`), or generate "
            "`--layout run3`"
        ) from err
    ROOT.gROOT.SetBatch(True)
    ROOT.gInterpreter.Declare(_CPP)
    return ROOT


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
    """Per branch: (kind, data) ready for the C++ filler, in the real tree's order."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB2A]))
    n = len(events)
    cand, muon, track = events.candidates, events.muons, events.tracks
    n_pv = 12 + rng.poisson(18, n)
    generated = generated_particles(events) if mc and events.origin is not None else None
    n_gen = generated[0] if generated else np.full(n, 6 if mc else 0, dtype=np.int64)
    n_hlt_mu = 1 + rng.poisson(1.2, n)
    counts = {
        "candidate": cand.counts,
        "muon": muon.counts,
        "track": track.counts,
        "pv": n_pv,
        "gen": n_gen,
        "hlt_muon": n_hlt_mu,
        "event": np.ones(n, dtype=np.int64),
    }
    offsets = {key: offsets_of(value) for key, value in counts.items()}
    # trigger menu: several paths and seeds per event, with versions in the HLT names
    (
        (hlt_event_offsets, hlt_string_offsets, hlt_chars, hlt_decision),
        (
            l1_event_offsets,
            l1_string_offsets,
            l1_chars,
            l1_decision,
        ),
    ) = _trigger_menus(events, rng)

    known: dict[str, tuple[str, np.ndarray]] = {}
    year = str(year_of(era))
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
    replaced = run2_flight_branches(cand.columns)
    scalars = {
        "evt": events.event.astype(np.uint32),
        "run": events.run,
        "lumi": events.lumi,
        "nPileUpInt": rng.poisson(30, n),
        "MuonCollectionSize": muon.counts,
        "TripletCollectionSize2": cand.counts,
        "PVCollection_Size": n_pv,
        "SelectedTripletsSize": cand.counts,
    }
    columns: dict[str, tuple[str, Any]] = {}
    layout = branch_list() + [b for b in EXTRA_BRANCHES if truth or b[0] != RUN2.truth]
    # the real tree names its trigger-match branches after its era's year
    layout = [
        (name.replace("_dRtriggerMatch_2017", f"_dRtriggerMatch_{year}"), cpp)
        for name, cpp in layout
    ]
    for name, cpp in layout:
        kind, dtype = _TYPES[cpp]
        if kind == "scalar":
            columns[name] = (
                "scalar_u" if dtype == np.uint32 else "scalar_i",
                np.ascontiguousarray(scalars[name], dtype=dtype),
            )
        elif kind == "strings":
            columns[name] = (
                "strings",
                (hlt_event_offsets, hlt_string_offsets, hlt_chars)
                if "hlt" in name
                else (l1_event_offsets, l1_string_offsets, l1_chars),
            )
        elif name == RUN2.hlt_decision:
            columns[name] = ("int", (hlt_event_offsets, hlt_decision))
        elif name == RUN2.l1_decision:
            columns[name] = ("int", (l1_event_offsets, l1_decision))
        elif name == "Trigger_l1prescale":
            columns[name] = ("int", (l1_event_offsets, np.ones(len(l1_decision), np.int32)))
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


def write_run2(
    path: str | Path,
    events: SyntheticEvents,
    *,
    seed: int = 0,
    era: str = "2017",
    compression: str = "zlib",
    compression_level: int = 1,
    truth: bool = True,
    mc: bool = False,
) -> Path:
    """Write ``events`` as a Run 2 ``Tree3Mu/ntuple`` file with ROOT."""
    ROOT = load_root()
    algorithms = {"zlib": 1, "lzma": 2, "lz4": 4, "zstd": 5}
    if compression not in algorithms:
        raise ValueError(f"unknown compression {compression!r}; use one of {sorted(algorithms)}")
    columns = run2_columns(events, seed=seed, era=era, truth=truth, mc=mc)
    path = Path(path)
    directory, tree_name = RUN2.tree.split("/")
    out = ROOT.TFile.Open(
        str(path), "RECREATE", "", algorithms[compression] * 100 + compression_level
    )
    if not out or out.IsZombie():
        raise OSError(f"cannot create {path}")
    try:
        out.mkdir(directory).cd()
        tree = ROOT.TTree(tree_name, tree_name)
        filler = ROOT.tau3mu_synth.Filler(tree)
        keep_alive = []
        for name, (kind, data) in columns.items():
            if kind in ("double", "float", "int"):
                off, values = data
                keep_alive += [off, values]
                getattr(filler, f"add_{kind}")(name, off.ctypes.data, values.ctypes.data)
            elif kind == "strings":
                keep_alive += list(data)
                filler.add_strings(name, *(a.ctypes.data for a in data))
            elif kind == "scalar_u":
                keep_alive.append(data)
                filler.add_uint_scalar(name, data.ctypes.data)
            else:
                keep_alive.append(data)
                filler.add_int_scalar(name, data.ctypes.data)
        filler.fill(len(events))
        out.Write()
    finally:
        out.Close()
    return path


__all__ = ["EXTRA_BRANCHES", "ROOTMissingError", "branch_list", "multiplicity", "write_run2"]
