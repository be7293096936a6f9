"""The original RDataFrame pipeline, corrected (``docs/physics.md``, "Defects"), and the
group's Run 3 selection, in RDataFrame: the ROOT cross-check of both periods.

JIT-compiled C++ strings in the style of the original notebook, with its defects fixed:

1. muon matching ``match(copy, collection)`` with the arguments in the right order,
   returning per-candidate indices into the collection;
2. the track matched against the track collection, not the muons;
3. the muon ID read at the matched index;
4. the per-candidate masks combined with AND, and the best candidate chosen among the
   survivors only;
5. the track impact-parameter cut two-sided on absolute values.

Cut values come from :class:`tau3mu.config.SelectionConfig`; Run 2 branch names from
:mod:`tau3mu.layouts`. One event loop books the histogram and every cutflow counter.

Run 3 (``--layout run3``): the group's Run 3 selection on its NanoAOD producer's files,
spelled here with the producer's branch names (``Cand2MuTrk_*``, ``Muon_*``, ``Track_*``,
``Trigger_*``), the phi mass from ROOT's own ``PtEtaPhiEVector``.

Usage: ``python benchmarks/rdf_original.py FILE [FILE ...] [--layout run2|run3] [--era ERA]
[--threads N] [--scheduler ADDRESS [--npartitions N]] [--json OUT]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from typing import Any

import numpy as np

from tau3mu.config import Run2Selection, Run3Selection, SelectionConfig
from tau3mu.layouts import RUN2

_HELPERS = r"""
#ifndef TAU3MU_RDF_HELPERS
#define TAU3MU_RDF_HELPERS
#include <ROOT/RVec.hxx>
#include <Math/Vector4D.h>
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
template <typename T>
RVecD delta_r(const T& e1, const T& p1, const T& e2, const T& p2) {
  RVecD out(e1.size());
  for (size_t i = 0; i < e1.size(); ++i) out[i] = std::hypot(double(e1[i]) - double(e2[i]), dphi(p1[i], p2[i]));
  return out;
}
template <typename T>
RVecD pair_mass(const T& pt1, const T& eta1, const T& phi1,
                const T& pt2, const T& eta2, const T& phi2, double m) {
  RVecD out(pt1.size(), NAN);
  for (size_t i = 0; i < pt1.size(); ++i) {
    if (!(pt1[i] > 0 && pt2[i] > 0)) continue;  // -99: the refit failed
    double a = pt1[i], b = pt2[i];
    double px = a * std::cos(double(phi1[i])) + b * std::cos(double(phi2[i]));
    double py = a * std::sin(double(phi1[i])) + b * std::sin(double(phi2[i]));
    double z1 = a * std::sinh(double(eta1[i])), z2 = b * std::sinh(double(eta2[i]));
    double e1 = std::sqrt(a * a + z1 * z1 + m * m), e2 = std::sqrt(b * b + z2 * z2 + m * m);
    double m2 = (e1 + e2) * (e1 + e2) - px * px - py * py - (z1 + z2) * (z1 + z2);
    out[i] = std::sqrt(m2 > 0 ? m2 : 0.);
  }
  return out;
}
template <typename T, typename E>
RVecD energy_mass(const T& pt1, const T& eta1, const T& phi1, const E& e1,
                  const T& pt2, const T& eta2, const T& phi2, const E& e2) {
  RVecD out(pt1.size(), NAN);
  for (size_t i = 0; i < pt1.size(); ++i) {
    ROOT::Math::PtEtaPhiEVector a(pt1[i], eta1[i], phi1[i], e1[i]), b(pt2[i], eta2[i], phi2[i], e2[i]);
    out[i] = (a + b).M();
  }
  return out;
}
template <typename T>
int best(const T& chi2, const RVecB& pass) {
  int b = -1;
  for (size_t i = 0; i < chi2.size(); ++i)
    if (pass[i] && !std::isnan(chi2[i]) && (b < 0 || chi2[i] < chi2[b])) b = i;
  return b;
}
}  // namespace tau3mu_rdf
#endif
"""


def _run_logged(ROOT: Any, action: Any) -> tuple[Any, float | None, float | None]:
    """``action.GetValue()`` with RDataFrame's info log on, parsed for the JIT and loop times.

    RDataFrame compiles the ``Define``/``Filter`` strings when the event loop starts, so
    the wall time of ``GetValue`` mixes JIT and event processing; its log tells them
    apart. Returns (value, jit seconds, loop seconds); None where the log said nothing.
    """
    level = getattr(ROOT.ELogLevel, "kInfo", None) or ROOT.ROOT.ELogLevel.kInfo
    verbosity = ROOT.RLogScopedVerbosity(ROOT.Detail.RDF.RDFLogChannel(), level)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 2)
        try:
            value = action.GetValue()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            del verbosity
        log.seek(0)
        text = log.read().decode(errors="replace")
    jit = re.search(r"Just-in-time compilation phase completed in ([0-9.eE+-]+) seconds", text)
    loop = re.search(r"Finished event loop number \d+ \([^,]*, ([0-9.eE+-]+)s elapsed\)", text)
    other = [line for line in text.splitlines() if "[ROOT.RDF]" not in line and line.strip()]
    if other:
        print("\n".join(other), file=sys.stderr)
    return value, float(jit.group(1)) if jit else None, float(loop.group(1)) if loop else None


def _accept(p: str, e: str, c: Run2Selection | Run3Selection, closed_barrel: bool) -> str:
    """Muon acceptance as C++: Run 2 barrel ``|eta| < b``, Run 3 barrel ``|eta| <= b``."""
    lt, ge = ("<=", ">") if closed_barrel else ("<", ">=")
    return (
        f"((abs({e}) {lt} {c.barrel_max_abseta} && {p} > {c.barrel_min_pt}) || "
        f"(abs({e}) {ge} {c.barrel_max_abseta} && abs({e}) < {c.endcap_max_abseta} && "
        f"{p} > {c.endcap_min_pt}))"
    )


def _run2_steps(c: Run2Selection) -> dict[str, str]:
    """Per-candidate masks of Run 2 steps 2-10 as C++ expressions."""
    lo, hi = c.delta_r_window
    mu1, mu2 = _accept("mu1_pt", "mu1_eta", c, False), _accept("mu2_pt", "mu2_eta", c, False)
    return {
        "mass_window": f"(mass > {c.mass_window[0]} && mass < {c.mass_window[1]})",
        "pv_tracks": f"(pv_ntracks > {c.min_pv_tracks})",
        "flight_significance": f"(flight_sig > {c.min_flight_significance})",
        "acceptance": f"({mu1} && {mu2} && trk_pt > {c.track_min_pt})",
        "delta_r": f"(dr12 > {lo} && dr12 < {hi} && dr1t > {lo} && dr1t < {hi} && dr2t > {lo} && dr2t < {hi})",
        "muon_id": "(mu1_global > 0 && mu1_pf > 0 && mu2_global > 0 && mu2_pf > 0)",
        "track_ip": f"(abs(trk_dz) < {c.max_track_abs_dz} && abs(trk_dxy) < {c.max_track_abs_dxy})",
        "phi_mass": f"(phi_mass > {c.phi_mass_window[0]} && phi_mass < {c.phi_mass_window[1]})",
        "trigger_match": f"(mu1_trig_dr < {c.max_trigger_dr} && mu2_trig_dr < {c.max_trigger_dr})",
    }


def _run3_steps(c: Run3Selection) -> dict[str, str]:
    """Per-candidate masks of the Run 3 steps after the trigger as C++ expressions."""
    accept = " && ".join(_accept(f"{p}_pt", f"{p}_eta", c, True) for p in ("mu1", "mu2", "trk"))

    def matched(p: str) -> str:
        return (
            f"({p}_hlt > 0 && abs({p}_trg_dr) < {c.max_trigger_dr} && "
            f"abs({p}_trg_dpt) < {c.max_trigger_dpt})"
        )

    lo, hi = c.phi_mass_window
    return {
        "acceptance": f"({accept})",
        "flight_significance": f"(Cand2MuTrk_flightDistBSSig >= {c.min_flight_significance})",
        "muon_id": "(mu1_global > 0 && mu1_medium > 0 && mu2_global > 0 && mu2_medium > 0)",
        "track_ip": f"(abs(trk_dz) < {c.max_track_abs_dz} && abs(trk_dxy) < {c.max_track_abs_dxy})",
        "phi_mass": f"(mu1_charge + mu2_charge == 0 && dimuon_mass >= {lo} && dimuon_mass <= {hi})",
        "mass_window": f"(Cand2MuTrk_mass >= {c.mass_window[0]} && Cand2MuTrk_mass <= {c.mass_window[1]})",
        "trigger_match": f"({matched('mu1')} && {matched('mu2')})",
    }


def _columns_run2(df: Any, c: Run2Selection, year: str) -> Any:
    """Run 2: string-matched trigger, candidate copies, muons and track matched by value."""
    cand = RUN2.candidate(year)
    names = {str(n) for n in df.GetColumnNames()}
    l1_decision = RUN2.l1_decision if RUN2.l1_decision in names else RUN2.l1_final_decision
    patterns_hlt = "{" + ", ".join(f'"{p}"' for p in (c.hlt_pattern,)) + "}"
    patterns_l1 = "{" + ", ".join(f'"{p}"' for p in c.l1_patterns) + "}"
    df = df.Define(
        "trigger",
        f"tau3mu_rdf::any_fired({RUN2.hlt_name}, {RUN2.hlt_decision}, {patterns_hlt}) && "
        f"tau3mu_rdf::any_fired({RUN2.l1_name}, {l1_decision}, {patterns_l1})",
    )
    for key in _CANDIDATE_COLUMNS + _KINEMATICS:
        df = df.Alias(key, cand[key])
    m, t = RUN2.muon, RUN2.track
    for i in ("1", "2"):
        df = df.Define(
            f"mu{i}_idx",
            f"tau3mu_rdf::match(mu{i}_pt, mu{i}_eta, mu{i}_phi, {m['pt']}, {m['eta']}, {m['phi']}, true)",
        )
        df = df.Define(f"mu{i}_global", f"tau3mu_rdf::take({m['is_global']}, mu{i}_idx, 0.)")
        df = df.Define(f"mu{i}_pf", f"tau3mu_rdf::take({m['is_pf']}, mu{i}_idx, 0.)")
    df = df.Define(
        "trk_idx",
        f"tau3mu_rdf::match(trk_pt, trk_eta, trk_phi, {t['pt']}, {t['eta']}, {t['phi']}, false)",
    )
    df = df.Define("trk_dz", f"tau3mu_rdf::take({t['dz']}, trk_idx, NAN)")
    df = df.Define("trk_dxy", f"tau3mu_rdf::take({t['dxy']}, trk_idx, NAN)")
    df = df.Define("dr12", "tau3mu_rdf::delta_r(mu1_eta, mu1_phi, mu2_eta, mu2_phi)")
    df = df.Define("dr1t", "tau3mu_rdf::delta_r(mu1_eta, mu1_phi, trk_eta, trk_phi)")
    df = df.Define("dr2t", "tau3mu_rdf::delta_r(mu2_eta, mu2_phi, trk_eta, trk_phi)")
    refit = [f"mu{i}_refit_{k}" for i in (1, 2) for k in ("pt", "eta", "phi")]
    df = df.Define("phi_mass", f"tau3mu_rdf::pair_mass({', '.join(refit)}, {c.muon_mass})")
    return df.Alias("best_chi2", "vtx_chi2")


def _columns_run3(df: Any, c: Run3Selection) -> Any:
    """Run 3: the producer's uint8 trigger bits, muons and track through the index links."""
    names = {str(n) for n in df.GetColumnNames()}

    def any_bit(wanted: tuple[str, ...]) -> str:
        bits = [f"Trigger_{b} == 1" for b in wanted if f"Trigger_{b}" in names]
        return "(" + (" || ".join(bits) or "false") + ")"

    df = df.Define("trigger", f"{any_bit(c.hlt_paths)} && {any_bit(c.l1_seeds)}")
    links = {"mu1": "Cand2MuTrk_mu1_idx", "mu2": "Cand2MuTrk_mu2_idx", "trk": "Cand2MuTrk_tr_idx"}
    fields = {
        "mu": ("pt", "eta", "phi", "energy", "charge", "trgDR", "trgDPT"),
        "trk": ("pt", "eta", "phi", "dz", "dxy"),
    }
    short = {"trgDR": "trg_dr", "trgDPT": "trg_dpt"}
    flags = [f"Muon_{p}" for p in c.matched_paths if f"Muon_{p}" in names]
    for prefix, link in links.items():
        collection = "Track" if prefix == "trk" else "Muon"
        for k in fields["trk" if prefix == "trk" else "mu"]:
            df = df.Define(
                f"{prefix}_{short.get(k, k)}", f"tau3mu_rdf::take({collection}_{k}, {link}, NAN)"
            )
        if prefix != "trk":
            df = df.Define(f"{prefix}_global", f"tau3mu_rdf::take(Muon_isGlobal, {link}, 0.)")
            df = df.Define(f"{prefix}_medium", f"tau3mu_rdf::take(Muon_isMedium, {link}, 0.)")
            matched = " + ".join(f"tau3mu_rdf::take({flag}, {link}, 0.)" for flag in flags) or "0."
            df = df.Define(f"{prefix}_hlt", matched)
    energy = "mu1_pt, mu1_eta, mu1_phi, mu1_energy, mu2_pt, mu2_eta, mu2_phi, mu2_energy"
    df = df.Define("dimuon_mass", f"tau3mu_rdf::energy_mass({energy})")
    return df.Alias("mass", "Cand2MuTrk_mass").Alias("best_chi2", "Cand2MuTrk_chi2")


