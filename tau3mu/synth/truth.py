"""What the normalisation needs on top of the simulated events (docs/physics.md,
"Synthetic data for the normalisation"): the origin of each signal decay, the
candidates' flight distance, and the data's efficiency relative to simulation.

- **Origin.** Each Ds+ (and D+) decay comes from a b hadron with probability ``f_b``,
  else it is prompt (:data:`tau3mu.config.ORIGIN_PROMPT`, ``ORIGIN_FROM_B``).
- **Flight distance.** Every candidate gets ``flight_dist`` = its flight significance x
  a drawn error ``flight_dist_err`` (25-60 um, as the significance was drawn), so that
  distance and significance agree; a true candidate from a b hadron adds the b hadron's
  transverse flight, c tau_B x pT_B / m_B with pT_B = pT_D / z (z uniform in
  [``Z_MIN``, ``Z_MAX``], the share of the b hadron's momentum the D carries). Its
  proper decay length ct = L_xy m / pT then has the D's exponential, plus the b
  hadron's for non-prompt decays.
- **Efficiency ratio.** Data keep each signal event with probability R x SF(mu1) x
  SF(mu2) / c (the true candidate's muons, the same scale factors as the run's), c the
  largest value of SF(mu1) x SF(mu2), so that data have the efficiency of simulation
  times R times the scale factors' ratio, as real data do; the simulation's
  cross-section carries 1 / c (:func:`simulation_xsec_pb`), and R = N_Ds(data) /
  N_Ds(weighted simulation) is what a fit finds.

Every number here is drawn from its own generator, seeded from (seed, file index), after
and apart from the simulation's draws: files generated without these options keep their
content.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tau3mu.config import (
    B_CTAU,
    ORIGIN_FROM_B,
    ORIGIN_OTHER,
    ORIGIN_PROMPT,
    TRUTH_BACKGROUND,
    TRUTH_DS,
)
from tau3mu.synth.events import Collection, SyntheticEvents
from tau3mu.synth.physics import skim_survival
from tau3mu.synth.tuning import Tuning

__all__ = [
    "B_MASS",
    "B_PT_SHARE",
    "Z_MAX",
    "Z_MIN",
    "add_origin_and_flight",
    "generated_particles",
    "largest_event_sf",
    "run2_flight_branches",
    "select_events",
    "simulation_xsec_pb",
    "thin_signal",
]

#: mass of the b hadrons (B+/B0 average, GeV)
B_MASS = 5.2797
#: the D's share of the b hadron's transverse momentum: uniform in [Z_MIN, Z_MAX]
Z_MIN, Z_MAX = 0.4, 0.9
#: the generated b hadron's pT in the files' GenParticle/GenPart: the D's / this share
B_PT_SHARE = 0.5 * (Z_MIN + Z_MAX)
#: flight-distance errors (cm): uniform in [low, low + spread], the simulation's range
FLIGHT_ERR = (0.0025, 0.0035)


def _rng(seed: int, file_index: int, tag: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(file_index), tag]))


def add_origin_and_flight(
    events: SyntheticEvents, *, seed: int, file_index: int, f_b: float
) -> SyntheticEvents:
    """``events`` with ``origin`` per event and the candidate columns ``flight_dist`` and
    ``flight_dist_err`` (cm)."""
    rng = _rng(seed, file_index, 0x0B)
    n = len(events)
    signal = events.kind != TRUTH_BACKGROUND
    from_b = signal & (rng.random(n) < f_b)
    origin = np.where(signal, np.where(from_b, ORIGIN_FROM_B, ORIGIN_PROMPT), ORIGIN_OTHER)
    cand = events.candidates
    columns = cand.columns
    n_cand = len(columns["mass"])
    err = FLIGHT_ERR[0] + FLIGHT_ERR[1] * rng.random(n_cand)
    flight = columns["flight_sig"].astype(np.float64) * err
    # the b hadron's transverse flight for the true candidate of non-prompt decays
    event = np.repeat(np.arange(n), cand.counts)
    true_b = (columns["truth"] != TRUTH_BACKGROUND) & from_b[event]
    z = rng.uniform(Z_MIN, Z_MAX, n_cand)
    ct_b = rng.exponential(B_CTAU, n_cand)
    pt_b = columns["pt"].astype(np.float64) / z
    flight = flight + np.where(true_b, ct_b * pt_b / B_MASS, 0.0)
    new_columns = {
        **columns,
        "flight_dist": flight.astype(np.float32),
        "flight_dist_err": err.astype(np.float32),
    }
    candidates = Collection(cand.counts, new_columns)
    return dataclasses.replace(events, candidates=candidates, origin=origin.astype(np.int32))


def generated_particles(events: SyntheticEvents) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run 2 simulation's ``GenParticle_*`` (per event count, branch -> flat values): per
    signal event the Ds+ (or D+) along the reconstructed triplet's direction, its pion
    and two muons (true kinematics) and, for decays from a b hadron, the B+ (last);
    ``GenParticle_isBdecay`` is 1 for the b hadron's descendants, ``isB`` for the b
    hadron, ``isDs`` for the Ds+."""
    cand, mu, trk = events.candidates.columns, events.muons.columns, events.tracks.columns
    event = np.repeat(np.arange(len(events)), events.candidates.counts)
    true = np.flatnonzero(cand["truth"] != TRUTH_BACKGROUND)
    c = true[np.unique(event[true], return_index=True)[1]]
    ev = event[c]
    m1 = events.muons.offsets[ev] + cand["mu1_idx"][c]
    m2 = events.muons.offsets[ev] + cand["mu2_idx"][c]
    tk = events.tracks.offsets[ev] + cand["trk_idx"][c]
    is_ds = cand["truth"][c] == TRUTH_DS
    pdg = np.where(is_ds, 431, 411) * np.sign(cand["charge"][c])
    origin = events.origin if events.origin is not None else np.zeros(len(events), np.int32)
    from_b = origin[ev] == ORIGIN_FROM_B

    def true_of(columns: dict[str, np.ndarray], index: np.ndarray) -> list[np.ndarray]:
        return [columns[f"true_{k}"][index] for k in ("pt", "eta", "phi")]

    parent = [cand["pt"][c], cand["eta"][c], cand["phi"][c]]
    b_hadron = [cand["pt"][c] / B_PT_SHARE, cand["eta"][c], cand["phi"][c]]
    # (pdg, pt, eta, phi, isDs, isB, isBdecay, mother's pdg) per particle
    rows = [
        (pdg, *parent, is_ds, 0, from_b, np.where(from_b, 521, 0)),
        (211 * np.sign(pdg), *true_of(trk, tk), 0, 0, from_b, pdg),
        (-13 * mu["charge"][m1], *true_of(mu, m1), 0, 0, from_b, 333),
        (-13 * mu["charge"][m2], *true_of(mu, m2), 0, 0, from_b, 333),
        (521 * np.sign(pdg), *b_hadron, 0, 1, 0, 0),
    ]
    present = np.ones((len(c), len(rows)), dtype=bool)
    present[:, -1] = from_b
    names = ("PdgId", "Pt", "Eta", "Phi", "isDs", "isB", "isBdecay", "MotherPdgId")
    values = {
        f"GenParticle_{name}": np.stack([np.broadcast_to(row[k], len(c)) for row in rows], axis=1)[
            present
        ].astype(np.float64)
        for k, name in enumerate(names)
    }
    counts = np.zeros(len(events), dtype=np.int64)
    counts[ev] = len(rows) - 1 + from_b
    return counts, values


