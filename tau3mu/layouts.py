"""Branch names of the two input layouts (``docs/physics.md``, "Input layouts"): their one home.

Both layouts are mapped onto the same *analysis names* (the keys of the mappings
below), so that the processor, the generator and the cross-checks speak one
vocabulary:

``Candidate``
    Run 2: mass, vtx_chi2, pv_ntracks, flight_sig, copies of the linked objects'
    mu{1,2}_{pt,eta,phi} and trk_{pt,eta,phi}, the refitted muon tracks
    mu{1,2}_refit_{pt,eta,phi}, mu{1,2}_trig_dr (the era's year in the branch name).
    Run 3: mass, vtx_chi2, flight_sig, the links mu1_idx, mu2_idx, trk_idx (int32, -1 for
    none). Both: truth (synthetic files only); pt, eta, phi, flight_dist (the
    beamspot-to-SV transverse distance, cm) where the file has them.
``GenParticle`` (Run 2) / ``GenPart`` (Run 3), simulation
    pdg_id, pt, eta, phi; Run 2 also is_b_decay. Run 3 muons add decay_type.
``Muon``
    pt, eta, phi, is_global; Run 2 also is_pf; Run 3 also energy, charge, is_medium,
    trg_dr, trg_dpt and one match flag per HLT path.
``Track``
    pt, eta, phi, dz, dxy
event level
    run, lumi, event; simulation: true_pileup
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
    #: the L1 decision, by producer version: one branch, or initial and final decisions
    #: (the final one is used)
    l1_decision: str = "Trigger_l1decision"
    l1_final_decision: str = "Trigger_l1Finaldecision"
    #: the trigger-match branches carry the era's year: ``Mu1_dRtriggerMatch_2017``
    trigger_match: tuple[str, str] = ("Mu1_dRtriggerMatch_{year}", "Mu2_dRtriggerMatch_{year}")
    #: simulation only: true pileup, generated particles
    pileup: str = "nPileUpInt"
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
    #: the candidate's momentum and transverse flight distance from the beamspot (cm),
    #: for its proper decay length; optional (absent: ct is NaN)
    candidate_kinematics: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {
                "pt": "Triplet2_Pt",
                "eta": "Triplet2_Eta",
                "phi": "Triplet2_Phi",
                "flight_dist": "FlightDistBS_SV",
            }
        )
    )
    #: simulation only: the generated particles, ``is_b_decay`` 1 for a b hadron's
    #: descendant
    gen: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {
                "pdg_id": "GenParticle_PdgId",
                "pt": "GenParticle_Pt",
                "eta": "GenParticle_Eta",
                "phi": "GenParticle_Phi",
                "is_b_decay": "GenParticle_isBdecay",
            }
        )
    )

    def candidate(self, year: str = "2017") -> MappingProxyType[str, str]:
        """Candidate branches; the trigger-match branches carry the era's ``year``."""
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
                "mu1_trig_dr": self.trigger_match[0].format(year=year),
                "mu2_trig_dr": self.trigger_match[1].format(year=year),
            }
        )


