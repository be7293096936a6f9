"""The simulated events' containers: :class:`SyntheticEvents`, one file's events in the
analysis names of :mod:`tau3mu.layouts`, and its jagged :class:`Collection`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Collection:
    """A jagged collection: per-event counts and flat per-entry columns.

    ``blocks`` (optional): 2D arrays whose rows are columns of the given names (the
    compiled generator's output), so that selecting entries is one gather per block.
    """

    counts: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    blocks: list[tuple[np.ndarray, tuple[str, ...]]] = field(default_factory=list, repr=False)

    @classmethod
    def from_blocks(
        cls,
        counts: np.ndarray,
        blocks: list[tuple[np.ndarray, tuple[str, ...]]],
        columns: dict[str, np.ndarray],
        order: tuple[str, ...],
    ) -> Collection:
        """Columns of ``order`` from rows of ``blocks`` and from ``columns``."""
        named = dict(columns)
        for block, names in blocks:
            named.update(zip(names, block, strict=True))
        return cls(counts, {k: named[k] for k in order}, blocks)

    @property
    def offsets(self) -> np.ndarray:
        return offsets_of(self.counts)


@dataclass
class SyntheticEvents:
    """One file's worth of simulated events, in the analysis names of :mod:`tau3mu.layouts`.

    ``candidates.columns`` hold mass, vtx_chi2, pv_ntracks, flight_sig, the links
    mu1_idx/mu2_idx/trk_idx (local indices into the event's muons and tracks), copies
    of the linked kinematics mu{1,2}_{pt,eta,phi} and trk_{pt,eta,phi}, the refitted
    muons mu{1,2}_refit_{pt,eta,phi} (-99 where the refit failed), mu{1,2}_trig_dr,
    the triplet's pt/eta/phi/charge and truth (TRUTH_*).
    """

    run: np.ndarray
    lumi: np.ndarray
    event: np.ndarray
    muons: Collection
    tracks: Collection
    candidates: Collection
    hlt: dict[str, np.ndarray]
    l1: dict[str, np.ndarray]
    hlt_version: np.ndarray
    kind: np.ndarray  # per event: TRUTH_* of the event's true decay (0: background only)
    #: the Run 3 producer's trigger bits (HLT paths and L1 seeds, its names), per event
    trigger3: dict[str, np.ndarray] = field(default_factory=dict)
    #: raw events simulated before the skim kept these (simulation's ``ngen``)
    raw_events: int = 0
    #: per event: ORIGIN_* of its signal decay (:mod:`tau3mu.synth.truth`), None if not drawn
    origin: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.run)


def offsets_of(counts: np.ndarray) -> np.ndarray:
    """Offsets (``int64``, from 0, ``len(counts) + 1`` values) of lists of ``counts``."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


__all__ = ["Collection", "SyntheticEvents", "offsets_of"]
