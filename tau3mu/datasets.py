"""Datasets: the original notebook's ``input.json`` format, or paths, globs and URLs.

``input.json``::

    {"2017B": {"type": "data", "skim": "dsphipi",
               "rootpath": "SkimPhiPi_UL2017_Run2017B/0000/", "files": "a.root b.root",
               "treename": "Tree3Mu/ntuple", "era": "2017B", "lumi": 4.8}}

A simulation dataset (``"type": "mc"``) adds ``xsec`` (pb, the generated process
including filter efficiency) and ``ngen`` (events generated before any skim, or the sum
of generator weights): the two keys its normalisation needs (:mod:`tau3mu.weights`).

- ``rootpath`` joins ``prefix`` as the original notebook did (prefix + rootpath + "/" +
  file), whether it starts or ends with a slash or not (:func:`join_rootpath`).
- ``files`` (and ``rootpath``) may be glob patterns (``*``, ``?``, ``[...]``), expanded
  locally or on the XRootD server; a pattern that matches nothing is an error.
- Keys tau3mu does not use (the original's ``skim``, or any other) are kept as the
  dataset's metadata, named once by :func:`input_notes`, never an error.
- A file listed twice in a dataset, under any spelling that resolves to the same local
  file (a symlink, ``../``), is an error naming both entries.

Every problem is reported with the file, the dataset and what is wrong (and, for a
typo, what was probably meant), before anything is read.
"""

from __future__ import annotations

import difflib
import glob
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tau3mu.eras import EraError, year_of
from tau3mu.errors import Tau3MuError
from tau3mu.validation import refuse_duplicate_keys
from tau3mu.xrootd import is_remote, is_xrootd, join_url, split_url

__all__ = [
    "Dataset",
    "DatasetError",
    "datasets_from_paths",
    "detect_tree",
    "input_notes",
    "is_remote",
    "join_rootpath",
    "load_datasets",
    "to_fileset",
]

REQUIRED = ("rootpath", "files", "treename")
#: optional keys and their defaults; ``metadata`` is an object passed on to the processor
OPTIONAL: dict[str, Any] = {
    "era": None,
    "lumi": None,
    "type": "data",
    "metadata": None,
    "xsec": None,
    "ngen": None,
}
#: keys of the original input.json that tau3mu reads no meaning from (kept as metadata)
ORIGINAL_UNUSED = ("skim",)
TYPES = ("data", "mc")
_GLOB_CHARS = "*?["


class DatasetError(Tau3MuError, ValueError):
    """A datasets file or a path the user gave cannot be used as it is."""


