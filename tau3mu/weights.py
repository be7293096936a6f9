"""Normalisation of simulation: the per-dataset scale xsec x L / ngen and its report
(docs/physics.md, "Normalisation weights").

A simulated dataset's event weight is

    xsec [pb] x 1000 x L [fb^-1] / ngen  x  SF(mu1) x SF(mu2)  x  w_PU(true pileup)

:func:`simulation_scales` computes the first factor per simulated dataset, with L its
own ``lumi`` when it names one (a target luminosity), else the summed ``lumi`` of the
run's data datasets of its era (:func:`tau3mu.eras.data_eras_of`); the processor
(:class:`tau3mu.processors.dsphipi.DsPhiPiProcessor`) multiplies it by the muon scale
factors and the pileup weight of each event. :func:`weights_report` is the ``weights``
block of ``report.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tau3mu.eras import data_eras_of
from tau3mu.errors import Tau3MuError

__all__ = [
    "PB_PER_INVERSE_FB",
    "NormalisationError",
    "SimulationScale",
    "normalisation_of",
    "pileup_note",
    "simulation_scales",
    "weights_report",
]

#: xsec [pb] x L [fb^-1] x this = expected events (1 fb^-1 = 1000 pb^-1)
PB_PER_INVERSE_FB = 1000.0


class NormalisationError(Tau3MuError, ValueError):
    """A simulated dataset that cannot be normalised: no xsec or ngen, or no luminosity."""


@dataclass(frozen=True)
class SimulationScale:
    """The luminosity normalisation of one simulated dataset."""

    dataset: str
    xsec_pb: float
    ngen: float
    lumi_fb: float
    #: where L comes from: ``"own lumi"`` or ``"data: name (x fb^-1), ..."``
    lumi_source: str

    @property
    def scale(self) -> float:
        """xsec x 1000 x L / ngen: the weight of one simulated event before SFs and w_PU."""
        return self.xsec_pb * PB_PER_INVERSE_FB * self.lumi_fb / self.ngen


def _lumi_of(dataset: Any, data: Sequence[Any], era: str | None) -> tuple[float, str]:
    """(L in fb^-1, its source) of the simulated ``dataset`` of ``era``."""
    if dataset.lumi is not None:
        return float(dataset.lumi), "own lumi"
    if era is None:
        raise NormalisationError(
            f"dataset {dataset.name!r} (simulation): no 'era' and no 'lumi', so its luminosity "
            "is unknown; give its 'era' (data of that era in the run give L) or its 'lumi'"
        )
    eras = [d.era for d in data if d.era is not None]
    belong = set(data_eras_of(era, eras))
    members = [d for d in data if d.era in belong]
    if not members:
        have = sorted(set(eras)) or "none"
        raise NormalisationError(
            f"dataset {dataset.name!r} (simulation, era {era!r}): no data of its era in the run "
            f"to take the luminosity from (data eras: {have}); add them or give its 'lumi'"
        )
    unknown = [d.name for d in members if d.lumi is None]
    if unknown:
        raise NormalisationError(
            f"dataset {dataset.name!r} (simulation, era {era!r}): data dataset(s) {unknown} of "
            "its era have no 'lumi'; give theirs, or this dataset's own 'lumi'"
        )
    total = sum(float(d.lumi) for d in members)
    source = "data: " + ", ".join(f"{d.name} ({d.lumi:g} fb^-1)" for d in members)
    return total, source


def simulation_scales(
    datasets: Sequence[Any], *, default_era: str | None = None
) -> dict[str, SimulationScale]:
    """The normalisation of every simulated dataset among ``datasets``.

    Parameters
    ----------
    datasets
        :class:`tau3mu.datasets.Dataset` objects (``name``, ``type``, ``era``, ``lumi``,
        ``xsec``, ``ngen``), data and simulation of the run.
    default_era
        The era of datasets that name none (``--era``).

    Returns
    -------
    ``{dataset name: SimulationScale}`` for the simulated datasets, in input order
    (``{}`` for a data-only run).

    Raises
    ------
    NormalisationError
        A simulated dataset without ``xsec`` or ``ngen``, or whose luminosity is unknown
        (no ``lumi`` of its own, and no data of its era, or data without ``lumi``).
    """
    data = [d for d in datasets if not d.is_mc]
    if default_era is not None:
        data = [_with_era(d, default_era) for d in data]
    out: dict[str, SimulationScale] = {}
    for d in datasets:
        if not d.is_mc:
            continue
        missing = [key for key in ("xsec", "ngen") if getattr(d, key) is None]
        if missing:
            raise NormalisationError(
                f"dataset {d.name!r} (simulation): missing key(s) {missing} in the datasets "
                "file: 'xsec' (pb, filter efficiency included) and 'ngen' (events generated "
                "before any skim) normalise simulation to the data's luminosity"
            )
        lumi, source = _lumi_of(d, data, d.era or default_era)
        out[d.name] = SimulationScale(d.name, float(d.xsec), float(d.ngen), lumi, source)
    return out


def _with_era(dataset: Any, era: str) -> Any:
    import dataclasses

    return dataset if dataset.era is not None else dataclasses.replace(dataset, era=era)


def normalisation_of(
    datasets: Sequence[Any], pileup_file: str | None, *, default_era: str | None = None
) -> tuple[dict[str, SimulationScale], Any]:
    """(:func:`simulation_scales`, the :class:`tau3mu.corrections.PileupWeights` of
    ``pileup_file`` or None): everything ``tau3mu run`` needs to normalise simulation,
    checked before the run.

    Raises
    ------
    NormalisationError
        As :func:`simulation_scales`.
    tau3mu.corrections.ScaleFactorError
        ``pileup_file`` cannot be used.
    """
    scales = simulation_scales(datasets, default_era=default_era)
    if pileup_file is None:
        return scales, None
    from tau3mu.corrections import PileupWeights

    return scales, PileupWeights(pileup_file)


def pileup_note(pileup: Any, scales: Mapping[str, SimulationScale]) -> str | None:
    """The line that says simulation is weighted without pileup weights, or None."""
    if pileup is not None or not scales:
        return None
    return "note: no --pileup file: simulation gets pileup weight 1"


def weights_report(
    scales: Mapping[str, SimulationScale],
    *,
    muon_sf: Mapping[str, Any],
    eras: Mapping[str, str | None],
    pileup: Any = None,
) -> dict[str, dict[str, Any]]:
    """The ``weights`` block of ``report.json``.

    Parameters
    ----------
    scales
        :func:`simulation_scales`' result.
    muon_sf
        ``{year: MuonScaleFactors}`` applied (``{}``: none, ``--no-muon-sf``).
    eras
        Each simulated dataset's era (its own or the run's default).
    pileup
        The :class:`tau3mu.corrections.PileupWeights` applied, or None.

    Returns
    -------
    ``{dataset: {"xsec_pb", "ngen", "lumi_fb", "lumi_source", "scale", "muon_sf",
    "pileup"}}``: ``muon_sf`` the scale-factor file of the dataset's year (None without),
    ``pileup`` the pileup file and correction (None: weight 1).
    """
    from tau3mu.eras import year_of

    out: dict[str, dict[str, Any]] = {}
    for name, s in scales.items():
        era = eras.get(name)
        sf = muon_sf.get(str(year_of(era))) if era is not None else None
        out[name] = {
            "xsec_pb": s.xsec_pb,
            "ngen": s.ngen,
            "lumi_fb": s.lumi_fb,
            "lumi_source": s.lumi_source,
            "scale": s.scale,
            "muon_sf": sf.path if sf is not None else None,
            "pileup": (
                {"file": pileup.path, "correction": pileup.correction_name}
                if pileup is not None
                else None
            ),
        }
    return out
