"""The keys of one dataset in ``input.json``: which are required, which are optional,
and the checks of each value (type, range, era), with a hint for a misspelt key.

:func:`check_keys` turns one dataset's object into :class:`DatasetKeys` (validated
values, files not yet expanded) or raises :class:`DatasetError` naming the file, the
dataset and what is wrong.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tau3mu.dataset_files import DatasetError
from tau3mu.eras import EraError, year_of
from tau3mu.wording import suggestion

__all__ = ["OPTIONAL", "REQUIRED", "TYPES", "DatasetKeys", "check_keys"]

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
TYPES = ("data", "mc")


@dataclass(frozen=True)
class DatasetKeys:
    """One dataset's checked keys: ``files`` as listed (relative to ``rootpath``, not yet
    expanded), ``metadata`` with the keys tau3mu does not use (``unused``) merged in."""

    rootpath: str
    files: list[str]
    treename: str
    era: str | None
    lumi: float | None
    type: str
    xsec: float | None
    ngen: float | None
    metadata: dict[str, Any]
    unused: tuple[str, ...]


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


def check_keys(where: str, spec: Any) -> DatasetKeys:
    """Check one dataset's object of ``input.json`` (``where`` names the file and the
    dataset in messages). Returns its values; raises :class:`DatasetError` for a missing
    or mistyped key, an empty or repeated file list, an unknown type, a negative lumi, a
    non-positive xsec or ngen, or an unknown era."""
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
    files = _files(where, spec["files"])
    if not isinstance(spec.get("metadata") or {}, dict):
        raise DatasetError(
            f"{where}: 'metadata' must be an object, not {_type_name(spec['metadata'])}"
        )
    kind = spec.get("type", OPTIONAL["type"])
    if kind not in TYPES:
        hint = suggestion(kind.lower(), TYPES) if isinstance(kind, str) else ""
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
    era = _era(where, spec.get("era", OPTIONAL["era"]))
    return DatasetKeys(
        rootpath=spec["rootpath"],
        files=files,
        treename=spec["treename"],
        era=era,
        lumi=float(lumi) if lumi is not None else None,
        type=kind,
        xsec=xsec,
        ngen=ngen,
        metadata={**(spec.get("metadata") or {}), **{key: spec[key] for key in unused}},
        unused=unused,
    )


def _files(where: str, raw_files: Any) -> list[str]:
    """The ``files`` value as a list: a string of space-separated names, or a list of them;
    neither empty nor with a name twice."""
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
    return files


def _era(where: str, era: Any) -> str | None:
    """The ``era`` value as a string (a year alone may be a number), or None; an era
    :func:`tau3mu.eras.year_of` does not know is an error."""
    if era is not None and (isinstance(era, bool) or not isinstance(era, str | int)):
        raise DatasetError(
            f"{where}: 'era' must be a string such as \"2017B\", not {_type_name(era)}"
        )
    if era is None:
        return None
    try:
        year_of(str(era))
    except EraError as err:
        raise DatasetError(f"{where}: {err}") from None
    return str(era)


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