@dataclass(frozen=True)
class Dataset:
    """One dataset: its files (full paths or URLs) and what the analysis needs to know."""

    name: str
    files: list[str]
    treename: str | None
    #: the data-taking era (``"2017B"``, ``"2022F"``); None: the run's default, else the
    #: files' layout decides the period (:mod:`tau3mu.eras`)
    era: str | None = None
    lumi: float | None = None
    type: str = "data"
    #: simulation: cross-section in pb (filter efficiency included) and events generated
    xsec: float | None = None
    ngen: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: keys of the datasets file that tau3mu does not use (their values are in ``metadata``)
    unused_keys: tuple[str, ...] = field(default=(), compare=False)
    #: glob patterns of the datasets file and how many files each matched
    patterns: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    @property
    def is_mc(self) -> bool:
        return self.type == "mc"


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _misspelt(missing: Sequence[str], given: Sequence[str]) -> str:
    """`` ('flies' is given: a misspelling of 'files'?)`` for the keys that look like typos."""
    hints = []
    for key in missing:
        close = difflib.get_close_matches(key, list(given), n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} is given: a misspelling of {key!r}?")
    return f" ({'; '.join(hints)})" if hints else ""


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def load_datasets(
    path: str | Path, *, names: Sequence[str] | None = None, prefix: str | None = None
) -> list[Dataset]:
    """Read ``input.json``; ``names`` selects datasets (in that order); ``prefix``
    (e.g. ``root://eosuser.cern.ch//eos/user/f/x/``) goes before every rootpath that is not
    already a URL (:func:`join_rootpath`). Glob patterns are expanded here (listed on the
    server for URLs). Raises :class:`DatasetError` naming the file, dataset and problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:  # missing, a folder, not UTF-8 text
        reason = getattr(err, "strerror", None) or err
        raise DatasetError(f"{path}: cannot read the datasets file ({reason})") from err
    try:
        content = json.loads(text, object_pairs_hook=refuse_duplicate_keys(str(path), DatasetError))
    except json.JSONDecodeError as err:
        line = text.splitlines()[err.lineno - 1] if 0 < err.lineno <= len(text.splitlines()) else ""
        near = line[max(err.colno - 31, 0) : err.colno + 10].strip()  # one line, however long
        raise DatasetError(
            f"{path}: not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
            + (f", near {near!r}" if near else "")
        ) from err
    if not isinstance(content, dict) or not content:
        raise DatasetError(
            f"{path}: expected a non-empty object of datasets "
            "{name: {rootpath, files, treename, era, lumi, type}}"
        )
    if prefix is not None and not isinstance(prefix, str):
        raise DatasetError(
            f"prefix must be a string such as 'root://eosuser.cern.ch/', not {prefix!r}"
        )
    selected = list(content)
    if names:
        unknown = [n for n in names if n not in content]
        if unknown:
            from tau3mu.validation import few

            hints = ", ".join(f"{n!r}{_suggest(n, content)}" for n in unknown[:3])
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise DatasetError(
                f"{path}: unknown dataset {hints}{more}; known datasets: {few(sorted(content))}"
            )
        selected = list(dict.fromkeys(names))
    return [_parse(path, name, content[name], prefix) for name in selected]


def _parse(path: Path, name: str, spec: Any, prefix: str | None) -> Dataset:
    where = f"{path}: dataset {name!r}"
    if not isinstance(spec, dict):
        raise DatasetError(
            f"{where}: expected an object with keys {list(REQUIRED)}, not {_type_name(spec)}"
        )
    known = [*REQUIRED, *OPTIONAL]
    unused = tuple(key for key in spec if key not in known)
    missing = [key for key in REQUIRED if key not in spec]
    if missing:
        raise DatasetError(f"{where}: missing key(s) {missing}{_misspelt(missing, unused)}")
    for key in ("rootpath", "treename"):
        if not isinstance(spec[key], str):
            raise DatasetError(f"{where}: {key!r} must be a string, not {_type_name(spec[key])}")
    if not spec["treename"].strip():
        raise DatasetError(
            f"{where}: 'treename' is empty (Run 2: 'Tree3Mu/ntuple', Run 3: 'Events')"
        )
    raw_files = spec["files"]
    if isinstance(raw_files, str):
        files = raw_files.split()
    elif isinstance(raw_files, list) and all(isinstance(f, str) for f in raw_files):
        files = [f.strip() for f in raw_files if f.strip()]
    else:
        raise DatasetError(
            f"{where}: 'files' must be a string of space-separated file names, not {_type_name(raw_files)}"
        )
    if not files:
        raise DatasetError(f"{where}: 'files' is empty")
    duplicates = sorted({f for f in files if files.count(f) > 1})
    if duplicates:
        raise DatasetError(f"{where}: file(s) listed twice: {duplicates}")
    if not isinstance(spec.get("metadata") or {}, dict):
        raise DatasetError(
            f"{where}: 'metadata' must be an object, not {_type_name(spec['metadata'])}"
        )
    kind = spec.get("type", OPTIONAL["type"])
    if kind not in TYPES:
        hint = _suggest(kind.lower(), TYPES) if isinstance(kind, str) else ""
        raise DatasetError(f"{where}: 'type' must be one of {list(TYPES)}, not {kind!r}{hint}")
    lumi = spec.get("lumi")
    if lumi is not None and (
        isinstance(lumi, bool)
        or not isinstance(lumi, int | float)
        or not math.isfinite(lumi)
        or lumi < 0
    ):
        raise DatasetError(f"{where}: 'lumi' must be a non-negative number (fb^-1), not {lumi!r}")
    xsec, ngen = (
        _positive(where, spec, key, unit) for key, unit in (("xsec", "pb"), ("ngen", "events"))
    )
    era = spec.get("era", OPTIONAL["era"])
    if era is not None and (isinstance(era, bool) or not isinstance(era, str | int)):
        raise DatasetError(
            f"{where}: 'era' must be a string such as \"2017B\", not {_type_name(era)}"
        )
    if era is not None:
        try:
            year_of(str(era))
        except EraError as err:
            raise DatasetError(f"{where}: {err}") from None
    metadata = {**(spec.get("metadata") or {}), **{key: spec[key] for key in unused}}
    rootpath = join_rootpath(prefix, spec["rootpath"])
    paths, patterns = _expand_files(where, [join_url(rootpath, f) for f in files])
    return Dataset(
        name=name,
        files=paths,
        treename=spec["treename"],
        era=str(era) if era is not None else None,
        lumi=float(lumi) if lumi is not None else None,
        type=kind,
        xsec=xsec,
        ngen=ngen,
        metadata=metadata,
        unused_keys=unused,
        patterns=patterns,
    )


def _positive(where: str, spec: dict[str, Any], key: str, unit: str) -> float | None:
    """``spec[key]`` as a float when given: a finite number above 0 (else DatasetError)."""
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DatasetError(f"{where}: {key!r} must be a number ({unit}), not {value!r}")
    if value <= 0:
        raise DatasetError(f"{where}: {key!r} must be above 0 ({unit}), not {value!r}")
    return float(value)


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


def _has_glob(path: str) -> bool:
    return any(c in path for c in _GLOB_CHARS)


def _expand_files(where: str, paths: list[str]) -> tuple[list[str], tuple[tuple[str, int], ...]]:
    """``paths`` with their glob patterns expanded (each must match a file), the number
    of files each pattern matched, and no local file twice under two spellings."""
    out: list[str] = []
    patterns = []
    for path in paths:
        if not _has_glob(path):
            out.append(path)
            continue
        matches = _expand_remote_glob(path) if is_remote(path) else _local_files(path)
        if not matches:
            raise DatasetError(f"{where}: the pattern {path!r} matches no file")
        patterns.append((path, len(matches)))
        out.extend(matches)
    _no_file_twice(where, out)
    return out, tuple(patterns)


def _local_files(pattern: str) -> list[str]:
    """The files (not folders) a local glob pattern matches, sorted."""
    return sorted(m for m in glob.glob(pattern, recursive=True) if os.path.isfile(m))


def file_identity(path: str) -> str:
    """What a path is rather than how it is spelled: a local file's real path (symlinks and
    ``..`` resolved), a URL as it is."""
    return path if is_remote(path) else os.path.realpath(path)


def _no_file_twice(where: str, paths: list[str]) -> None:
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


def input_notes(datasets: Sequence[Dataset]) -> list[str]:
    """Lines to tell the user about the datasets file: the keys tau3mu does not use (one
    line for all datasets) and how many files each dataset's patterns matched."""
    notes = []
    unused: dict[str, list[str]] = {}
    for d in datasets:
        for key in d.unused_keys:
            unused.setdefault(key, []).append(d.name)
    if unused:
        keys = ", ".join(f"{key!r}{_suggest(key, [*REQUIRED, *OPTIONAL])}" for key in unused)
        notes.append(
            f"note: keys tau3mu does not use, kept as dataset metadata: {keys} "
            f"(in {len({n for names in unused.values() for n in names})} dataset(s))"
        )
    for d in datasets:
        if d.patterns:
            found = sum(n for _, n in d.patterns)
            notes.append(
                f"dataset {d.name!r}: {found} file(s) found by "
                + ", ".join(f"{p} ({n})" for p, n in d.patterns)
            )
    return notes


