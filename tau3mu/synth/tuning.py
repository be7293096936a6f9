"""The knobs of the synthetic-data simulation (:class:`Tuning`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tuning:
    """Knobs of the simulation; defaults reproduce docs/physics.md, "Synthetic data", after the selection."""

    #: event kinds in data and in simulation (``mc``: mostly Ds+, for scale factors)
    ds_fraction: float = 0.0131
    dplus_fraction: float = 0.0045
    mc_ds_fraction: float = 0.75
    mc_dplus_fraction: float = 0.10
    #: Poisson means of muons beyond the leading pair, tracks beyond the first, and
    #: candidates beyond the first (before the skim)
    extra_muons: float = 0.6
    extra_tracks: float = 3.0
    extra_candidates: float = 2.6
    #: share of background events whose candidates start at a random (pair, track)
    shuffled_candidates: float = 0.25
    #: background: share of real phi dimuons, of random (uncorrelated) muon pairs, of
    #: events whose track collection also holds a muon's own track (dR = 0)
    phi_fraction_background: float = 0.60
    random_pair_fraction: float = 0.20
    muon_track_copy: float = 0.30
    #: relative slope of the background mass density across the skim window
    background_slope: float = -0.60
    #: share of events kept although no candidate passed the skim (readers must cope)
    empty_fraction: float = 0.005
    #: relative pt resolution and angular resolution of muons and tracks
    pt_resolution: float = 0.0085
    angle_resolution: float = 0.0012
    #: vertex fit: share of the measured-momenta mass error kept, and the fit's own noise
    vertex_fit_keep: float = 0.85
    vertex_fit_noise: float = 0.0015
    #: the refit's resolution, as a fraction of the detector's, and its failure rate
    refit_fraction: float = 0.35
    refit_failure: float = 0.02
    skim_mass: tuple[float, float] = (1.55, 2.15)
    skim_dimuon: tuple[float, float] = (0.8, 3.0)
    #: skim on single particles (docs/physics.md, "Synthetic data"): muons pt > 2, |eta| < 2.4; tracks pt > 2
    skim_min_pt: float = 2.0
    skim_muon_abseta: float = 2.4
    skim_track_abseta: float = 2.5


__all__ = ["Tuning"]
