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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
from coffea import processor

from tau3mu.config import (
    TRUTH_BACKGROUND,
    TRUTH_DPLUS,
    TRUTH_DS,
    PeriodSelection,
    SelectionConfig,
)
from tau3mu.corrections import MuonScaleFactors
from tau3mu.eras import EraError, layout_mismatch, year_of
from tau3mu.kernels import best_candidate
from tau3mu.processors.arrays import call, is_dask, lib
from tau3mu.processors.histograms import book
from tau3mu.processors.links import InputError, candidate_view, consistent, is_run2, trigger_fired
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
    """

    def __init__(
        self,
        config: SelectionConfig | None = None,
        *,
        scale_factors: MuonScaleFactors | Mapping[str, MuonScaleFactors] | None = None,
        snapshot: bool = True,
    ) -> None:
        self.config = config or SelectionConfig()
        self.scale_factors = scale_factors
        self.snapshot = snapshot

    def fingerprint(self) -> dict[str, Any]:
        """Everything a chunk's output depends on besides its events: checkpoints made
        under another fingerprint are not reused (:mod:`tau3mu.checkpoints`)."""
        return {
            "processor": f"{type(self).__module__}.{type(self).__qualname__}",
            "config": self.config.to_dict(),
            "scale_factors": _fingerprint(self.scale_factors),
            "snapshot": self.snapshot,
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
        layout = "run2" if is_run2(events) else "run3"
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

        weights, sf_report = self._weights(best, xp, dask, _is_mc(metadata), era)
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
            out["snapshot"] = {dataset: self._snapshot(events, selected, best, weights, xp, dask)}
        return out

    # -- pieces ----------------------------------------------------------------------
    def _scale_factors(self, era: str | None) -> MuonScaleFactors | None:
        """The scale factors of ``era`` (a mapping is keyed by the era's year)."""
        if not self.scale_factors or not isinstance(self.scale_factors, Mapping):
            return self.scale_factors or None
        year = str(year_of(era)) if era else None
        if year not in self.scale_factors:
            raise InputError(
                f"no muon scale factors for era {era!r} (known years: {sorted(self.scale_factors)})"
            )
        return self.scale_factors[year]

    def _weights(
        self, best: Any, xp: Any, dask: bool, is_mc: bool, era: str | None
    ) -> tuple[dict, Any]:
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
            hists["h_mass"].fill(
                dataset=dataset, systematic=systematic, mass=best.mass, weight=weight
            )
        nominal = weights["nominal"]
        common = {"dataset": dataset, "systematic": "nominal"}
        for prefix in ("mu1", "mu2"):
            hists["h_mu_pt"].fill(**common, mu_pt=best[f"{prefix}_pt"], weight=nominal)
            hists["h_mu_eta"].fill(**common, mu_eta=best[f"{prefix}_eta"], weight=nominal)
        hists["h_trk_pt"].fill(**common, trk_pt=best.trk_pt, weight=nominal)
        hists["h_trk_eta"].fill(**common, trk_eta=best.trk_eta, weight=nominal)
        hists["h_phi_mass"].fill(**common, phi_mass=best.phi_mass, weight=nominal)
        hists["h_flight_sig"].fill(**common, flight_sig=best.flight_sig, weight=nominal)
        hists["h_vtx_chi2"].fill(**common, vtx_chi2=best.vtx_chi2, weight=nominal)
        hists["h_ncand"].fill(**common, ncand=n_passing, weight=nominal)
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
    ) -> Any:
        columns = {
            "run": events.run[selected],
            "lumi": events.lumi[selected],
            "event": events.event[selected],
        }
        for name in SNAPSHOT_FIELDS:
            columns[f"BestTriplet_{name}"] = best[name]
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
