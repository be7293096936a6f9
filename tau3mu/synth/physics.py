"""Layout-independent simulation of skimmed 2 mu + track events (docs/physics.md, "Synthetic data").

Each event holds a muon collection, a track collection and mu mu track candidates built
from them (so one muon serves several candidates, as in real skims). Three kinds of
events: Ds+ -> phi(mu mu) pi+ and D+ -> phi(mu mu) pi+ with PDG masses and lifetimes,
and combinatorial background (random dimuons, a share of them real phi, with nearby
tracks whose momenta put the mu mu track mass on a linearly falling spectrum).

The candidate mass is the vertex-fit-like mass of its own muons and track: the mass of
the measured momenta, pulled towards the mass of the true momenta by
``Tuning.vertex_fit_keep`` (the fit's improvement), plus a little fit noise. Peaks come
out at the PDG masses with ~11.5 MeV resolution; the dimuon of measured muons has
~11 MeV, the refitted muon tracks about a third of it.

The stages: :mod:`tau3mu.synth.raw` simulates chunks of raw events (:mod:`~tau3mu.synth.leading`,
:mod:`~tau3mu.synth.muons`, :mod:`~tau3mu.synth.tracks`, :mod:`~tau3mu.synth.candidates`:
compiled per-event loops, numba, :mod:`~tau3mu.synth.float32` arithmetic, the inline
generator of :mod:`~tau3mu.synth.rng` seeded from the file's); :func:`simulate` keeps
the skimmed events of the chunks (:mod:`~tau3mu.synth.gathered`) and draws the trigger.

Speed: the compiled loops make one pass over the events per collection and redraw
rejected decays per event; raw events are simulated in chunks of ``RAW_CHUNK`` so that
their temporaries reuse memory; discrete distributions come from lookup tables. The
skim is applied to candidates before their expensive fields are drawn, the trigger drawn
for kept events only. Values are float32 (or int/bool), so the same events written in
both layouts hold identical numbers. A file depends only on ``(seed, file_index)``.
"""

from __future__ import annotations

import functools

import numpy as np

from tau3mu.config import TRUTH_BACKGROUND
from tau3mu.layouts import RUN3
from tau3mu.synth.events import SyntheticEvents
from tau3mu.synth.gathered import GatheredCollection
from tau3mu.synth.raw import simulate_raw
from tau3mu.synth.rng import rng_state
from tau3mu.synth.tuning import Tuning

F32 = np.float32
#: raw events simulated at a time: the temporaries of a chunk (~20 MB) stay below glibc's
#: mmap threshold, so the next chunk reuses their memory instead of faulting in (and the
#: kernel zeroing) fresh pages, which cost more than the arithmetic
RAW_CHUNK = 1 << 16
#: the tuning of docs/physics.md (frozen, shared)
DEFAULT_TUNING = Tuning()

#: HLT paths and L1 seeds of the synthetic menu (Run 2 keeps names, Run 3 bools)
HLT_PATHS = (
    "HLT_DoubleMu3_Trk_Tau3mu",
    "HLT_DoubleMu4_3_LowMass",
    "HLT_Tau3Mu_Mu7_Mu1_TkMu1_IsoTau15",
)
L1_SEEDS = (
    "L1_DoubleMu0er1p5_SQ_OS_dR_Max1p4",
    "L1_DoubleMu4_SQ_OS_dR_Max1p2",
    "L1_TripleMu_5_3_3",
    "L1_SingleMu22",
)
#: per path / seed: probability to fire in (signal, background) events
HLT_RATES = {HLT_PATHS[0]: (0.90, 0.80), HLT_PATHS[1]: (0.35, 0.35), HLT_PATHS[2]: (0.05, 0.05)}
L1_RATES = {
    L1_SEEDS[0]: (0.80, 0.80),
    L1_SEEDS[1]: (0.30, 0.30),
    L1_SEEDS[2]: (0.12, 0.12),
    L1_SEEDS[3]: (0.20, 0.20),
}
#: the Run 3 producer's trigger bits (:data:`tau3mu.layouts.RUN3`'s HLT paths, then its L1
#: seeds, in the layout's order): probability to fire in (signal, background) events
RUN3_TRIGGER_RATES = dict(
    zip(
        (*RUN3.hlt_paths, *RUN3.l1_seeds),
        (
            (0.60, 0.50),
            (0.30, 0.20),
            (0.50, 0.45),
            (0.85, 0.75),
            (0.35, 0.25),
            (0.80, 0.78),
            (0.30, 0.30),
            (0.45, 0.40),
            (0.30, 0.30),
            (0.30, 0.30),
            (0.30, 0.30),
            (0.30, 0.30),
            (0.30, 0.30),
            (0.30, 0.30),
            (0.30, 0.30),
        ),
        strict=True,
    )
)