@dataclass(frozen=True)
class Run3Layout:
    """``Events`` of the CMS group's NanoAOD producer (fnenna/Tau3MuRun3_NANO).

    NanoAOD conventions: C arrays with counters ``n<Coll>``, branches ``<Coll>_<field>``,
    float32 kinematics, int32 index links (-1 for none), one uint8 branch per trigger
    bit prefixed ``Trigger_``. The Ds -> phi pi candidates are ``Cand2MuTrk``; the signal
    channel's ``Tau3Mu`` table, ``PVtx``, ``GenPart`` and ``Pileup`` sit beside them.
    """

    name: LayoutName = "run3"
    tree: str = "Events"
    candidate_collection: str = "Cand2MuTrk"
    muon_collection: str = "Muon"
    track_collection: str = "Track"
    gen_collection: str = "GenPart"
    #: prefix of the trigger bits: ``Trigger_HLT_<path>``, ``Trigger_L1_<seed>``
    trigger_prefix: str = "Trigger_"
    #: HLT paths the producer keeps, as bits and as per-muon match flags ``Muon_<path>``
    hlt_paths: tuple[str, ...] = (
        "HLT_DoubleMu3_Trk_Tau3mu",
        "HLT_DoubleMu3_TkMu_DsTau3Mu_v",
        "HLT_DoubleMu3_Trk_Tau3mu_NoL1Mass_v",
        "HLT_DoubleMu4_3_LowMass_v",
        "HLT_DoubleMu4_LowMass_Displaced_v",
    )
    #: L1 seeds the producer keeps
    l1_seeds: tuple[str, ...] = (
        "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4",
        "L1_DoubleMu0er1p4_SQ_OS_dR_Max1p4",
        "L1_DoubleMu4_SQ_OS_dR_Max1p2",
        "L1_DoubleMu4p5_SQ_OS_dR_Max1p2",
        "L1_DoubleMu0er2p0_SQ_OS_dEta_Max1p6",
        "L1_DoubleMu0er2p0_SQ_OS_dEta_Max1p5",
        "L1_TripleMu_5SQ_3SQ_0_DoubleMu_5_3_SQ_OS_Mass_Max9",
        "L1_TripleMu_5SQ_3SQ_0OQ_DoubleMu_5_3_SQ_OS_Mass_Max9",
        "L1_TripleMu_2SQ_1p5SQ_0OQ_Mass_Max12",
        "L1_TripleMu_3SQ_2p5SQ_0OQ_Mass_Max12",
    )
    event: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro({"run": "run", "lumi": "luminosityBlock", "event": "event"})
    )
    #: analysis name -> field name inside ``Cand2MuTrk``
    candidate_fields: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {
                "mass": "mass",
                "vtx_chi2": "chi2",
                "flight_sig": "flightDistBSSig",
                "mu1_idx": "mu1_idx",
                "mu2_idx": "mu2_idx",
                "trk_idx": "tr_idx",
                "truth": "truth",
                "pt": "pt",
                "eta": "eta",
                "phi": "phi",
                "flight_dist": "flightDistBS",
            }
        )
    )
    #: analysis name -> field name inside ``Muon`` (the match flags come on top)
    muon_fields: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {
                "pt": "pt",
                "eta": "eta",
                "phi": "phi",
                "energy": "energy",
                "charge": "charge",
                "is_global": "isGlobal",
                "is_medium": "isMedium",
                "trg_dr": "trgDR",
                "trg_dpt": "trgDPT",
            }
        )
    )
    track_fields: MappingProxyType[str, str] = field(
        default_factory=lambda: _ro(
            {"pt": "pt", "eta": "eta", "phi": "phi", "dz": "dz", "dxy": "dxy"}
        )
    )
    #: simulation only: the muon's generator origin (0 none, 1 prompt Ds, 2 from a b
    #: hadron, 3 other), the generated particles, the true pileup
    decay_type: str = "Muon_decayType"
    gen_fields: tuple[str, ...] = (
        "pt",
        "eta",
        "phi",
        "mass",
        "pdgId",
        "status",
        "genPartIdxMother",
    )
    pileup: str = "Pileup_nTrueInt"
    #: candidate fields that are optional: synthetic truth, and what the proper decay
    #: length needs (absent: ct is NaN)
    optional_candidate: tuple[str, ...] = ("truth", "pt", "eta", "phi", "flight_dist")

    def branch(self, collection: str, field_name: str) -> str:
        """Flat branch name ``<Coll>_<field>`` of a collection field."""
        return f"{collection}_{field_name}"

    def counter(self, collection: str) -> str:
        """Counter branch ``n<Coll>``."""
        return f"n{collection}"

    def trigger_bit(self, name: str) -> str:
        """Branch of an HLT path's or L1 seed's bit: ``Trigger_<name>``."""
        return f"{self.trigger_prefix}{name}"

    def muon_match_flag(self, path: str) -> str:
        """Branch of the per-muon match flag of an HLT path: ``Muon_<path>``."""
        return self.branch(self.muon_collection, path)

    def candidate(self, era: str | None = None) -> MappingProxyType[str, str]:
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
