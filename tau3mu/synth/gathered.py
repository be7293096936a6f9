"""A collection's kept entries, gathered chunk by chunk into the file's arrays."""

from __future__ import annotations

import numpy as np

from tau3mu.synth.events import Collection
from tau3mu.synth.float32 import jit_kernel


@jit_kernel
def gather(source, index, target, start):
    """target[:, start + k] = source[:, index[k]] for every row (any dtype)."""
    for r in range(source.shape[0]):
        for k in range(len(index)):
            target[r, start + k] = source[r, index[k]]


class GatheredCollection:
    """A collection's arrays for the whole file, filled with the kept entries chunk by chunk.

    The arrays are allocated once (size estimated from the first chunk, grown if needed)
    and trimmed by views at the end: each kept value is copied once, by a compiled gather.
    """

    def __init__(self, n_events: int):
        self.n_events = n_events
        self.size = 0
        self.counts: list[np.ndarray] = []
        self.blocks: list[tuple[np.ndarray, tuple[str, ...]]] = []
        self.order: tuple[str, ...] = ()

    def add(self, c: Collection, keep: np.ndarray) -> None:
        """Append the entries of the events of ``c`` where ``keep`` (bool per event)."""
        index = np.flatnonzero(np.repeat(keep, c.counts))
        sources = list(c.blocks)
        in_blocks = {name for _, names in sources for name in names}
        sources += [(v[None, :], (k,)) for k, v in c.columns.items() if k not in in_blocks]
        kept_events = int(keep.sum())
        if not self.blocks:
            self.order = tuple(c.columns)
            per_event = len(index) / max(kept_events, 1)
            capacity = int(per_event * self.n_events * 1.05) + 1024
            self.blocks = [
                (np.empty((b.shape[0], capacity), dtype=b.dtype), names) for b, names in sources
            ]
        capacity = self.blocks[0][0].shape[1]
        if self.size + len(index) > capacity:  # rare: grow, keeping what is filled
            capacity = max(2 * capacity, self.size + len(index))
            grown = []
            for block, names in self.blocks:
                new = np.empty((block.shape[0], capacity), dtype=block.dtype)
                new[:, : self.size] = block[:, : self.size]
                grown.append((new, names))
            self.blocks = grown
        for (target, _), (source, _) in zip(self.blocks, sources, strict=True):
            gather(source, index, target, self.size)
        self.size += len(index)
        self.counts.append(c.counts[keep])

    def collection(self) -> Collection:
        """The entries added so far, as one collection (views of the arrays)."""
        counts = np.concatenate(self.counts)
        blocks = [(block[:, : self.size], names) for block, names in self.blocks]
        return Collection.from_blocks(counts, blocks, {}, self.order)


__all__ = ["GatheredCollection", "gather"]
