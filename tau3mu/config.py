"""The one place for the analysis' numbers: cut values, histogram binning, physics constants.

Each run period has its own selection (``docs/physics.md``, "Selection"):
:class:`Run2Selection` (the original analysis on the CMSSW ``Tree3Mu/ntuple``) and
:class:`Run3Selection` (the group's Run 3 analysis on its NanoAOD producer). A
:class:`SelectionConfig` holds both, the mass binning and the default era; a dataset's
era picks its period (:mod:`tau3mu.eras`). Everything that reads a cut value takes these
objects; nothing else hard-codes one.

>>> config = SelectionConfig()
>>> config.for_era("2017B").steps[:3]
('trigger', 'mass_window', 'pv_tracks')
>>> config.for_era("2022F").min_flight_significance
3.5
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from tau3mu.eras import Period, period_of, year_of
from tau3mu.layouts import RUN3

__all__ = [
    "B_CTAU",
    "CT_AXIS",
    "DPLUS_CTAU",
    "DPLUS_MASS",
    "DS_CTAU",
    "DS_MASS",
    "MUON_MASS",
    "ORIGIN_FROM_B",
    "ORIGIN_OTHER",
    "ORIGIN_PROMPT",
    "PHI_MASS",
    "PHI_WIDTH",
    "PION_MASS",
    "RUN2_STEPS",
    "RUN3_STEPS",
    "TRUTH_BACKGROUND",
    "TRUTH_DPLUS",
    "TRUTH_DS",
    "MassAxis",
    "PeriodSelection",
    "Run2Selection",
    "Run3Selection",
    "SelectionConfig",
]

#: PDG masses in GeV (``docs/physics.md``, "Synthetic data").
MUON_MASS = 0.105658
PION_MASS = 0.13957
DS_MASS = 1.96835
DPLUS_MASS = 1.86966
PHI_MASS = 1.019461
PHI_WIDTH = 0.004249
#: proper decay lengths c*tau in cm
DS_CTAU = 0.0150
DPLUS_CTAU = 0.0310

#: Run 2 cutflow labels in order (the ten steps of the original analysis).
RUN2_STEPS: tuple[str, ...] = (
    "trigger",
    "mass_window",
    "pv_tracks",
    "flight_significance",
    "acceptance",
    "delta_r",
    "muon_id",
    "track_ip",
    "phi_mass",
    "trigger_match",
)
#: Run 3 cutflow labels in order (the group's Run 3 analysis: no pv_tracks, no delta_r).
RUN3_STEPS: tuple[str, ...] = (
    "trigger",
    "acceptance",
    "flight_significance",
    "muon_id",
    "track_ip",
    "phi_mass",
    "mass_window",
    "trigger_match",
)

#: Per-candidate truth categories written by the synthetic generator.
TRUTH_BACKGROUND, TRUTH_DS, TRUTH_DPLUS = 0, 1, 2

#: Origin of the best candidate in simulation, from the generator-level truth as real
#: simulation carries it (docs/physics.md, "Truth origin"): not a true Ds (data always),
#: a prompt Ds, a Ds from a b-hadron decay. The ``origin`` axis of ``h_ct``.
ORIGIN_OTHER, ORIGIN_PROMPT, ORIGIN_FROM_B = 0, 1, 2
#: binning of the proper decay length ct of ``h_ct``: (bins, start, stop) in cm
CT_AXIS: tuple[int, float, float] = (50, 0.0, 0.2)
#: mean proper decay length c tau of b hadrons (cm; B0/B+ average, 455 um)
B_CTAU = 0.0455

#: the group's Run 3 Ds -> phi pi selection takes the producer's L1 DoubleMu seeds (six of
#: its ten) and accepts a muon matched to any of the producer's five HLT paths
RUN3_L1_SEEDS: tuple[str, ...] = tuple(s for s in RUN3.l1_seeds if s.startswith("L1_DoubleMu"))
RUN3_MATCHED_PATHS: tuple[str, ...] = RUN3.hlt_paths


@dataclass(frozen=True)
class MassAxis:
    """Binning of the 2 mu + track invariant mass histogram ``h_mass``."""

    bins: int = 62
    start: float = 1.65
    stop: float = 2.01


@dataclass(frozen=True)
class Run2Selection:
    """The Run 2 selection: the original analysis' ten steps, its defects corrected.

    Windows are open intervals and thresholds strict, as the original compares.
    ``trigger_match_year`` None reads the trigger-match branches of the dataset's era
    (``Mu1_dRtriggerMatch_<year>``); a year here overrides the era.
    """

    period: Period = field(default="run2", init=False)
    # 1. trigger: substrings of the versioned HLT path and of the L1 seed names
    hlt_pattern: str = "HLT_DoubleMu3_Trk_Tau3mu_v"
    l1_patterns: tuple[str, ...] = ("L1_DoubleMu", "L1_TripleMu")
    # 2. mass window on the vertex-fitted triplet mass (GeV)
    mass_window: tuple[float, float] = (1.62, 2.02)
    # 3. refitted-PV track multiplicity
    min_pv_tracks: float = 1.0
    # 4. beamspot-to-SV flight significance
    min_flight_significance: float = 2.0
    # 5. acceptance: barrel |eta| < 1.2, endcap 1.2 <= |eta| < 2.4
    barrel_max_abseta: float = 1.2
    barrel_min_pt: float = 3.5
    endcap_max_abseta: float = 2.4
    endcap_min_pt: float = 2.0
    track_min_pt: float = 1.2
    # 6. pairwise delta R
    delta_r_window: tuple[float, float] = (0.0001, 0.8)
    # 8. track impact parameters (cm), on absolute values
    max_track_abs_dz: float = 20.0
    max_track_abs_dxy: float = 0.3
    # 9. dimuon (refitted tracks) mass window, muon mass hypothesis
    phi_mass_window: tuple[float, float] = (1.00, 1.04)
    muon_mass: float = 0.10566
    # 10. trigger matching
    max_trigger_dr: float = 0.03
    trigger_match_year: str | None = None

    @property
    def steps(self) -> tuple[str, ...]:
        """Cutflow labels of this period, in order."""
        return RUN2_STEPS


@dataclass(frozen=True)
class Run3Selection:
    """The Run 3 selection of the group's analysis (its ``dsPhiPi_analyser.py``).

    Windows are closed intervals and the flight significance is ``>=``, as the group
    compares; the acceptance is barrel ``|eta| <= 1.2``, endcap ``1.2 < |eta| < 2.4`` for
    both muons and the track; the track IP cut is on absolute values (the group's code
    compares signed values, the original's defect, corrected here).
    """

    period: Period = field(default="run3", init=False)
    # trigger: the HLT bit(s), and any of the L1 seeds
    hlt_paths: tuple[str, ...] = ("HLT_DoubleMu4_3_LowMass_v",)
    l1_seeds: tuple[str, ...] = RUN3_L1_SEEDS
    # acceptance, muons and track alike
    barrel_max_abseta: float = 1.2
    barrel_min_pt: float = 3.5
    endcap_max_abseta: float = 2.4
    endcap_min_pt: float = 2.0
    # flight significance from the beamspot, greater or equal
    min_flight_significance: float = 3.5
    # track impact parameters (cm), on absolute values
    max_track_abs_dz: float = 20.0
    max_track_abs_dxy: float = 0.3
    # opposite-sign dimuon mass from the muons' (pt, eta, phi, energy), closed window
    phi_mass_window: tuple[float, float] = (0.98, 1.06)
    # vertex-fitted triplet mass, closed window
    mass_window: tuple[float, float] = (1.62, 2.1)
    # per-muon trigger match: one of these paths' flags, |trgDR| and |trgDPT| below
    matched_paths: tuple[str, ...] = RUN3_MATCHED_PATHS
    max_trigger_dr: float = 0.03
    max_trigger_dpt: float = 0.1

    @property
    def steps(self) -> tuple[str, ...]:
        """Cutflow labels of this period, in order."""
        return RUN3_STEPS


PeriodSelection = Run2Selection | Run3Selection
_PERIODS: dict[str, type[Run2Selection] | type[Run3Selection]] = {
    "run2": Run2Selection,
    "run3": Run3Selection,
}


@dataclass(frozen=True)
class SelectionConfig:
    """Both periods' selections, the ``h_mass`` binning, and the run-wide default era.

    ``era`` applies to inputs that name none (plain files on the command line); None
    lets such a file's layout pick its period (Run 2 files then read the 2017
    trigger-match branches).
    """

    run2: Run2Selection = field(default_factory=Run2Selection)
    run3: Run3Selection = field(default_factory=Run3Selection)
    mass_axis: MassAxis = field(default_factory=MassAxis)
    era: str | None = None

    def for_period(self, period: Period) -> PeriodSelection:
        """The selection of ``period`` (``"run2"`` or ``"run3"``)."""
        return self.run2 if period == "run2" else self.run3

    def for_era(self, era: str) -> PeriodSelection:
        """The selection of ``era``'s period (raises :class:`tau3mu.eras.EraError`)."""
        return self.for_period(period_of(era))

    def trigger_match_year(self, era: str | None) -> str:
        """The year in Run 2's trigger-match branch names for a dataset of ``era``."""
        if self.run2.trigger_match_year is not None:
            return str(self.run2.trigger_match_year)
        return str(year_of(era)) if era else "2017"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, for reports, fingerprints and shipping to workers."""
        out = dataclasses.asdict(self)
        for period in _PERIODS:
            out[period].pop("period")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectionConfig:
        """Build from :meth:`to_dict` output or a user's ``--selection`` JSON.

        Keys: ``run2`` and ``run3`` (each a mapping of that period's settings),
        ``mass_axis`` (``bins``, ``start``, ``stop``) and ``era``; settings not given keep
        their defaults. Types and values are checked by :mod:`tau3mu.validation`.

        Raises
        ------
        ValueError
            An unknown key, at any level.
        """
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown selection setting(s) {unknown}")
        kwargs: dict[str, Any] = {"era": data.get("era")}
        for name, kind in (*_PERIODS.items(), ("mass_axis", MassAxis)):
            values = dict(data.get(name) or {})
            values.pop("period", None)
            known = {f.name for f in dataclasses.fields(kind) if f.init}
            bad = sorted(set(values) - known)
            if bad:
                raise ValueError(f"unknown {name} setting(s) {bad}")
            settings: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
            }
            kwargs[name] = kind(**settings)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str) -> SelectionConfig:
        """:meth:`from_dict` of a JSON file."""
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))