def _expand_remote_glob(url: str) -> list[str]:
    """``root://host//dir/*.root`` -> the matching URLs, listed on the server (fsspec-xrootd)."""
    import fsspec

    try:
        fs, fs_path = fsspec.core.url_to_fs(url)
        found = fs.glob(fs_path, detail=True)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{url}: cannot list the remote folder: {err}") from err
    matches = sorted(m for m, info in found.items() if info.get("type") != "directory")
    return [fs.unstrip_protocol(m) for m in matches]


def datasets_from_paths(
    paths: Sequence[str],
    *,
    treename: str | None = None,
    name: str = "files",
    era: str | None = None,
    kind: str = "data",
    lumi: float | None = None,
) -> list[Dataset]:
    """One dataset from local paths, folders (their ``*.root``), globs and ``root://`` URLs.

    Remote globs are listed on the server. A plain path that does not exist is kept: the
    pre-flight inspection reports it (or skips it with ``--skip-bad-files``). The tree
    is detected later (:func:`to_fileset`) when ``treename`` is None.
    """
    if isinstance(paths, str):
        paths = [paths]
    if kind not in TYPES:
        raise DatasetError(f"dataset type must be one of {list(TYPES)}, not {kind!r}")
    files: list[str] = []
    for p in paths:
        if is_remote(p):
            files.extend(_expand_remote_glob(p) if any(c in p for c in _GLOB_CHARS) else [p])
            continue
        if any(c in p for c in _GLOB_CHARS):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                raise DatasetError(f"{p}: no file matches")
        elif Path(p).is_dir():
            matches = sorted(str(m) for m in Path(p).glob("*.root"))
            if not matches:
                raise DatasetError(f"{p}: a folder without .root files")
        else:
            matches = [p]  # a missing file is reported by the inspection (or skipped)
        files.extend(file_identity(str(Path(match).absolute())) for match in matches)
    if not files:
        raise DatasetError("no input files given")
    files = list(dict.fromkeys(files))
    return [Dataset(name=name, files=files, treename=treename, era=era, lumi=lumi, type=kind)]