def _rng(seed: int, file_index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(file_index), 0x7A3]))


# -- the simulation --------------------------------------------------------------------------
def simulate(
    seed: int,
    file_index: int,
    n_events: int,
    *,
    mc: bool = False,
    run_number: int = 297050,
    first_event: int | None = None,
    tuning: Tuning = DEFAULT_TUNING,
) -> SyntheticEvents:
    """Simulate ``n_events`` skimmed events of file ``file_index`` of a dataset seeded ``seed``.

    Like the real skim, events keep at least one candidate, except a small share
    (``Tuning.empty_fraction``) kept empty on purpose: readers must cope with them.
    Event numbers start at ``first_event`` (default ``file_index * 10**7``), so files of
    one dataset never share an event number.
    """
    rng = _rng(seed, file_index)
    state = rng_state(rng)  # the compiled kernels' generator, seeded by the file's
    n = int(n_events)
    # raw events in chunks; the kept entries of each are copied once, straight into the
    # file's arrays. About 69 % of raw events keep a candidate after the skim (data;
    # the estimate is updated chunk by chunk)
    collections = {name: GatheredCollection(n) for name in ("muons", "tracks", "candidates")}
    per_event: list[np.ndarray] = []
    have, survival, raw_events = 0, 0.69, 0
    while have < n or not per_event:
        want = n - have
        n_raw = min(max(int(want / survival * 1.01) + 16, 64), RAW_CHUNK)
        raw = simulate_raw(rng, state, n_raw, mc, tuning)
        keep = (raw.candidates.counts > 0) | (rng.random(n_raw) < tuning.empty_fraction)
        survival = max(float(keep.mean()), 0.05)
        keep &= np.cumsum(keep) <= want
        # the raw events this file used: up to its last kept one in the final chunk
        last = np.flatnonzero(keep)
        complete = have + len(last) >= n
        raw_events += int(last[-1]) + 1 if complete and len(last) else n_raw
        for name, gathered in collections.items():
            gathered.add(getattr(raw, name), keep)
        per_event.append(raw.kind[keep])
        have += int(keep.sum())
    kind = np.concatenate(per_event)
    # the trigger depends only on the event's kind: drawn for the kept events only
    signal = kind != TRUTH_BACKGROUND
    if first_event is None:
        first_event = file_index * 10_000_000
    return SyntheticEvents(
        run=np.full(n, run_number, dtype=np.uint32),
        lumi=(1 + file_index * 97 + np.arange(n) // 500).astype(np.uint32),
        event=(first_event + np.arange(n)).astype(np.uint64),
        muons=collections["muons"].collection(),
        tracks=collections["tracks"].collection(),
        candidates=collections["candidates"].collection(),
        hlt=_fired(rng, signal, HLT_RATES),
        l1=_fired(rng, signal, L1_RATES),
        hlt_version=np.full(n, 8 + file_index % 5, dtype=np.int64),
        kind=kind,
        # drawn last: the draws above, and so the Run 2 files, do not depend on them
        trigger3=_fired(rng, signal, RUN3_TRIGGER_RATES),
        raw_events=raw_events,
    )


@functools.cache
def skim_survival(mc: bool = False, n_raw: int = 1 << 18, seed: int = 0x5EED) -> float:
    """The share of raw events the skim keeps (events with a candidate, plus the few kept
    empty), measured on ``n_raw`` raw events of a fixed seed: the factor between the
    events a file holds and the raw events (luminosity, ``ngen``) they stand for."""
    tuning = Tuning()
    rng = _rng(seed, 0)
    state = rng_state(rng)
    with_candidate = 0
    for start in range(0, n_raw, RAW_CHUNK):
        raw = simulate_raw(rng, state, min(RAW_CHUNK, n_raw - start), mc, tuning)
        with_candidate += int(np.count_nonzero(raw.candidates.counts > 0))
    share = with_candidate / n_raw
    return share + (1.0 - share) * tuning.empty_fraction


def _fired(
    rng: np.random.Generator, signal: np.ndarray, rates: dict[str, tuple[float, float]]
) -> dict[str, np.ndarray]:
    """Per path or seed: whether it fired, with the rate of (signal, background) events."""
    return {
        name: rng.random(len(signal), dtype=F32) < np.where(signal, F32(r_sig), F32(r_bkg))
        for name, (r_sig, r_bkg) in rates.items()
    }


__all__ = [
    "DEFAULT_TUNING",
    "HLT_PATHS",
    "HLT_RATES",
    "L1_RATES",
    "L1_SEEDS",
    "RAW_CHUNK",
    "RUN3_TRIGGER_RATES",
    "SyntheticEvents",
    "Tuning",
    "simulate",
    "skim_survival",
]
