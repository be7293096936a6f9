"""The one place for the analysis' numbers: cut values, histogram binning, physics constants.

Defaults follow ``SPEC.md`` section 3. Everything that reads a cut value takes a
:class:`SelectionConfig`; nothing else hard-codes one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

#: PDG masses in GeV (SPEC section 5).
MUON_MASS = 0.105658
PION_MASS = 0.13957
DS_MASS = 1.96835
DPLUS_MASS = 1.86966
PHI_MASS = 1.019461
PHI_WIDTH = 0.004249
#: proper decay lengths c*tau in cm
DS_CTAU = 0.0150
DPLUS_CTAU = 0.0310

#: Ordered cutflow labels (SPEC section 3). ``events`` is the input count.
CUTFLOW_STEPS: tuple[str, ...] = (
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

#: Per-candidate truth categories written by the synthetic generator.
TRUTH_BACKGROUND, TRUTH_DS, TRUTH_DPLUS = 0, 1, 2


@dataclass(frozen=True)
class MassAxis:
    """Binning of the 2 mu + track invariant mass histogram ``h_mass``."""

    bins: int = 62
    start: float = 1.65
    stop: float = 2.01


@dataclass(frozen=True)
class SelectionConfig:
    """Cut values of the Ds+ -> phi(mu mu) pi+ selection, SPEC section 3 defaults."""

    era: str = "2017"
    # 1. trigger: substring matches on path / seed names (Run 2) or bool branch names (Run 3)
    hlt_pattern: str = "HLT_DoubleMu3_Trk_Tau3mu_v"
    l1_patterns: tuple[str, ...] = ("L1_DoubleMu", "L1_TripleMu")
    # 2. mass window on the vertex-fitted triplet mass (GeV), open interval
    mass_window: tuple[float, float] = (1.62, 2.02)
    # 3. refitted-PV track multiplicity, strictly greater than
    min_pv_tracks: float = 1.0
    # 4. beamspot-to-SV flight significance, strictly greater than
    min_flight_significance: float = 2.0
    # 5. acceptance
    barrel_max_abseta: float = 1.2
    barrel_min_pt: float = 3.5
    endcap_max_abseta: float = 2.4
    endcap_min_pt: float = 2.0
    track_min_pt: float = 1.2
    # 6. pairwise delta R, open interval
    delta_r_window: tuple[float, float] = (0.0001, 0.8)
    # 8. track impact parameters (cm), on absolute values
    max_track_abs_dz: float = 20.0
    max_track_abs_dxy: float = 0.3
    # 9. dimuon (refitted tracks) mass window, open interval
    phi_mass_window: tuple[float, float] = (1.00, 1.04)
    muon_mass: float = 0.10566
    # 10. trigger matching, strictly less than
    max_trigger_dr: float = 0.03
    # histograms
    mass_axis: MassAxis = field(default_factory=MassAxis)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, for reports and for shipping to workers."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectionConfig:
        """Build from :meth:`to_dict` output or a user's JSON, rejecting unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown selection setting(s) {unknown}; known settings are {sorted(known)}"
            )
        kwargs = dict(data)
        for key in ("mass_window", "delta_r_window", "phi_mass_window", "l1_patterns"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        if isinstance(kwargs.get("mass_axis"), dict):
            kwargs["mass_axis"] = MassAxis(**kwargs["mass_axis"])
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str) -> SelectionConfig:
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))
