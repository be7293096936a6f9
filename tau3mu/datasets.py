"""Datasets: the original notebook's ``input.json`` format, or paths, globs and URLs.

``input.json``::

    {"DoubleMuonLowMass_2017B": {"rootpath": "/eos/.../", "files": "a.root b.root",
                                 "treename": "Tree3Mu/ntuple", "era": "2017",
                                 "lumi": 4.8, "type": "data"}}

Every problem is reported with the file, the dataset and what is wrong (and, for a
typo, what was probably meant), before anything is read.
"""

from __future__ import annotations

import difflib
import glob
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tau3mu.errors import Tau3MuError
from tau3mu.xrootd import is_remote, join_url

__all__ = [
    "Dataset",
    "DatasetError",
    "datasets_from_paths",
    "detect_tree",
    "is_remote",
    "load_datasets",
    "to_fileset",
]

REQUIRED = ("rootpath", "files", "treename")
#: optional keys and their defaults; ``metadata`` is an object passed on to the processor
OPTIONAL: dict[str, Any] = {"era": "2017", "lumi": None, "type": "data", "metadata": None}
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
    era: str = "2017"
    lumi: float | None = None
    type: str = "data"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_mc(self) -> bool:
        return self.type == "mc"


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _no_duplicates(path: Path):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise DatasetError(f"{path}: key {key!r} appears twice in the same object")
            seen[key] = value
        return seen

    return hook


def load_datasets(
    path: str | Path, *, names: Sequence[str] | None = None, prefix: str | None = None
) -> list[Dataset]:
    """Read ``input.json``; ``names`` selects datasets (in that order); ``prefix``
    (e.g. ``root://eosuser.cern.ch/``) goes before every rootpath that is not already a URL."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:  # missing, a folder, not UTF-8 text
        reason = getattr(err, "strerror", None) or err
        raise DatasetError(f"{path}: cannot read the datasets file ({reason})") from err
    try:
        content = json.loads(text, object_pairs_hook=_no_duplicates(path))
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
    for key in spec:
        if key not in known:
            raise DatasetError(
                f"{where}: unknown key {key!r}{_suggest(key, known)}; keys are {known}"
            )
    missing = [key for key in REQUIRED if key not in spec]
    if missing:
        raise DatasetError(f"{where}: missing key(s) {missing}")
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
    era = spec.get("era", OPTIONAL["era"])
    if isinstance(era, bool) or not isinstance(era, str | int):
        raise DatasetError(
            f"{where}: 'era' must be a string such as \"2017\", not {_type_name(era)}"
        )
    metadata = spec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DatasetError(f"{where}: 'metadata' must be an object, not {_type_name(metadata)}")

    rootpath = spec["rootpath"]
    if prefix and not is_remote(rootpath):
        rootpath = join_url(prefix, rootpath)
    return Dataset(
        name=name,
        files=[join_url(rootpath, f) for f in files],
        treename=spec["treename"],
        era=str(era),
        lumi=float(lumi) if lumi is not None else None,
        type=kind,
        metadata=dict(metadata),
    )


def _expand_remote_glob(url: str) -> list[str]:
    """``root://host//dir/*.root`` -> the matching URLs, listed on the server (fsspec-xrootd)."""
    import fsspec

    try:
        fs, fs_path = fsspec.core.url_to_fs(url)
        matches = sorted(fs.glob(fs_path))
    except (OSError, ValueError) as err:
        raise DatasetError(f"{url}: cannot list the remote folder: {err}") from err
    return [fs.unstrip_protocol(m) for m in matches]


def datasets_from_paths(
    paths: Sequence[str],
    *,
    treename: str | None = None,
    name: str = "files",
    era: str = "2017",
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
        files.extend(str(Path(match).resolve()) for match in matches)
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

    The metadata carries ``type``, ``era``, ``lumi`` and ``is_mc`` plus the dataset's own.
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
                **d.metadata,
            },
        }
    return fileset
