"""Where a dataset's files are: a rootpath joined to a prefix as the original notebook
did, glob patterns expanded on the local disk or listed on the XRootD server, and no
file twice under two spellings; :class:`DatasetError` for what cannot be used."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from tau3mu.errors import Tau3MuError
from tau3mu.xrootd import is_remote, is_xrootd, split_url

__all__ = [
    "DatasetError",
    "expand_files",
    "expand_remote_glob",
    "file_identity",
    "has_glob",
    "join_rootpath",
    "no_file_twice",
]

_GLOB_CHARS = "*?["


class DatasetError(Tau3MuError, ValueError):
    """A datasets file or a path the user gave cannot be used as it is."""


def join_rootpath(prefix: str | None, rootpath: str) -> str:
    """The folder of a dataset: ``prefix`` + ``rootpath``, as the original notebook joined them.

    The rootpath is taken relative to the prefix whether it starts with a slash or not
    (``root://eosuser.cern.ch//eos/user/f/x/`` + ``/Skim/0000/`` ->
    ``root://eosuser.cern.ch//eos/user/f/x/Skim/0000``); XRootD keeps its ``//`` before the
    absolute path. Without a prefix, or for a rootpath that is already a URL, the rootpath
    is used as it is.
    """
    if not prefix or is_remote(rootpath):
        return rootpath
    if not is_remote(prefix):
        return str(Path(prefix) / rootpath.lstrip("/"))
    server, base = split_url(prefix)
    parts = [p for p in f"{base}/{rootpath}".split("/") if p]
    if is_xrootd(prefix):
        return f"{server}//" + "/".join(parts)
    return f"{server}/" + "/".join(parts)


def has_glob(path: str) -> bool:
    """Whether ``path`` is a glob pattern (has ``*``, ``?`` or ``[``)."""
    return any(c in path for c in _GLOB_CHARS)


def expand_files(where: str, paths: list[str]) -> tuple[list[str], tuple[tuple[str, int], ...]]:
    """``paths`` with their glob patterns expanded (each must match a file), the number
    of files each pattern matched, and no local file twice under two spellings.

    Raises :class:`DatasetError` starting with ``where``: a pattern matching nothing, a
    file twice, a remote folder that cannot be listed."""
    out: list[str] = []
    patterns = []
    for path in paths:
        if not has_glob(path):
            out.append(path)
            continue
        matches = expand_remote_glob(path) if is_remote(path) else _local_files(path)
        if not matches:
            raise DatasetError(f"{where}: the pattern {path!r} matches no file")
        patterns.append((path, len(matches)))
        out.extend(matches)
    no_file_twice(where, out)
    return out, tuple(patterns)


def _local_files(pattern: str) -> list[str]:
    """The files (not folders) a local glob pattern matches, sorted."""
    return sorted(m for m in glob.glob(pattern, recursive=True) if os.path.isfile(m))


def file_identity(path: str) -> str:
    """What a path is rather than how it is spelled: a local file's real path (symlinks and
    ``..`` resolved), a URL as it is."""
    return path if is_remote(path) else os.path.realpath(path)


def no_file_twice(where: str, paths: list[str]) -> None:
    """Raise DatasetError when two entries of ``paths`` are one file."""
    seen: dict[str, str] = {}
    for path in paths:
        identity = file_identity(path)
        if identity not in seen:
            seen[identity] = path
            continue
        first = seen[identity]
        raise DatasetError(
            f"{where}: {first!r} and {path!r} are the same file, listed twice"
            if first != path
            else f"{where}: {path!r} listed twice (its patterns overlap)"
        )


def expand_remote_glob(url: str) -> list[str]:
    """``root://host//dir/*.root`` -> the matching URLs, listed on the server (fsspec-xrootd)."""
    import fsspec

    try:
        fs, fs_path = fsspec.core.url_to_fs(url)
        found = fs.glob(fs_path, detail=True)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{url}: cannot list the remote folder: {err}") from err
    matches = sorted(m for m, info in found.items() if info.get("type") != "directory")
    return [fs.unstrip_protocol(m) for m in matches]
