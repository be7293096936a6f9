"""What tau3mu keeps between runs, in the user's cache folder.

Inspecting an input file (:func:`tau3mu.inspection.inspect_inputs`) opens it and deserialises
its tree: ~0.15-0.2 s of Python for a full-width Run 2 file, on every run, before any
event is read. A local file that has not changed since a run found it good need not be
opened again for that: :class:`InspectionCache` keeps its entries and UUID, keyed by the
file's identity on disk (path, device, inode, size, modification and change times), the
tree, the era and the rules the inspection applied. It is what coffea users do by hand
when they save the output of ``preprocess`` to a JSON file and reuse it, without the risk
of reusing it for a file that changed.

Only good verdicts are kept (a bad file is inspected, and reported, on every run), and
only for local files: a remote file's identity costs a round trip to check. The folder is
``$TAU3MU_CACHE_DIR``, else ``$XDG_CACHE_HOME/tau3mu``, else ``~/.cache/tau3mu``;
``TAU3MU_CACHE_DIR=off`` (or ``tau3mu run --no-inspection-cache``) turns it off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from tau3mu.atomic import write_text
from tau3mu.xrootd import is_remote, local_path

__all__ = ["InspectionCache", "cache_dir", "file_identity"]

log = logging.getLogger(__name__)

_FORMAT = 1  # bump when what an entry means changes
_OFF = ("", "0", "off", "none", "false", "no")


def cache_dir() -> Path | None:
    """tau3mu's cache folder, or None when the user turned caching off."""
    explicit = os.environ.get("TAU3MU_CACHE_DIR")
    if explicit is not None:
        return None if explicit.strip().lower() in _OFF else Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tau3mu"


def file_identity(path: str) -> dict[str, int | str]:
    """What tells a local file on disk from any other, and from its own earlier versions:
    real path, device, inode, size, modification and change times (raises OSError)."""
    st = os.stat(path)
    return {
        "path": os.path.realpath(path),
        "device": st.st_dev,
        "inode": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
    }


class InspectionCache:
    """Entries, UUIDs and branches of local files that an earlier inspection found good.

    ``rules`` names what the inspection checked (the required branches, the branches it
    read the trees for): a verdict made under other rules is not reused. Unreadable or
    foreign entries count as misses, and a cache folder that cannot be written is
    ignored: the cache only ever saves work.
    """

    def __init__(self, root: Path | None, *, era: str, rules: str) -> None:
        self.root = None if root is None else Path(root) / "inspection"
        self.era = era
        self.rules = rules
        self.hits = 0

    @classmethod
    def default(cls, *, era: str, rules: str) -> InspectionCache:
        return cls(cache_dir(), era=era, rules=rules)

    def _identity(self, path: str, tree: str) -> tuple[str, dict] | None:
        if self.root is None or is_remote(path):
            return None
        try:
            on_disk = file_identity(local_path(path))
        except OSError:
            return None
        identity = {
            "format": _FORMAT,
            **on_disk,
            "tree": tree,
            "era": self.era,
            "rules": self.rules,
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return digest, identity

    def _file(self, digest: str) -> Path:
        assert self.root is not None
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, path: str, tree: str) -> tuple[int, bytes, frozenset[str]] | None:
        """(entries, UUID, the schema's branches the file has: empty where not recorded)
        if the file is unchanged since it was found good, else None."""
        found = self._identity(path, tree)
        if found is None:
            return None
        digest, identity = found
        try:
            entry = json.loads(self._file(digest).read_text())
            if entry["identity"] != identity:
                return None
            branches = frozenset(str(name) for name in entry.get("branches", []))
            result = int(entry["entries"]), bytes.fromhex(entry["uuid"]), branches
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self.hits += 1
        return result

    def put(
        self,
        path: str,
        tree: str,
        entries: int,
        uuid: bytes,
        branches: frozenset[str] = frozenset(),
    ) -> None:
        """Remember a good verdict (atomically: a reader never sees half an entry)."""
        found = self._identity(path, tree)
        if found is None:
            return
        digest, identity = found
        target = self._file(digest)
        entry = {"identity": identity, "entries": entries, "uuid": uuid.hex()}
        text = json.dumps({**entry, "branches": sorted(branches)})
        try:
            write_text(target, text)
        except OSError as err:
            log.debug("inspection cache not written (%s): %s", target, err)
