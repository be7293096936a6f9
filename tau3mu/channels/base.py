"""What a channel is: the pieces of one decay's analysis that the pipeline runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from coffea.processor import ProcessorABC

from tau3mu.datasets import Dataset
from tau3mu.weights import SimulationWeights

__all__ = ["Channel", "ProcessorFactory", "SelectionReport"]

#: (selection configuration, what weights simulation) -> the processor
ProcessorFactory = Callable[[Any, SimulationWeights], ProcessorABC]
#: (selection configuration, datasets) -> per dataset, what report.json says of its cuts
SelectionReport = Callable[[Any, Sequence[Dataset]], dict[str, dict[str, Any]]]


def _no_periods(config: Any, datasets: Sequence[Dataset]) -> dict[str, dict[str, Any]]:
    return {}


@dataclass(frozen=True)
class Channel:
    """One decay channel's analysis, as the pipeline runs it.

    name
        What ``RunOptions.channel`` says to pick it.
    description
        One line for help texts.
    config_type
        Its selection configuration: a dataclass with an ``era`` (the default era of
        datasets that name none) and ``to_dict()``; ``config_type()`` gives the defaults.
    make_processor
        The coffea processor from a configuration and the simulation weights (muon
        scale factors per year, xsec x L / ngen per dataset, pileup weights). Its
        output has ``cutflow`` (``{dataset: {step: {"events": n, "candidates": n}}}``
        beginning with ``events``), ``hists`` (``hist.Hist`` with ``dataset`` and
        ``systematic`` axes first) and ``snapshot`` (``{dataset: records}`` with ``run``,
        ``lumi`` and ``event``); ``truth`` and ``scale_factors`` optionally.
    book_histograms
        The empty histograms its processor fills, from a configuration.
    fit_histogram
        The histogram whose nominal slice of each dataset the mass fit takes; None: the
        channel has no fit.
    periods
        Per dataset, the run period and period-specific choices for ``report.json``'s
        ``selection``.
    """

    name: str
    description: str
    config_type: type
    make_processor: ProcessorFactory
    book_histograms: Callable[[Any], dict[str, Any]]
    fit_histogram: str | None = "h_mass"
    periods: SelectionReport = _no_periods

    def default_config(self) -> Any:
        """The channel's selection configuration with every default."""
        return self.config_type()