def run2_flight_branches(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run 2 branch -> the candidates' flight distance and its error (empty when the
    events have none: the branches keep their filler values)."""
    if "flight_dist" not in columns:
        return {}
    return {
        "FlightDistBS_SV": columns["flight_dist"],
        "FlightDistBS_SV_Err": columns["flight_dist_err"],
    }


def largest_event_sf(scale_factors: Any) -> float:
    """c: the largest nominal SF(mu1) x SF(mu2) the scale factors give (1 without them)."""
    if scale_factors is None:
        return 1.0
    import json
    from pathlib import Path

    document = json.loads(Path(scale_factors.path).read_text(encoding="utf-8"))
    names = [c["name"] for c in document["corrections"]]
    node = document["corrections"][names.index(scale_factors.correction_name)]["data"]
    return max(_leaves(node)) ** 2


def _leaves(node: Any) -> list[float]:
    """Every number a schema-v2 correction tree can return for the ``nominal`` variation
    (a category node with a ``nominal`` key is followed there only)."""
    if isinstance(node, int | float):
        return [float(node)]
    if not isinstance(node, dict):
        return []
    if "value" in node and "key" in node:
        return _leaves(node["value"])
    content = node.get("content")
    if node.get("nodetype") == "category" and isinstance(content, list):
        nominal = [item for item in content if item.get("key") == "nominal"]
        content = nominal or content
    if isinstance(content, list):
        return [x for child in content for x in _leaves(child)]
    if "value" in node:
        return _leaves(node["value"])
    return []


def thin_signal(
    events: SyntheticEvents,
    *,
    seed: int,
    file_index: int,
    efficiency_ratio: float,
    scale_factors: Any,
) -> SyntheticEvents:
    """Data: keep each signal event with probability R x SF(mu1) x SF(mu2) / c, the
    scale factors of its true candidate's muons (1 without scale factors)."""
    rng = _rng(seed, file_index, 0xEF)
    n = len(events)
    cand = events.candidates
    columns = cand.columns
    event = np.repeat(np.arange(n), cand.counts)
    true = np.flatnonzero(columns["truth"] != TRUTH_BACKGROUND)
    first = true[np.unique(event[true], return_index=True)[1]]
    weight = np.ones(len(first))
    if scale_factors is not None:
        muons = [
            (columns[f"{m}_eta"][first].astype(np.float64), columns[f"{m}_pt"][first])
            for m in ("mu1", "mu2")
        ]
        weights, _ = scale_factors.event_weights(
            [(eta, pt.astype(np.float64)) for eta, pt in muons]
        )
        weight = np.asarray(weights["nominal"], dtype=np.float64)
    keep = np.ones(n, dtype=bool)
    probability = efficiency_ratio * weight / largest_event_sf(scale_factors)
    keep[event[first]] = rng.random(len(first)) < probability
    return select_events(events, keep)


