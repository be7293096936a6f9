"""Write simulated events in the Run 2 layout: ``Tree3Mu/ntuple`` with ``std::vector`` branches.

uproot writes jagged data only as C arrays with counters and cannot write
``vector<string>``, so this writer uses ROOT (the ``validation`` extra). The event loop
runs in compiled C++ (declared once through cling): Python hands it pointers to flat
numpy buffers (offsets and contents) per branch, and C++ copies each event's slice into
the branch's ``std::vector`` and fills. All 270 branches of the real tree are written
(``data/tree3mu_branches.txt``), plus the refitted muon tracks the selection needs and
the truth branch; :mod:`tau3mu.synth.run2_branches` says what each holds.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from tau3mu.layouts import RUN2
from tau3mu.synth.events import SyntheticEvents
from tau3mu.synth.run2_branches import run2_columns

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


__all__ = ["ROOTMissingError", "load_root", "run2_columns", "write_run2"]
