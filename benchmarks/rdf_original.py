"""The original RDataFrame pipeline, corrected per SPEC section 6, on Run 2 layout files.

JIT-compiled C++ strings in the style of the original notebook, with its defects fixed:

1. muon matching ``match(copy, collection)`` with the arguments in the right order,
   returning per-candidate indices into the collection;
2. the track matched against the track collection, not the muons;
3. the muon ID read at the matched index;
4. the per-candidate masks combined with AND, and the best candidate chosen among the
   survivors only;
5. the track impact-parameter cut two-sided on absolute values.

Cut values come from :class:`tau3mu.config.SelectionConfig`, branch names from
:mod:`tau3mu.layouts`. One event loop books the histogram and every cutflow counter.

Usage: ``python benchmarks/rdf_original.py FILE [FILE ...] [--threads N] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from tau3mu.config import CUTFLOW_STEPS, SelectionConfig
from tau3mu.layouts import RUN2

_HELPERS = r"""
#include <ROOT/RVec.hxx>
#include <cmath>
#include <string>
using ROOT::RVecD; using ROOT::RVecF; using ROOT::RVecI; using ROOT::RVecB;
namespace tau3mu_rdf {
// index of the first collection entry equal to each candidate's copy, -1 for none
template <typename C, typename T>
RVecI match(const C& cand_pt, const C& cand_eta, const C& cand_phi,
            const T& pt, const T& eta, const T& phi, bool as_float) {
  RVecI out(cand_pt.size(), -1);
  for (size_t i = 0; i < cand_pt.size(); ++i) {
    for (size_t j = 0; j < pt.size(); ++j) {
      bool same = as_float ? ((float)cand_pt[i] == (float)pt[j] && (float)cand_eta[i] == (float)eta[j] &&
                              (float)cand_phi[i] == (float)phi[j])
                           : (cand_pt[i] == pt[j] && cand_eta[i] == eta[j] && cand_phi[i] == phi[j]);
      if (same) { out[i] = j; break; }
    }
  }
  return out;
}
template <typename T>
RVecD take(const T& values, const RVecI& index, double fill) {
  RVecD out(index.size(), fill);
  for (size_t i = 0; i < index.size(); ++i)
    if (index[i] >= 0 && index[i] < (int)values.size()) out[i] = values[index[i]];
  return out;
}
bool any_fired(const ROOT::RVec<std::string>& names, const RVecI& decisions, const std::vector<std::string>& patterns) {
  for (size_t i = 0; i < names.size() && i < decisions.size(); ++i) {
    if (!decisions[i]) continue;
    for (auto& p : patterns) if (names[i].find(p) != std::string::npos) return true;
  }
  return false;
}
double dphi(double a, double b) { double d = std::fmod(a - b + M_PI, 2 * M_PI); if (d < 0) d += 2 * M_PI; return d - M_PI; }
RVecD delta_r(const RVecD& e1, const RVecD& p1, const RVecD& e2, const RVecD& p2) {
  RVecD out(e1.size());
  for (size_t i = 0; i < e1.size(); ++i) out[i] = std::hypot(e1[i] - e2[i], dphi(p1[i], p2[i]));
  return out;
}
RVecD pair_mass(const RVecD& pt1, const RVecD& eta1, const RVecD& phi1,
                const RVecD& pt2, const RVecD& eta2, const RVecD& phi2, double m) {
  RVecD out(pt1.size(), NAN);
  for (size_t i = 0; i < pt1.size(); ++i) {
    if (!(pt1[i] > 0 && pt2[i] > 0)) continue;  // -99: the refit failed
    double px = pt1[i] * std::cos(phi1[i]) + pt2[i] * std::cos(phi2[i]);
    double py = pt1[i] * std::sin(phi1[i]) + pt2[i] * std::sin(phi2[i]);
    double z1 = pt1[i] * std::sinh(eta1[i]), z2 = pt2[i] * std::sinh(eta2[i]);
    double e1 = std::sqrt(pt1[i] * pt1[i] + z1 * z1 + m * m), e2 = std::sqrt(pt2[i] * pt2[i] + z2 * z2 + m * m);
    double m2 = (e1 + e2) * (e1 + e2) - px * px - py * py - (z1 + z2) * (z1 + z2);
    out[i] = std::sqrt(m2 > 0 ? m2 : 0.);
  }
  return out;
}
int best(const RVecD& chi2, const RVecB& pass) {
  int b = -1;
  for (size_t i = 0; i < chi2.size(); ++i)
    if (pass[i] && !std::isnan(chi2[i]) && (b < 0 || chi2[i] < chi2[b])) b = i;
  return b;
}
}  // namespace tau3mu_rdf
"""


def _steps(c: SelectionConfig) -> dict[str, str]:
    """Per-candidate masks of steps 2-10 as C++ expressions."""
    acc = (
        "((abs({e}) < {b} && {p} > {bp}) || (abs({e}) >= {b} && abs({e}) < {ee} && {p} > {ep}))"
    )

    def accept(p: str, e: str) -> str:
        return acc.format(p=p, e=e, b=c.barrel_max_abseta, bp=c.barrel_min_pt, ee=c.endcap_max_abseta, ep=c.endcap_min_pt)

    lo, hi = c.delta_r_window
    return {
        "mass_window": f"(mass > {c.mass_window[0]} && mass < {c.mass_window[1]})",
        "pv_tracks": f"(pv_ntracks > {c.min_pv_tracks})",
        "flight_significance": f"(flight_sig > {c.min_flight_significance})",
        "acceptance": f"({accept('mu1_pt', 'mu1_eta')} && {accept('mu2_pt', 'mu2_eta')} && trk_pt > {c.track_min_pt})",
        "delta_r": f"(dr12 > {lo} && dr12 < {hi} && dr1t > {lo} && dr1t < {hi} && dr2t > {lo} && dr2t < {hi})",
        "muon_id": "(mu1_global > 0 && mu1_pf > 0 && mu2_global > 0 && mu2_pf > 0)",
        "track_ip": f"(abs(trk_dz) < {c.max_track_abs_dz} && abs(trk_dxy) < {c.max_track_abs_dxy})",
        "phi_mass": f"(phi_mass > {c.phi_mass_window[0]} && phi_mass < {c.phi_mass_window[1]})",
        "trigger_match": f"(mu1_trig_dr < {c.max_trigger_dr} && mu2_trig_dr < {c.max_trigger_dr})",
    }


def run_rdf(
    files: list[str], treename: str = RUN2.tree, config: SelectionConfig | None = None, threads: int = 1
) -> dict[str, Any]:
    """h_mass counts, the cutflow and timings of the corrected original pipeline."""
    import ROOT

    c = config or SelectionConfig()
    tic = time.perf_counter()
    if threads > 1:
        ROOT.EnableImplicitMT(threads)
    elif ROOT.IsImplicitMTEnabled():
        ROOT.DisableImplicitMT()
    if not hasattr(ROOT, "tau3mu_rdf"):
        ROOT.gInterpreter.Declare(_HELPERS)
    cand = RUN2.candidate(c.era)
    df = ROOT.RDataFrame(treename, files)
    patterns_hlt = "{" + ", ".join(f'"{p}"' for p in (c.hlt_pattern,)) + "}"
    patterns_l1 = "{" + ", ".join(f'"{p}"' for p in c.l1_patterns) + "}"
    df = df.Define(
        "trigger",
        f"tau3mu_rdf::any_fired({RUN2.hlt_name}, {RUN2.hlt_decision}, {patterns_hlt}) && "
        f"tau3mu_rdf::any_fired({RUN2.l1_name}, {RUN2.l1_decision}, {patterns_l1})",
    )
    for key in ("mass", "vtx_chi2", "pv_ntracks", "flight_sig", "mu1_pt", "mu1_eta", "mu1_phi", "mu2_pt",
                "mu2_eta", "mu2_phi", "trk_pt", "trk_eta", "trk_phi", "mu1_trig_dr", "mu2_trig_dr"):
        df = df.Alias(key, cand[key])
    m, t = RUN2.muon, RUN2.track
    for i in ("1", "2"):
        df = df.Define(f"mu{i}_idx", f"tau3mu_rdf::match(mu{i}_pt, mu{i}_eta, mu{i}_phi, {m['pt']}, {m['eta']}, {m['phi']}, true)")
        df = df.Define(f"mu{i}_global", f"tau3mu_rdf::take({m['is_global']}, mu{i}_idx, 0.)")
        df = df.Define(f"mu{i}_pf", f"tau3mu_rdf::take({m['is_pf']}, mu{i}_idx, 0.)")
    df = df.Define("trk_idx", f"tau3mu_rdf::match(trk_pt, trk_eta, trk_phi, {t['pt']}, {t['eta']}, {t['phi']}, false)")
    df = df.Define("trk_dz", f"tau3mu_rdf::take({t['dz']}, trk_idx, NAN)")
    df = df.Define("trk_dxy", f"tau3mu_rdf::take({t['dxy']}, trk_idx, NAN)")
    df = df.Define("dr12", "tau3mu_rdf::delta_r(mu1_eta, mu1_phi, mu2_eta, mu2_phi)")
    df = df.Define("dr1t", "tau3mu_rdf::delta_r(mu1_eta, mu1_phi, trk_eta, trk_phi)")
    df = df.Define("dr2t", "tau3mu_rdf::delta_r(mu2_eta, mu2_phi, trk_eta, trk_phi)")
    refit = [cand[f"mu{i}_refit_{k}"] for i in (1, 2) for k in ("pt", "eta", "phi")]
    df = df.Define("phi_mass", f"tau3mu_rdf::pair_mass({', '.join(refit)}, {c.muon_mass})")
    df = df.Define("ncand", "(int)mass.size()")
    df = df.Define("trigger_events", "(int)trigger").Define("trigger_cands", "trigger ? ncand : 0")
    booked: dict[str, tuple[Any, Any]] = {"events": (df.Count(), df.Sum("ncand"))}
    booked["trigger"] = (df.Sum("trigger_events"), df.Sum("trigger_cands"))
    previous = "trigger"
    for label, step in _steps(c).items():
        # AND with the candidates that passed every step so far (SPEC 6, defect 4)
        df = df.Define(f"pass_{label}", f"ROOT::RVecB({step} && {previous})")
        previous = f"pass_{label}"
        df = df.Define(f"n_{label}", f"(int)ROOT::VecOps::Sum(pass_{label})")
        df = df.Define(f"e_{label}", f"(int)(n_{label} > 0)")
        booked[label] = (df.Sum(f"e_{label}"), df.Sum(f"n_{label}"))
    last = list(_steps(c))[-1]
    df = df.Define("best", f"tau3mu_rdf::best(vtx_chi2, pass_{last})")
    selected = df.Filter("best >= 0")
    axis = c.mass_axis
    h = selected.Define("best_mass", "mass[best]").Histo1D(("h_mass", "", axis.bins, axis.start, axis.stop), "best_mass")
    booked["best_candidate"] = (selected.Count(), selected.Count())
    setup = time.perf_counter()
    values = h.GetValue()  # runs the one event loop
    loop = time.perf_counter()
    cutflow = {label: [int(a.GetValue()), int(b.GetValue())] for label, (a, b) in booked.items()}
    counts = np.array([values.GetBinContent(i + 1) for i in range(axis.bins)])
    done = time.perf_counter()
    return {
        "h_mass": counts.tolist(),
        "cutflow": cutflow,
        "n_events": cutflow["events"][0],
        "timing": {"jit_and_setup_s": setup - tic, "event_loop_s": loop - setup, "total_s": done - tic},
        "threads": threads,
        "order": ["events", *CUTFLOW_STEPS, "best_candidate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--tree", default=RUN2.tree)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    result = run_rdf(args.files, args.tree, threads=args.threads)
    for label in result["order"]:
        events, cands = result["cutflow"][label]
        print(f"{label:<22}{events:>12,}{cands:>14,}")
    t = result["timing"]
    print(f"{result['n_events']:,} events; JIT+setup {t['jit_and_setup_s']:.1f} s, event loop {t['event_loop_s']:.1f} s "
          f"({1e6 * t['event_loop_s'] / max(result['n_events'], 1):.1f} us/event), {args.threads} thread(s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
