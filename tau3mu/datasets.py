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

import glob
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from tau3mu.dataset_files import (
    DatasetError,
    expand_files,
    expand_remote_glob,
    file_identity,
    has_glob,
    join_rootpath,
)
from tau3mu.dataset_keys import OPTIONAL, REQUIRED, TYPES, check_keys
from tau3mu.json_settings import refuse_duplicate_keys
from tau3mu.wording import few, suggestion
from tau3mu.xrootd import is_remote, join_url

__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetFiles",
    "Fileset",
    "datasets_from_inputs",
    "datasets_from_paths",
    "detect_tree",
    "input_notes",
    "is_remote",
    "join_rootpath",
    "load_datasets",
    "to_fileset",
]


class DatasetFiles(TypedDict):
    """One dataset of a :data:`Fileset`: its files (path or URL -> tree name) and the
    metadata the processor sees (``type``, ``era``, ``lumi``, ``is_mc`` and the
    dataset's own keys)."""

    files: dict[str, str]
    metadata: dict[str, Any]


#: coffea's fileset: dataset name -> its files and metadata (:func:`to_fileset`)
Fileset = dict[str, DatasetFiles]


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
            hints = ", ".join(f"{n!r}{suggestion(n, content)}" for n in unknown[:3])
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise DatasetError(
                f"{path}: unknown dataset {hints}{more}; known datasets: {few(sorted(content))}"
            )
        selected = list(dict.fromkeys(names))
    return [_parse(path, name, content[name], prefix) for name in selected]


def _parse(path: Path, name: str, spec: Any, prefix: str | None) -> Dataset:
    where = f"{path}: dataset {name!r}"
    keys = check_keys(where, spec)
    rootpath = join_rootpath(prefix, keys.rootpath)
    paths, patterns = expand_files(where, [join_url(rootpath, f) for f in keys.files])
    return Dataset(
        name=name,
        files=paths,
        treename=keys.treename,
        era=keys.era,
        lumi=keys.lumi,
        type=keys.type,
        xsec=keys.xsec,
        ngen=keys.ngen,
        metadata=keys.metadata,
        unused_keys=keys.unused,
        patterns=patterns,
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
        keys = ", ".join(f"{key!r}{suggestion(key, [*REQUIRED, *OPTIONAL])}" for key in unused)
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


def datasets_from_inputs(
    inputs: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    prefix: str | None = None,
    tree: str | None = None,
) -> list[Dataset]:
    """The datasets of ``tau3mu run``'s inputs: one datasets JSON (:func:`load_datasets`,
    ``names`` selecting among them, ``prefix`` before each rootpath), else files, globs,
    folders and URLs making one dataset (:func:`datasets_from_paths`, tree ``tree``).

    Raises :class:`DatasetError`: ``names`` given with files, or what the two readers
    raise.
    """
    if len(inputs) == 1 and inputs[0].endswith(".json"):
        return load_datasets(inputs[0], names=names, prefix=prefix)
    if names:
        raise DatasetError(
            f"--dataset {' '.join(names)} selects datasets of a datasets JSON; "
            "the inputs are files, which make one dataset"
        )
    return datasets_from_paths(inputs, treename=tree)


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

    Raises :class:`DatasetError`: a pattern that matches nothing, a folder without
    ``.root`` files, no path at all, or one file given twice (two paths, or a path and a
    pattern or folder that also matches it), naming the file.
    """
    if isinstance(paths, str):
        paths = [paths]
    if kind not in TYPES:
        raise DatasetError(f"dataset type must be one of {list(TYPES)}, not {kind!r}")
    files: list[str] = []
    given_by: dict[str, str] = {}  # file -> the path, pattern or folder that gave it
    for p in paths:
        if is_remote(p):
            for url in expand_remote_glob(p) if has_glob(p) else [p]:
                _add_once(files, given_by, url, p)
            continue
        if has_glob(p):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                raise DatasetError(f"{p}: no file matches")
        elif Path(p).is_dir():
            matches = sorted(str(m) for m in Path(p).glob("*.root"))
            if not matches:
                raise DatasetError(f"{p}: a folder without .root files")
        else:
            matches = [p]  # a missing file is reported by the inspection (or skipped)
        for match in matches:
            _add_once(files, given_by, file_identity(str(Path(match).absolute())), p)
    if not files:
        raise DatasetError("no input files given")
    return [Dataset(name=name, files=files, treename=treename, era=era, lumi=lumi, type=kind)]


def _add_once(files: list[str], given_by: dict[str, str], path: str, given: str) -> None:
    """Append ``path`` (found from the input ``given``) to ``files``; a file found twice
    raises :class:`DatasetError` naming it and the two inputs that gave it."""
    if path in given_by:
        first = given_by[path]
        inputs = f"by {given!r}" if first == given else f"by {first!r} and by {given!r}"
        raise DatasetError(f"{path!r} is given twice ({inputs}): list each file once")
    given_by[path] = given
    files.append(path)


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


def to_fileset(datasets: Sequence[Dataset], *, default_tree: str | None = None) -> Fileset:
    """coffea's fileset form ``{name: {"files": {path: tree}, "metadata": {...}}}``.

    The metadata carries ``type``, ``era``, ``lumi`` and ``is_mc``, ``xsec`` and ``ngen``
    where given, plus the dataset's own.
    """
    fileset: Fileset = {}
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
