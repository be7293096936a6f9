"""Branch names of the two input layouts (SPEC section 2): the one place that knows them.

Both layouts are mapped onto the same *analysis names* (the keys of the dictionaries
below), so that the processor, the generator's tests and the cross-checks speak one
vocabulary:

``Candidate``
    mass, vtx_chi2, pv_ntracks, flight_sig, mu{1,2}_{pt,eta,phi}, trk_{pt,eta,phi},
    mu{1,2}_refit_{pt,eta,phi}, mu{1,2}_trig_dr, truth (synthetic files only), and in
    Run 3 the links mu1_idx, mu2_idx, trk_idx (int32, -1 for none).
``Muon``
    pt, eta, phi, is_global, is_pf
``Track``
    pt, eta, phi, dz, dxy
event level
    run, lumi, event
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

LayoutName = Literal["run2", "run3"]


def _ro(mapping: dict[str, str]) -> MappingProxyType[str, str]:
    return MappingProxyType(mapping)


@dataclass(frozen=True)
class Run2Layout:
    """``Tree3Mu/ntuple`` written by ``DsPhiPiTreeMakerMINI``: ``std::vector`` branches."""

    name: LayoutName = "run2"
    tree: str = "Tree3Mu/ntuple"
    hlt_name: str = "Trigger_hltname"
    hlt_decision: str = "Trigger_hltdecision"
    l1_name: str = "Trigger_l1name"
    l1_decision: str = "Trigger_l1decision"
    event: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro({"run": "run", "lumi": "lumi", "event": "evt"})
    )
    muon: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {
                "pt": "MuonPt",
                "eta": "MuonEta",
                "phi": "MuonPhi",
                "is_global": "Muon_isGlobal",
                "is_pf": "Muon_isPF",
            }
        )
    )
    track: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {
                "pt": "Track_pt",
                "eta": "Track_eta",
                "phi": "Track_phi",
                "dz": "Track_dz",
                "dxy": "Track_dxy",
            }
        )
    )
    #: truth category per candidate (0 background, 1 Ds+, 2 D+); synthetic files only
    truth: str = "Triplet2_Truth"

    def candidate(self, era: str = "2017") -> MappingProxyType[str, str]:
        """Candidate branches; the trigger-match branches carry the era in their name."""
        return _ro(
            {
                "mass": "Triplet2_Mass",
                "vtx_chi2": "TripletVtx2_Chi2",
                "pv_ntracks": "RefittedPV2_NTracks",
                "flight_sig": "FlightDistBS_SV_Significance",
                "mu1_pt": "Mu01_Pt",
                "mu1_eta": "Mu01_Eta",
                "mu1_phi": "Mu01_Phi",
                "mu2_pt": "Mu02_Pt",
                "mu2_eta": "Mu02_Eta",
                "mu2_phi": "Mu02_Phi",
                "trk_pt": "Tr_Pt",
                "trk_eta": "Tr_Eta",
                "trk_phi": "Tr_Phi",
                "mu1_refit_pt": "RefTrack1_Pt",
                "mu1_refit_eta": "RefTrack1_Eta",
                "mu1_refit_phi": "RefTrack1_Phi",
                "mu2_refit_pt": "RefTrack2_Pt",
                "mu2_refit_eta": "RefTrack2_Eta",
                "mu2_refit_phi": "RefTrack2_Phi",
                "mu1_trig_dr": f"Mu1_dRtriggerMatch_{era}",
                "mu2_trig_dr": f"Mu2_dRtriggerMatch_{era}",
            }
        )


@dataclass(frozen=True)
class Run3Layout:
    """nanoAOD-like ``Events``: C arrays with counters, int32 index links, bool trigger bits."""

    name: LayoutName = "run3"
    tree: str = "Events"
    candidate_collection: str = "Cand2MuTrk"
    muon_collection: str = "Muon"
    track_collection: str = "Track"
    hlt_path: str = "HLT_DoubleMu3_Trk_Tau3mu"
    #: L1 seeds written by the producer; the selection matches by pattern, not this list
    l1_seeds: tuple[str, ...] = (
        "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4",
        "L1_DoubleMu4_SQ_OS_dR_Max1p2",
        "L1_TripleMu_5_3_3",
    )
    #: other bool trigger branches present in the files, not used by the selection
    other_paths: tuple[str, ...] = ("HLT_Tau3Mu_Mu7_Mu1_TkMu1_IsoTau15", "HLT_DoubleMu4_3_LowMass")
    event: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro({"run": "run", "lumi": "luminosityBlock", "event": "event"})
    )
    #: analysis name -> field name inside ``Cand2MuTrk``
    candidate_fields: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {
                "mass": "mass",
                "vtx_chi2": "vtxChi2",
                "pv_ntracks": "pvNTracks",
                "flight_sig": "flightDistSigBS",
                "mu1_idx": "mu1Idx",
                "mu2_idx": "mu2Idx",
                "trk_idx": "trkIdx",
                "mu1_refit_pt": "mu1RefitPt",
                "mu1_refit_eta": "mu1RefitEta",
                "mu1_refit_phi": "mu1RefitPhi",
                "mu2_refit_pt": "mu2RefitPt",
                "mu2_refit_eta": "mu2RefitEta",
                "mu2_refit_phi": "mu2RefitPhi",
                "mu1_trig_dr": "mu1TrigDR",
                "mu2_trig_dr": "mu2TrigDR",
                "pt": "pt",
                "eta": "eta",
                "phi": "phi",
                "charge": "charge",
                "truth": "truth",
            }
        )
    )
    muon_fields: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {
                "pt": "pt",
                "eta": "eta",
                "phi": "phi",
                "charge": "charge",
                "is_global": "isGlobal",
                "is_pf": "isPF",
            }
        )
    )
    track_fields: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {"pt": "pt", "eta": "eta", "phi": "phi", "charge": "charge", "dz": "dz", "dxy": "dxy"}
        )
    )

    def branch(self, collection: str, field_name: str) -> str:
        """Flat branch name ``<Coll>_<field>`` of a collection field."""
        return f"{collection}_{field_name}"

    def counter(self, collection: str) -> str:
        """Counter branch ``n<Coll>``."""
        return f"n{collection}"

    def candidate(self, era: str = "2017") -> MappingProxyType[str, str]:
        """Analysis name -> flat branch name for the candidate collection."""
        del era  # Run 3 names carry no era
        return _ro(
            {
                key: self.branch(self.candidate_collection, value)
                for key, value in self.candidate_fields.items()
            }
        )

    @property
    def muon(self) -> MappingProxyType[str, str]:
        return _ro({k: self.branch(self.muon_collection, v) for k, v in self.muon_fields.items()})

    @property
    def track(self) -> MappingProxyType[str, str]:
        return _ro({k: self.branch(self.track_collection, v) for k, v in self.track_fields.items()})

    @property
    def truth(self) -> str:
        return self.branch(self.candidate_collection, "truth")


RUN2 = Run2Layout()
RUN3 = Run3Layout()
LAYOUTS: dict[str, Run2Layout | Run3Layout] = {"run2": RUN2, "run3": RUN3}
