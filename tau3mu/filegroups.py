"""Small files of one dataset analysed together: one unit of work, one processor call.

coffea's Runner makes at least one chunk of every file, and every chunk pays the
processor's fixed cost (NanoEvents typing, ~550 awkward calls, histograms booked and
merged) however few events it holds. The original analysis's ``input.json`` lists 143
files of a few thousand events each, so that fixed cost, not the events, set its wall
time. Here consecutive chunks of one dataset (same tree, same metadata) that together
hold at most the chunk size are one :class:`FileGroup`: each member file is opened and
read as its own chunk would read it (lazy trees, one-pass vectors; with lazy trees, the
tree the inspection kept in this process), but read once and not kept open for later
work, the members' branches are joined into one NanoEvents array and the processor runs
once (:mod:`tau3mu.group_work`). This module says what a group is and
which chunks make one.

A group is only a faster way to the same output: its members must type the schema's
branches alike, and the process running it must have a tested coffea (else an
:class:`UnjoinableGroupError`). A group that fails for any reason is run again member
by member (:func:`tau3mu.chunks.retry_chunk`), so that a bad chunk is named, retried or
skipped on its own, as without groups. A group's checkpoint stands for the group
(:meth:`FileGroup.metadata`); a rerun that forms other groups computes them again.

Joining the members reaches into coffea's NanoEvents internals (its ``UprootSourceMapping``
and ``NanoEventsFactory._from_mapping``): groups are formed only where
:func:`tau3mu.reading.supported` allows coffea's private parts, and
``TAU3MU_FILE_GROUPS=off`` runs one chunk per file as coffea does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from coffea.processor.executor import WorkItem

__all__ = [
    "FILE_GROUPS_ENV",
    "MAX_GROUP_FILES",
    "UNITS_PER_WORKER",
    "FileGroup",
    "GroupLayoutError",
    "UnjoinableGroupError",
    "UntestedCoffeaError",
    "files_per_group",
    "group_chunks",
    "grouping_enabled",
]

#: ``off`` runs one chunk per file, as coffea's Runner does
FILE_GROUPS_ENV = "TAU3MU_FILE_GROUPS"
#: files a group holds at most: each is open (a file handle, or an XRootD server's) while
#: the group runs
MAX_GROUP_FILES = 64
#: units of work per worker that grouping leaves where the files allow (for balance)
UNITS_PER_WORKER = 2


class UnjoinableGroupError(Exception):
    """A group's files cannot be analysed as one; the caller runs them one by one
    (:func:`tau3mu.chunks.retry_chunk` does so after any error of a group)."""


class GroupLayoutError(UnjoinableGroupError, TypeError):
    """The files of a group do not type the schema's branches alike."""


class UntestedCoffeaError(UnjoinableGroupError, RuntimeError):
    """The process running a group has a coffea whose NanoEvents internals, which a group
    is joined through, are not those of a tested version (:func:`tau3mu.reading.supported`)."""


@dataclass(frozen=True)
class FileGroup:
    """Consecutive chunks (coffea ``WorkItem``) of one dataset's files, analysed as one."""

    members: tuple[WorkItem, ...]

    @property
    def dataset(self) -> str:
        return self.members[0].dataset

    @property
    def treename(self) -> str:
        return self.members[0].treename

    def __len__(self) -> int:
        return sum(len(member) for member in self.members)

    def fileuuid(self) -> bytes:
        """16 bytes that stand for the members: their files' UUIDs and entry ranges."""
        digest = hashlib.sha256()
        for member in self.members:
            uuid = member.fileuuid
            digest.update(uuid if isinstance(uuid, bytes) else str(uuid).encode())
            digest.update(f":{member.entrystart}-{member.entrystop};".encode())
        return digest.digest()[:16]

    def metadata(self) -> dict[str, Any]:
        """The events' metadata, as coffea gives a chunk's: the dataset's metadata, the
        first member's file (``files``: every member's) and the group's entries
        ``0``-``len(self)``; the checkpoint of the group is keyed by it."""
        first = self.members[0]
        return {
            "dataset": self.dataset,
            "filename": first.filename,
            "treename": self.treename,
            "entrystart": 0,
            "entrystop": len(self),
            "fileuuid": self.fileuuid().hex(),
            **(first.usermeta or {}),
            "files": [member.filename for member in self.members],
        }


def files_per_group(chunks: int, workers: int) -> int:
    """The most files a group may hold so that ``chunks`` chunks still make at least
    :data:`UNITS_PER_WORKER` units of work per worker where they can (one worker: no
    limit but :data:`MAX_GROUP_FILES`).

    >>> files_per_group(143, 1), files_per_group(143, 2), files_per_group(128, 16)
    (64, 36, 4)
    """
    if workers <= 1:
        return MAX_GROUP_FILES
    return max(1, min(MAX_GROUP_FILES, -(-chunks // (UNITS_PER_WORKER * workers))))


def grouping_enabled() -> bool:
    """Whether small files are grouped: coffea's private parts are allowed
    (:func:`tau3mu.reading.supported`) and ``$TAU3MU_FILE_GROUPS`` is not ``off``."""
    from tau3mu.reading import supported, switched_off

    return supported("coffea") and not switched_off(FILE_GROUPS_ENV)


def _same_unit(a: WorkItem, b: WorkItem) -> bool:
    return (a.dataset, a.treename, a.usermeta, a.preload) == (
        b.dataset,
        b.treename,
        b.usermeta,
        b.preload,
    )


def group_chunks(
    chunks: Iterable[WorkItem], chunksize: int, max_files: int = MAX_GROUP_FILES
) -> list[WorkItem | FileGroup]:
    """``chunks`` with each run of consecutive chunks of one dataset (same tree, metadata
    and preloads) that together hold at most ``chunksize`` events, and are at most
    ``max_files``, made one :class:`FileGroup`; a chunk left alone stays as it is. The
    order is kept.

    >>> from coffea.processor.executor import WorkItem
    >>> items = [WorkItem("d", f"{k}.root", "t", 0, 400, b"") for k in range(5)]
    >>> [len(unit) for unit in group_chunks(items, 1000)]
    [800, 800, 400]
    """
    units: list[WorkItem | FileGroup] = []
    run: list[WorkItem] = []
    events = 0
    for chunk in chunks:
        fits = events + len(chunk) <= chunksize and len(run) < max_files
        if run and (not fits or not _same_unit(run[0], chunk)):
            units.append(run[0] if len(run) == 1 else FileGroup(tuple(run)))
            run, events = [], 0
        run.append(chunk)
        events += len(chunk)
    if run:
        units.append(run[0] if len(run) == 1 else FileGroup(tuple(run)))
    return units