def detect_tree(path: str) -> str:
    """The analysis tree of a file: ``Tree3Mu/ntuple`` (Run 2) or ``Events`` (Run 3)."""
    from tau3mu.layouts import RUN2, RUN3
    from tau3mu.xrootd import open_root

    with open_root(path, attempts=2) as f:
        for tree in (RUN2.tree, RUN3.tree):
            if tree in f:
                return tree
        keys = f.keys(cycle=False, recursive=False)
    raise DatasetError(
        f"{path}: neither {RUN2.tree!r} nor {RUN3.tree!r} in the file (it has {keys[:10]})"
    )


def _detect_any(dataset: Dataset) -> str:
    """The tree of the first file of ``dataset`` that opens (bad files are dealt with later)."""
    errors = []
    for path in dataset.files:
        try:
            return detect_tree(path)
        except DatasetError:
            raise
        except Exception as err:  # unreadable: try the next file
            errors.append(f"{path}: {type(err).__name__}: {err}")
    raise DatasetError(
        f"dataset {dataset.name!r}: cannot detect the tree, no file opens (pass --tree); "
        + "; ".join(errors[:3])
    )


def to_fileset(datasets: Sequence[Dataset], *, default_tree: str | None = None) -> dict[str, Any]:
    """coffea's fileset form ``{name: {"files": {path: tree}, "metadata": {...}}}``.

    The metadata carries ``type``, ``era``, ``lumi`` and ``is_mc``, ``xsec`` and ``ngen``
    where given, plus the dataset's own.
    """
    fileset: dict[str, Any] = {}
    for d in datasets:
        if d.name in fileset:
            raise DatasetError(f"dataset {d.name!r} given twice")
        tree = d.treename or default_tree or _detect_any(d)
        fileset[d.name] = {
            "files": dict.fromkeys(d.files, tree),
            "metadata": {
                "type": d.type,
                "era": d.era,
                "lumi": d.lumi,
                "is_mc": d.is_mc,
                **{k: v for k, v in (("xsec", d.xsec), ("ngen", d.ngen)) if v is not None},
                **d.metadata,
            },
        }
    return fileset
