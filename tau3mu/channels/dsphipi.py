"""The Ds+ -> phi(mu mu) pi+ normalisation channel (docs/physics.md, "Selection")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tau3mu.channels.base import Channel
from tau3mu.config import SelectionConfig
from tau3mu.datasets import Dataset
from tau3mu.eras import period_of
from tau3mu.processors.dsphipi import DsPhiPiProcessor
from tau3mu.processors.histograms import book
from tau3mu.weights import SimulationWeights

__all__ = ["DSPHIPI", "make_processor", "periods"]


def make_processor(config: SelectionConfig, weights: SimulationWeights) -> DsPhiPiProcessor:
    """The Ds -> phi pi processor with ``config``'s cuts and ``weights`` for simulation."""
    return DsPhiPiProcessor(
        config,
        scale_factors=weights.muon_sf,
        scales=weights.dataset_scales,
        pileup=weights.pileup,
    )


def periods(config: SelectionConfig, datasets: Sequence[Dataset]) -> dict[str, dict[str, Any]]:
    """Per dataset: the era used, its run period and, for Run 2, the trigger-match branch
    year (and whether ``--selection`` set it instead of the era)."""
    out = {}
    for d in datasets:
        era = d.era or config.era
        period = period_of(era) if era else None
        entry: dict[str, Any] = {"era": era, "period": period or "from the files' layout"}
        if period in ("run2", None):
            entry["trigger_match_year"] = config.trigger_match_year(era)
            entry["trigger_match_year_from"] = (
                "--selection" if config.run2.trigger_match_year is not None else "era"
            )
        out[d.name] = entry
    return out


def _book(config: SelectionConfig) -> dict[str, Any]:
    """The empty histograms of the channel (``hist.Hist``)."""
    histograms: dict[str, Any] = book(config)
    return histograms


#: the channel: its processor, selection, histograms and the h_mass fit
DSPHIPI = Channel(
    name="dsphipi",
    description="Ds+ -> phi(mu mu) pi+ (and D+ -> phi pi+), the normalisation channel",
    config_type=SelectionConfig,
    make_processor=make_processor,
    book_histograms=_book,
    fit_histogram="h_mass",
    periods=periods,
)