#: Run 2 candidate columns (analysis names)
_CANDIDATE_COLUMNS = (
    "mass",
    "vtx_chi2",
    "pv_ntracks",
    "flight_sig",
    "mu1_trig_dr",
    "mu2_trig_dr",
    "mu1_refit_pt",
    "mu1_refit_eta",
    "mu1_refit_phi",
    "mu2_refit_pt",
    "mu2_refit_eta",
    "mu2_refit_phi",
)
#: Run 2 candidates' own copies of the muon and track kinematics
_KINEMATICS = tuple(f"{p}_{k}" for p in ("mu1", "mu2", "trk") for k in ("pt", "eta", "phi"))


def run_rdf(
    files: list[str],
    treename: str | None = None,
    config: SelectionConfig | None = None,
    threads: int = 1,
    layout: str = "run2",
    scheduler: str | None = None,
    npartitions: int | None = None,
    era: str | None = None,
) -> dict[str, Any]:
    """h_mass counts, the cutflow and timings of the period's selection in RDataFrame.

    ``layout``: ``"run2"`` (``Tree3Mu/ntuple``, the trigger-match branches of ``era``'s
    year) or ``"run3"`` (``Events``); ``treename`` defaults to the layout's tree. With
    ``scheduler`` (a Dask scheduler address) the same graph runs as distributed
    RDataFrame on that cluster's workers, in ``npartitions`` ranges.
    """
    with contextlib.ExitStack() as closing:
        return _run_rdf(
            files, treename, config, threads, layout, scheduler, npartitions, era, closing
        )


