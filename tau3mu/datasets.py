"""Datasets: the original notebook's ``input.json`` format, or paths, globs and URLs.

``input.json``::

    {"DoubleMuonLowMass_2017B": {"rootpath": "/eos/.../", "files": "a.root b.root",
                                 "treename": "Tree3Mu/ntuple", "era": "2017",
                                 "lumi": 4.8, "type": "data"}}

Every problem is reported with the file, the dataset and what is wrong (and, for a
typo, what was probably meant).
"""

from __future__ import annotations

import difflib
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED = ("rootpath", "files", "treename")
OPTIONAL = {"era": "2017", "lumi": None, "type": "data"}
TYPES = ("data", "mc")


class DatasetError(ValueError):
    """A datasets file or a path the user gave cannot be used as it is."""


@dataclass(frozen=True)
class Dataset:
    name: str
    files: tuple[str, ...]
    treename: str | None
    era: str = "2017"
    lumi: float | None = None
    type: str = "data"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_mc(self) -> bool:
        return self.type == "mc"


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _join(prefix: str | None, rootpath: str, name: str) -> str:
    """Full path of a file; ``prefix`` + ``/eos/...`` gives ``root://host//eos/...``."""
    if is_remote(name) or name.startswith("/"):
        return name
    base = rootpath
    if prefix and not is_remote(rootpath):
        base = prefix.rstrip("/") + "/" + rootpath
    return base.rstrip("/") + "/" + name


def detect_tree(path: str) -> str:
    """The analysis tree of a file: ``Tree3Mu/ntuple`` (Run 2) or ``Events`` (Run 3)."""
    import uproot

    from tau3mu.layouts import RUN2, RUN3

    with uproot.open(path) as f:
        for tree in (RUN2.tree, RUN3.tree):
            if tree in f:
                return tree
        keys = [k.split(";")[0] for k in f.keys()]
    raise DatasetError(f"{path}: neither {RUN2.tree!r} nor {RUN3.tree!r} in the file (it has {keys[:10]})")


def load_datasets(
    path: str | Path, *, names: list[str] | None = None, prefix: str | None = None
) -> list[Dataset]:
    """Read ``input.json``; ``names`` selects datasets; ``prefix`` (e.g. ``root://eosuser.cern.ch/``)
    is put before every rootpath that is not already a URL."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the datasets file ({err.strerror})") from err
    try:
        content = json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from err
    if not isinstance(content, dict) or not content:
        raise DatasetError(f"{path}: expected an object of datasets {{name: {{rootpath, files, treename, ...}}}}")
    if names:
        unknown = [n for n in names if n not in content]
        if unknown:
            hints = []
            for n in unknown:
                close = difflib.get_close_matches(n, list(content), n=1)
                hints.append(f"{n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise DatasetError(f"{path}: unknown dataset {', '.join(hints)}; known: {sorted(content)}")
    out = []
    for name, spec in content.items():
        if names and name not in names:
            continue
        out.append(_parse(path, name, spec, prefix))
    return out


def _parse(path: Path, name: str, spec: Any, prefix: str | None) -> Dataset:
    where = f"{path}: dataset {name!r}"
    if not isinstance(spec, dict):
        raise DatasetError(f"{where}: expected an object with keys {list(REQUIRED)}")
    known = {*REQUIRED, *OPTIONAL}
    for key in spec:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DatasetError(f"{where}: unknown key {key!r}{hint}; keys are {sorted(known)}")
    missing = [key for key in REQUIRED if key not in spec]
    if missing:
        raise DatasetError(f"{where}: missing key(s) {missing}")
    for key in REQUIRED:
        if not isinstance(spec[key], str):
            raise DatasetError(f"{where}: {key!r} must be a string, not {type(spec[key]).__name__}")
    files = spec["files"].split()
    if not files:
        raise DatasetError(f"{where}: 'files' is empty")
    kind = spec.get("type", "data")
    if kind not in TYPES:
        raise DatasetError(f"{where}: 'type' must be one of {list(TYPES)}, not {kind!r}")
    lumi = spec.get("lumi")
    if lumi is not None and not isinstance(lumi, int | float):
        raise DatasetError(f"{where}: 'lumi' must be a number (fb^-1), not {lumi!r}")
    full = tuple(_join(prefix, spec["rootpath"], f) for f in files)
    return Dataset(
        name=name,
        files=full,
        treename=spec["treename"],
        era=str(spec.get("era", OPTIONAL["era"])),
        lumi=float(lumi) if lumi is not None else None,
        type=kind,
    )


def datasets_from_paths(
    paths: list[str], *, name: str = "files", treename: str | None = None, era: str = "2017", kind: str = "data"
) -> list[Dataset]:
    """One dataset from local paths, globs and ``root://`` URLs; the tree is found later if None."""
    files: list[str] = []
    for p in paths:
        if is_remote(p):
            files.append(p)
            continue
        if any(c in p for c in "*?["):
            matches = sorted(glob.glob(p))
            if not matches:
                raise DatasetError(f"{p}: no file matches")
        else:
            matches = [p]  # a missing file is reported by the inspection (or skipped)
        files.extend(str(Path(match).resolve()) for match in matches)
    return [Dataset(name=name, files=tuple(files), treename=treename, era=era, type=kind)]


def to_fileset(datasets: list[Dataset], *, default_tree: str | None = None) -> dict[str, Any]:
    """coffea's fileset form ``{name: {"files": {path: tree}, "metadata": {...}}}``."""
    fileset = {}
    for d in datasets:
        tree = d.treename or default_tree or detect_tree(d.files[0])
        fileset[d.name] = {
            "files": dict.fromkeys(d.files, tree),
            "metadata": {"type": d.type, "era": d.era, "lumi": d.lumi, **d.metadata},
        }
    return fileset