def select_events(events: SyntheticEvents, keep: np.ndarray) -> SyntheticEvents:
    """The events where ``keep`` is True, every per-event and per-entry array cut alike."""

    def collection(c: Collection) -> Collection:
        entries = np.repeat(keep, c.counts)
        return Collection(c.counts[keep], {k: v[entries] for k, v in c.columns.items()})

    def per_event(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v[keep] for k, v in values.items()}

    return dataclasses.replace(
        events,
        run=events.run[keep],
        lumi=events.lumi[keep],
        event=events.event[keep],
        muons=collection(events.muons),
        tracks=collection(events.tracks),
        candidates=collection(events.candidates),
        hlt=per_event(events.hlt),
        l1=per_event(events.l1),
        hlt_version=events.hlt_version[keep],
        kind=events.kind[keep],
        trigger3=per_event(events.trigger3),
        origin=None if events.origin is None else events.origin[keep],
    )


def simulation_xsec_pb(events_per_inverse_fb: float, scale_factors: Any) -> float:
    """The cross-section (pb) of the simulated process such that xsec x L / ngen, with
    ngen the raw simulated events, gives simulation the Ds+ yield of data of luminosity
    L divided by R (the data's efficiency ratio, applied by :func:`thin_signal`).

    Data of L fb^-1 hold L x ``events_per_inverse_fb`` events after the skim, from
    L x ``events_per_inverse_fb`` / S raw events (S: :func:`skim_survival` of data), a share
    ``ds_fraction`` of them Ds+ decays, kept with probability R SF1 SF2 / c; simulation
    has a share ``mc_ds_fraction`` of Ds+ among its ngen raw events. Equal Ds+ yields
    for R = 1 and SFs 1 then need xsec = events_per_inverse_fb x ds_fraction /
    (1000 x S x c x mc_ds_fraction).
    """
    tuning = Tuning()
    c = largest_event_sf(scale_factors)
    per_pb = events_per_inverse_fb / 1000.0
    return per_pb * tuning.ds_fraction / (skim_survival() * c * tuning.mc_ds_fraction)