def _run_rdf(
    files: list[str],
    treename: str | None,
    config: SelectionConfig | None,
    threads: int,
    layout: str,
    scheduler: str | None,
    npartitions: int | None,
    era: str | None,
    closing: contextlib.ExitStack,
) -> dict[str, Any]:
    import ROOT

    if layout not in ("run2", "run3"):
        raise ValueError(f"unknown layout {layout!r}; expected 'run2' or 'run3'")
    c = config or SelectionConfig()
    tic = time.perf_counter()
    if scheduler is None and threads > 1:
        ROOT.EnableImplicitMT(threads)
    elif ROOT.IsImplicitMTEnabled():
        ROOT.DisableImplicitMT()
    if not hasattr(ROOT, "tau3mu_rdf"):
        ROOT.gInterpreter.Declare(_HELPERS)
    tree = treename or (RUN2.tree if layout == "run2" else "Events")
    if scheduler is not None:
        from distributed import Client

        ROOT.RDF.Distributed.DistributeCppCode(_HELPERS)
        client = Client(scheduler)
        closing.callback(client.close)
        df = ROOT.RDataFrame(tree, files, executor=client, npartitions=npartitions)
    else:
        df = ROOT.RDataFrame(tree, files)
    if layout == "run2":
        df = _columns_run2(df, c.run2, c.trigger_match_year(era))
        steps = _run2_steps(c.run2)
    else:
        df = _columns_run3(df, c.run3)
        steps = _run3_steps(c.run3)
    df = df.Define("ncand", "(int)mass.size()")
    df = df.Define("trigger_events", "(int)trigger").Define("trigger_cands", "trigger ? ncand : 0")
    booked: dict[str, tuple[Any, Any]] = {"events": (df.Count(), df.Sum("ncand"))}
    booked["trigger"] = (df.Sum("trigger_events"), df.Sum("trigger_cands"))
    previous = "trigger"
    for label, step in steps.items():
        # AND with the candidates that passed every step so far (the original's defect 4)
        df = df.Define(f"pass_{label}", f"ROOT::RVecB({step} && {previous})")
        previous = f"pass_{label}"
        df = df.Define(f"n_{label}", f"(int)ROOT::VecOps::Sum(pass_{label})")
        df = df.Define(f"e_{label}", f"(int)(n_{label} > 0)")
        booked[label] = (df.Sum(f"e_{label}"), df.Sum(f"n_{label}"))
    df = df.Define("best", f"tau3mu_rdf::best(best_chi2, {previous})")
    selected = df.Filter("best >= 0")
    axis = c.mass_axis
    h = selected.Define("best_mass", "mass[best]").Histo1D(
        ("h_mass", "", axis.bins, axis.start, axis.stop), "best_mass"
    )
    booked["best_candidate"] = (selected.Count(), selected.Count())
    setup = time.perf_counter()
    if scheduler is None:
        values, jit_s, loop_s = _run_logged(ROOT, h)  # runs the one event loop
    else:  # the workers JIT and loop; the client sees one wall time
        values, jit_s, loop_s = h.GetValue(), None, None
    loop = time.perf_counter()
    if loop_s is None:  # no log: JIT and loop together
        jit_s, loop_s = 0.0, loop - setup
    jit_s = jit_s if jit_s is not None else 0.0
    cutflow = {label: [int(a.GetValue()), int(b.GetValue())] for label, (a, b) in booked.items()}
    counts = np.array([values.GetBinContent(i + 1) for i in range(axis.bins)])
    done = time.perf_counter()
    return {
        "h_mass": counts,
        # 1: every action booked before the loop
        "event_loops": int(df.GetNRuns()) if scheduler is None else 1,
        "cutflow": cutflow,
        "n_events": cutflow["events"][0],
        "timing": {
            # graph building, interpreter declarations and the JIT at the loop's start
            "jit_and_setup_s": setup - tic + jit_s,
            "event_loop_s": loop_s,
            "total_s": done - tic,
        },
        "threads": threads,
        "layout": layout,
        "order": ["events", *c.for_period(layout).steps, "best_candidate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+")
    parser.add_argument("--layout", choices=("run2", "run3"), default="run2")
    parser.add_argument("--tree", default=None, help="default: the layout's tree")
    parser.add_argument("--era", default=None, help="Run 2: the era whose trigger match is read")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--scheduler", help="Dask scheduler address: distributed RDataFrame")
    parser.add_argument("--npartitions", type=int, help="ranges for distributed RDataFrame")
    args = parser.parse_args()
    result = run_rdf(
        args.files,
        args.tree,
        threads=args.threads,
        layout=args.layout,
        scheduler=args.scheduler,
        npartitions=args.npartitions,
        era=args.era,
    )
    for label in result["order"]:
        events, cands = result["cutflow"][label]
        print(f"{label:<22}{events:>12,}{cands:>14,}")
    t = result["timing"]
    print(
        f"{result['n_events']:,} events; JIT+setup {t['jit_and_setup_s']:.1f} s, event loop {t['event_loop_s']:.1f} s "
        f"({1e6 * t['event_loop_s'] / max(result['n_events'], 1):.1f} us/event), {args.threads} thread(s)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({**result, "h_mass": result["h_mass"].tolist()}, handle, indent=2)


if __name__ == "__main__":
    main()
