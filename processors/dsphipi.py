"""The Ds+ -> phi(mu mu) pi+ selection (docs/physics.md, "Selection") as a coffea processor.

One processor for both input layouts (the schema hides them) and for both execution
paths: eager NanoEvents from the coffea ``Runner`` and dask-awkward NanoEvents. The
output is a dictionary that coffea's accumulators merge across chunks:

``cutflow``
    ``{dataset: {label: {"events": n, "candidates": n}}}`` with the labels ``events``,
    the steps of the dataset's run period (:data:`tau3mu.config.RUN2_STEPS` or
    :data:`tau3mu.config.RUN3_STEPS`) and ``best_candidate``.
``hists``
    ``h_mass`` and the control histograms of :mod:`processors.histograms`.
``snapshot``
    ``{dataset: column_accumulator(record array)}``: one row per selected event.
``truth``
    ``{dataset: {"ds": n, "dplus": n, "background": n}}`` among best candidates inside the
    mass histogram's range, for files that carry truth.
``scale_factors``
    ``{dataset: {"muons": n, "clamped": n}}`` for simulation.

Simulation is weighted xsec x L / ngen (``scales``, :mod:`tau3mu.weights`) x SF(mu1) x
SF(mu2) x w_PU(true pileup) (``pileup``); data 1. The best candidate's proper decay
length ``ct`` and, in simulation, its truth ``origin`` come from
:mod:`tau3mu.processors.origin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np
from coffea import processor

from tau3mu.config import (
    ORIGIN_OTHER,
    TRUTH_BACKGROUND,
    TRUTH_DPLUS,
    TRUTH_DS,
    PeriodSelection,
    SelectionConfig,
)
from tau3mu.corrections import MuonScaleFactors, PileupWeights
from tau3mu.eras import EraError, Period, layout_mismatch, year_of
from tau3mu.kernels import best_candidate
from tau3mu.processors.arrays import call, is_dask, lib
from tau3mu.processors.histograms import book
from tau3mu.processors.links import InputError, candidate_view, consistent, is_run2, trigger_fired
from tau3mu.processors.origin import (
    muon_value,
    origin_run2,
    origin_run3,
    proper_decay_length,
)
from tau3mu.processors.selection import select

#: best-candidate quantities written to the snapshot, as ``BestTriplet_<name>``
SNAPSHOT_FIELDS: tuple[str, ...] = (
    "mass",
    "vtx_chi2",
    "pv_ntracks",
    "flight_sig",
    "mu1_pt",
    "mu1_eta",
    "mu1_phi",
    "mu2_pt",
    "mu2_eta",
    "mu2_phi",
    "trk_pt",
    "trk_eta",
    "trk_phi",
    "phi_mass",
    "mu1_trig_dr",
    "mu2_trig_dr",
    "trk_dz",
    "trk_dxy",
)


def _fingerprint(scale_factors: Any) -> Any:
    if isinstance(scale_factors, Mapping):
        return {year: sf.fingerprint() for year, sf in sorted(scale_factors.items())}
    return scale_factors.fingerprint() if scale_factors is not None else None


def _is_mc(metadata: dict[str, Any]) -> bool:
    return str(metadata.get("type", "data")).lower() == "mc" or bool(metadata.get("is_mc"))


class DsPhiPiProcessor(processor.ProcessorABC):
    """Select Ds+ -> phi(mu mu) pi+ candidates, keep the best per event, fill histograms.

    Parameters
    ----------
    config
        Both periods' cut values and the binning; the defaults of ``docs/physics.md``
        when omitted. A dataset's ``era`` (its metadata, else ``config.era``) picks its
        period; without either, the file's layout does.
    scale_factors
        Muon ID scale factors applied to simulation: one set for every era, or a mapping
        from the era's year (``"2017"``) to its set; without them simulation gets weight 1.
    snapshot
        Return the best candidates per event (for the output TTree).
    scales
        ``{dataset: xsec x 1000 x L / ngen}`` of simulated datasets
        (:func:`tau3mu.weights.simulation_scales`); a simulated dataset not named gets 1.
    pileup
        Pileup weights of the true pileup applied to simulation; None: weight 1.
    """

    def __init__(
        self,
        config: SelectionConfig | None = None,
        *,
        scale_factors: MuonScaleFactors | Mapping[str, MuonScaleFactors] | None = None,
        snapshot: bool = True,
        scales: Mapping[str, float] | None = None,
        pileup: PileupWeights | None = None,
    ) -> None:
        self.config = config or SelectionConfig()
        self.scale_factors = scale_factors
        self.snapshot = snapshot
        self.scales = dict(scales or {})
        self.pileup = pileup

    def fingerprint(self) -> dict[str, Any]:
        """Everything a chunk's output depends on besides its events: checkpoints made
        under another fingerprint are not reused (:mod:`tau3mu.checkpoints`)."""
        return {
            "processor": f"{type(self).__module__}.{type(self).__qualname__}",
            "config": self.config.to_dict(),
            "scale_factors": _fingerprint(self.scale_factors),
            "snapshot": self.snapshot,
            "scales": dict(sorted(self.scales.items())),
            "pileup": self.pileup.fingerprint() if self.pileup is not None else None,
        }

    def period(self, events: Any) -> tuple[PeriodSelection, str | None, str | None]:
        """(the selection, Run 2's trigger-match year, the era) for ``events``' dataset.

        Raises
        ------
        InputError
            The file's layout is not the one of the dataset's era's run period.
        """
        metadata = getattr(events, "metadata", None) or {}
        era = metadata.get("era") or self.config.era
        layout: Period = "run2" if is_run2(events) else "run3"
        if era:
            try:
                mismatch = layout_mismatch(layout, str(era))
            except EraError as err:
                raise InputError(str(err)) from None
            if mismatch:
                raise InputError(mismatch)
        selection = self.config.for_period(layout)
        year = self.config.trigger_match_year(era) if layout == "run2" else None
        return selection, year, str(era) if era else None

    def process(self, events: Any) -> dict[str, Any]:
        dask = is_dask(events)
        xp = lib(events)
        metadata = dict(getattr(events, "metadata", None) or {})
        dataset = str(metadata.get("dataset", "unknown"))
        selection, year, era = self.period(events)

        trigger = trigger_fired(events, selection) & consistent(events, year)
        cand = events.Candidate
        n_cand = xp.num(cand.mass, axis=1)

        def total(values: Any) -> Any:
            out = xp.sum(values, axis=None)
            return out if dask else int(out)

        cutflow: dict[str, dict[str, Any]] = {
            "events": {"events": xp.num(events.run, axis=0), "candidates": total(n_cand)},
            "trigger": {"events": total(trigger), "candidates": total(n_cand * trigger)},
        }
        if not dask:
            cutflow["events"]["events"] = len(events)
        passed = select(events, trigger, selection, year)
        for label in selection.steps[1:]:
            per_event = passed[label]
            cutflow[label] = {"events": total(per_event > 0), "candidates": total(per_event)}
        passing = passed.passing

        best_index = call(best_candidate, cand.vtx_chi2, passing)
        selected = best_index >= 0
        # links, linked quantities and the phi mass of the best candidates only
        keep = (xp.local_index(cand.mass, axis=1) == best_index)[selected]
        best = xp.firsts(candidate_view(events[selected], selection, year, keep=keep), axis=1)
        n_passing = xp.sum(passing, axis=1)[selected]
        cutflow["best_candidate"] = {"events": total(selected), "candidates": total(selected)}

        is_mc = _is_mc(metadata)
        chosen = events[selected]
        best = xp.with_field(best, self._ct(chosen, keep, best), "ct")
        best = xp.with_field(best, self._origin(chosen, keep, best, is_mc), "origin")
        weights, sf_report = self._weights(best, xp, dask, is_mc, era)
        if is_mc:
            factor = self._normalisation(chosen, dataset)
            weights = {name: weight * factor for name, weight in weights.items()}
        hists = self._fill(best, n_passing, weights, dataset, dask)
        out: dict[str, Any] = {
            "cutflow": {dataset: cutflow},
            "hists": hists,
        }
        if sf_report is not None:
            out["scale_factors"] = {dataset: sf_report}
        if "truth" in cand.fields:
            out["truth"] = {dataset: self._truth(best, xp, total)}
        if self.snapshot:
            out["snapshot"] = {
                dataset: self._snapshot(events, selected, best, weights, xp, dask, is_mc)
            }
        return out

    # -- pieces ----------------------------------------------------------------------
    def _ct(self, chosen: Any, keep: Any, best: Any) -> Any:
        """ct of the best candidates (NaN where the file lacks flight distance or pt)."""
        cand = chosen.Candidate
        if not {"flight_dist", "pt"} <= set(cand.fields):
            return best.mass * np.nan
        xp = lib(best)
        kept = cand[keep]
        flight, pt = xp.firsts(kept.flight_dist, axis=1), xp.firsts(kept.pt, axis=1)
        return call(proper_decay_length, flight, best.mass, pt)

    def _origin(self, chosen: Any, keep: Any, best: Any, is_mc: bool) -> Any:
        """The truth origin of the best candidates: ORIGIN_OTHER unless simulation with
        generated particles and the candidates' eta and phi (Run 3: also the muons'
        decayType)."""
        xp = lib(best)
        zero = xp.values_astype(xp.zeros_like(best.mass), np.int32)
        cand = chosen.Candidate
        if not is_mc or "Gen" not in chosen.fields or not {"eta", "phi"} <= set(cand.fields):
            return zero + ORIGIN_OTHER
        direction = tuple(xp.firsts(cand[keep][name], axis=1) for name in ("eta", "phi"))
        gen = chosen.Gen
        if is_run2(chosen):
            return call(
                origin_run2,
                *direction,
                gen.pdg_id,
                gen.eta,
                gen.phi,
                gen.is_b_decay,
            )
        if "decay_type" not in chosen.Muon.fields:
            return zero + ORIGIN_OTHER
        decay = chosen.Muon.decay_type
        d1 = call(muon_value, decay, best.mu1_idx)
        d2 = call(muon_value, decay, best.mu2_idx)
        return call(origin_run3, *direction, gen.pdg_id, gen.eta, gen.phi, d1, d2)

    def _normalisation(self, chosen: Any, dataset: str) -> Any:
        """xsec x L / ngen x w_PU of the selected simulated events (a number or an array).

        Raises
        ------
        InputError
            Pileup weights are asked for and the file has no true pileup branch.
        """
        scale = float(self.scales.get(dataset, 1.0))
        if self.pileup is None:
            return scale
        if "true_pileup" not in chosen.fields:
            raise InputError(
                "pileup weights asked for (--pileup), but the file has no true pileup branch "
                "(Run 2 nPileUpInt, Run 3 Pileup_nTrueInt)"
            )
        true_pileup = lib(chosen).values_astype(chosen.true_pileup, np.float64)
        return scale * self.pileup.evaluate(true_pileup)

    def _scale_factors(self, era: str | None) -> MuonScaleFactors | None:
        """The scale factors of ``era`` (a mapping is keyed by the era's year)."""
        scale_factors = self.scale_factors
        if not isinstance(scale_factors, Mapping):
            return scale_factors or None
        if not scale_factors:
            return None
        year = str(year_of(era)) if era else None
        if year is None or year not in scale_factors:
            raise InputError(
                f"no muon scale factors for era {era!r} (known years: {sorted(scale_factors)})"
            )
        return scale_factors[year]

    def _weights(
        self, best: Any, xp: Any, dask: bool, is_mc: bool, era: str | None
    ) -> tuple[dict[str, Any], Any]:
        scale_factors = self._scale_factors(era) if is_mc else None
        if scale_factors is None:
            return {"nominal": xp.ones_like(best.mass)}, None
        weights, clamped = scale_factors.event_weights(
            [(best.mu1_eta, best.mu1_pt), (best.mu2_eta, best.mu2_pt)]
        )
        muons = 2 * xp.num(best.mass, axis=0)
        report = {"muons": muons, "clamped": clamped if dask else int(clamped)}
        if not dask:
            report["muons"] = 2 * len(best)
        return weights, report

    def _fill(
        self, best: Any, n_passing: Any, weights: dict[str, Any], dataset: str, dask: bool
    ) -> dict[str, Any]:
        hists = book(self.config, dask=dask)
        for systematic, weight in weights.items():
            common = {"dataset": dataset, "systematic": systematic, "weight": weight}
            hists["h_mass"].fill(**common, mass=best.mass)
            at = {**common, "mass": best.mass}
            for prefix in ("mu1", "mu2"):
                hists["h_mu_pt"].fill(**at, mu_pt=best[f"{prefix}_pt"])
                hists["h_mu_eta"].fill(**at, mu_eta=best[f"{prefix}_eta"])
            hists["h_trk_pt"].fill(**at, trk_pt=best.trk_pt)
            hists["h_trk_eta"].fill(**at, trk_eta=best.trk_eta)
            hists["h_phi_mass"].fill(**at, phi_mass=best.phi_mass)
            hists["h_flight_sig"].fill(**at, flight_sig=best.flight_sig)
            hists["h_vtx_chi2"].fill(**at, vtx_chi2=best.vtx_chi2)
            hists["h_ct"].fill(**at, origin=best.origin, ct=best.ct)
            hists["h_ncand"].fill(**common, ncand=n_passing)
        return hists

    def _truth(self, best: Any, xp: Any, total: Any) -> dict[str, Any]:
        axis = self.config.mass_axis
        inside = (best.mass >= axis.start) & (best.mass < axis.stop)
        return {
            name: total(inside & (best.truth == code))
            for name, code in (
                ("ds", TRUTH_DS),
                ("dplus", TRUTH_DPLUS),
                ("background", TRUTH_BACKGROUND),
            )
        }

    def _snapshot(
        self,
        events: Any,
        selected: Any,
        best: Any,
        weights: dict[str, Any],
        xp: Any,
        dask: bool,
        is_mc: bool,
    ) -> Any:
        columns = {
            "run": events.run[selected],
            "lumi": events.lumi[selected],
            "event": events.event[selected],
        }
        for name in SNAPSHOT_FIELDS:
            columns[f"BestTriplet_{name}"] = best[name]
        columns["BestTriplet_ct"] = best.ct
        if is_mc:
            columns["BestTriplet_origin"] = best.origin
        if "truth" in best.fields:
            columns["BestTriplet_truth"] = best.truth
        for systematic, weight in weights.items():
            columns["weight" if systematic == "nominal" else f"weight_{systematic}"] = weight
        record = xp.zip(columns, depth_limit=1)
        if dask:
            return record
        # plain arrays only: the events' attrs hold their factory, whose open file a
        # merged (deep-copied, pickled) accumulator would reopen outside any retry
        return processor.column_accumulator(ak.Array(ak.to_packed(record).layout))

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator


__all__ = ["SNAPSHOT_FIELDS", "DsPhiPiProcessor"]
