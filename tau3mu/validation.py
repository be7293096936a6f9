"""Every check of what a user gives, in one place, made before any file is opened or any
worker started: the numeric options, ``--selection``, ``--muon-sf``, the output folders
(``--out``, ``--checkpoint``) and the datasets' names.

Each mistake raises a :class:`~tau3mu.errors.Tau3MuError` whose message is one line
naming the option or the file and what is wrong; ``tau3mu.cli`` turns it into exit
code 2.

The ``--selection`` check is generic over dataclasses: it walks
:func:`dataclasses.fields` and :func:`typing.get_type_hints` of the selection class
(nested dataclasses are nested JSON objects) and checks each value against its
annotated type, plus these rules by name:

- a ``float`` takes a JSON number (not a string, not ``true``) and must be finite;
- a ``tuple[float, float]`` named ``*_window`` is ``[low, high]`` with ``low < high``;
- a ``tuple[str, ...]`` is a list of strings (a bare string is refused: it would be
  read as its characters); it may be empty only where its default is;
- a number named ``min_*``, ``max_*``, ``*_min_*``, ``*_max_*`` or ``*_pt`` is not
  negative, one named ``*_mass`` is positive;
- ``bins`` is a positive integer and a dataclass with ``start`` and ``stop`` has
  ``start < stop``;
- a string named ``era`` or ``*_year`` is an era :mod:`tau3mu.eras` knows;
- an unknown key is named with its path and the closest known one.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import os
import tempfile
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tau3mu.errors import OptionError, OutputError

__all__ = [
    "RunSetup",
    "check_dataset_names",
    "check_era",
    "check_numbers",
    "check_output_folder",
    "check_run",
    "load_muon_sf",
    "load_selection",
    "refuse_duplicate_keys",
    "selection_from_dict",
]

#: the most bins ``h_mass`` may have (a larger number is a typo, and memory per chunk)
MAX_BINS = 100_000


# -- tau3mu run, all at once ----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RunSetup:
    """What ``tau3mu run`` was given, every part checked: the selection configuration
    (``--selection``, with ``--era`` as its default era), the ``--muon-sf`` scale
    factors (None when not given) and the datasets."""

    config: Any
    muon_sf: Any  # tau3mu.corrections.MuonScaleFactors | None
    datasets: list[Any]  # tau3mu.datasets.Dataset


def check_run(args: argparse.Namespace, options: Any) -> RunSetup:
    """Check everything ``tau3mu run`` was given, opening no input file and starting no
    worker: the options (:func:`tau3mu.pipeline.check_options` on ``options``, a
    :class:`tau3mu.pipeline.RunOptions`), the output folders, ``--selection`` (as the
    configuration type of ``options.channel``), ``--era``, ``--muon-sf`` (read once), the
    datasets (their file or paths) and their names. Nothing is written.

    Raises
    ------
    Tau3MuError
        The first mistake, as one line naming the option or file.
    """
    from tau3mu.channels import get_channel
    from tau3mu.datasets import datasets_from_inputs
    from tau3mu.pipeline import check_options

    check_options(options)
    check_output_folder(args.out, "--out")
    if args.checkpoint:
        check_output_folder(args.checkpoint, "--checkpoint")
    config_type = get_channel(options.channel).config_type
    config = load_selection(args.selection, config_type) if args.selection else config_type()
    if getattr(args, "era", None):
        config = dataclasses.replace(config, era=check_era(args.era, "--era"))
    # the file's own problems, named as --muon-sf's
    muon_sf = load_muon_sf(args.muon_sf) if args.muon_sf else None
    datasets = datasets_from_inputs(
        args.inputs, names=args.dataset, prefix=args.prefix, tree=args.tree
    )
    source = args.inputs[0] if len(args.inputs) == 1 else "the input files"
    check_dataset_names([d.name for d in datasets], source)
    return RunSetup(config, muon_sf, datasets)


def check_era(era: str, option: str) -> str:
    """``era`` if :mod:`tau3mu.eras` knows its year; else :class:`OptionError` naming
    ``option``."""
    from tau3mu.eras import EraError, year_of

    try:
        year_of(era)
    except EraError as err:
        raise OptionError(f"{option}: {err}") from None
    return era


# -- numeric options ---------------------------------------------------------------------
def check_numbers(
    args: argparse.Namespace, at_least: dict[str, int], positive: Sequence[str] = ()
) -> None:
    """Numeric options (attributes of ``args``; None means not given): those of
    ``at_least`` no lower than their bound, those of ``positive`` finite and above 0.

    Raises :class:`OptionError` ``--option VALUE: what is wrong``.
    """
    for name, low in at_least.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise OptionError(f"--{name.replace('_', '-')} {value}: must be at least {low}")
    for name in positive:
        value = getattr(args, name, None)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise OptionError(f"--{name.replace('_', '-')} {value}: must be a positive number")


# -- output folders ------------------------------------------------------------------------
def check_output_folder(path: str | Path, option: str = "") -> Path:
    """Check that the folder ``path`` (given as ``option``; empty for a positional
    argument) exists or can be created, and that files can be written in it; nothing is
    left behind by the check.

    Returns the path. Raises :class:`OutputError` naming the option: ``path`` or one of
    its parents is a file, or the folder cannot be created or written to.
    """
    path = Path(path).expanduser()
    given = f"{option} {path}" if option else str(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "is a file" if existing == path else f"is inside {existing}, which is a file"
        raise OutputError(f"{given}: {what}, not a folder")
    try:
        if existing == path:  # can a file be made in it?
            fd, probe = tempfile.mkstemp(prefix=".tau3mu-probe-", dir=path)
            os.close(fd)
            os.unlink(probe)
        else:  # can the missing folders be made?
            os.rmdir(tempfile.mkdtemp(prefix=".tau3mu-probe-", dir=existing))
    except OSError as err:
        verb = "cannot be written" if existing == path else f"cannot be created in {existing}"
        raise OutputError(f"{given}: {verb} ({err.strerror or err})") from None
    return path


# -- --selection ----------------------------------------------------------------------------
def load_selection(path: str | Path, cls: type | None = None) -> Any:
    """The selection of the JSON file ``path`` (``--selection``), checked; see the module
    docstring for the rules. ``cls`` defaults to :class:`tau3mu.config.SelectionConfig`.

    Raises
    ------
    OptionError
        ``--selection FILE: KEY.PATH: what is wrong``.
    """
    if cls is None:
        from tau3mu.config import SelectionConfig

        cls = SelectionConfig
    where = f"--selection {path}"
    return selection_from_dict(read_json_object(path, where), cls, where)


def read_json_object(path: str | Path, where: str) -> dict[str, Any]:
    """The JSON object in ``path``; ``where`` starts every error message."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise OptionError(f"{where}: cannot be read ({reason})") from None
    try:
        data = json.loads(text, object_pairs_hook=refuse_duplicate_keys(where))
    except json.JSONDecodeError as err:
        raise OptionError(
            f"{where}: not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None
    if not isinstance(data, dict):
        raise OptionError(f"{where}: expected a JSON object of settings, not {_describe(data)}")
    return data


def refuse_duplicate_keys(where: str, error: type[Exception] = OptionError) -> Any:
    """A ``json.loads`` ``object_pairs_hook`` raising ``error`` (``where: 'key' appears
    twice in the same object``) where plain JSON would keep the last value silently."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise error(f"{where}: {key!r} appears twice in the same object")
            out[key] = value
        return out

    return hook


def selection_from_dict(data: Any, cls: type, where: str, path: str = "") -> Any:
    """An instance of the dataclass ``cls`` from ``data`` (settings not given keep their
    defaults), every value checked against its annotation and the rules of the module
    docstring; ``path`` is the key path of ``data`` in the file (``run2``, ...).

    Raises :class:`OptionError` ``WHERE: PATH.KEY: what is wrong``.
    """
    if not isinstance(data, dict):
        raise OptionError(f"{where}: {path}: must be an object of settings, not {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    settable = [name for name, f in fields.items() if f.init]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{path}.{key}" if path else key
        spec = fields.get(key)
        if spec is None:
            raise OptionError(f"{where}: {name}: unknown setting{_suggest(key, settable)}")
        if not spec.init:  # fixed by the class (a period's name): may only be restated
            if value != _default(spec):
                raise OptionError(f"{where}: {name}: is {_default(spec)!r} and cannot be set")
            continue
        value = _checked(hints[key], value, name, where, _default(spec))
        _check_range(key, value, name, where)
        _check_era(key, value, name, where)
        kwargs[key] = value
    _check_relations(kwargs, fields, path, where)
    return cls(**kwargs)


def _default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return dataclasses.MISSING


def _checked(kind: Any, value: Any, name: str, where: str, default: Any = None) -> Any:
    """``value`` in the Python form of the annotation ``kind`` (lists become tuples,
    objects nested dataclasses), or :class:`OptionError`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        choices = [a for a in args if a is not type(None)]
        errors = []
        for choice in choices:
            try:
                return _checked(choice, value, name, where)
            except OptionError as err:
                errors.append(err)
        if len(choices) == 1:
            raise errors[0]
        raise OptionError(f"{where}: {name}: must be {_expected(kind)}, not {_describe(value)}")
    if origin is typing.Literal:
        if value not in args:
            raise OptionError(f"{where}: {name}: must be one of {list(args)}, not {value!r}")
        return value
    if dataclasses.is_dataclass(kind):
        return selection_from_dict(value, kind, where, name)
    if origin is tuple:
        return _checked_tuple(args, value, name, where, default)
    return _checked_scalar(kind, value, name, where)


def _checked_tuple(args: tuple, value: Any, name: str, where: str, default: Any) -> tuple:
    if isinstance(value, str):
        raise OptionError(
            f"{where}: {name}: must be a list such as [{json.dumps(value)}], not the string "
            f"{json.dumps(value)} (it would be read as its characters)"
        )
    if not isinstance(value, list):
        shape = "[low, high]" if name.endswith("_window") else "a list"
        raise OptionError(f"{where}: {name}: must be {shape}, not {_describe(value)}")
    if len(args) == 2 and args[1] is Ellipsis:
        if not value and default:
            raise OptionError(f"{where}: {name}: must not be empty")
        return tuple(_checked(args[0], v, f"{name}[{i}]", where) for i, v in enumerate(value))
    if len(value) != len(args):
        shape = "[low, high]" if name.endswith("_window") else f"{len(args)} values"
        raise OptionError(f"{where}: {name}: must be {shape}, not {len(value)} value(s)")
    out = tuple(
        _checked(a, v, f"{name}[{i}]", where)
        for i, (a, v) in enumerate(zip(args, value, strict=True))
    )
    if name.endswith("_window") and not out[0] < out[1]:
        raise OptionError(f"{where}: {name}: [{out[0]}, {out[1]}] is not a window: low >= high")
    return out


def _checked_scalar(kind: Any, value: Any, name: str, where: str) -> Any:
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(f"{where}: {name}: must be a number, not {_describe(value)}")
        if not math.isfinite(value):
            raise OptionError(f"{where}: {name}: must be a finite number, not {value}")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError(f"{where}: {name}: must be a whole number, not {_describe(value)}")
        return value
    if kind is bool and not isinstance(value, bool):
        raise OptionError(f"{where}: {name}: must be true or false, not {_describe(value)}")
    if kind is str and not isinstance(value, str):
        raise OptionError(f"{where}: {name}: must be a string, not {_describe(value)}")
    return value


def _check_range(key: str, value: Any, name: str, where: str) -> None:
    """The rules by name of the module docstring, for one number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    words = key.split("_")
    if key == "bins" and not 0 < value <= MAX_BINS:
        raise OptionError(f"{where}: {name}: must be between 1 and {MAX_BINS:,}, not {value}")
    if ("min" in words or "max" in words or words[-1] == "pt") and value < 0:
        raise OptionError(f"{where}: {name}: must not be negative, not {value}")
    if words[-1] == "mass" and value <= 0:
        raise OptionError(f"{where}: {name}: must be positive, not {value}")


def _check_era(key: str, value: Any, name: str, where: str) -> None:
    """An era (or a year) that :func:`tau3mu.eras.year_of` does not know is refused."""
    if not isinstance(value, str) or not (key == "era" or key.endswith("_year")):
        return
    from tau3mu.eras import year_of

    try:
        year_of(value)
    except ValueError as err:
        raise OptionError(f"{where}: {name}: {err}") from None


def _check_relations(kwargs: dict[str, Any], fields: dict[str, Any], path: str, where: str) -> None:
    """``start < stop`` in a dataclass that has both (given or default)."""
    if "start" in fields and "stop" in fields and ({"start", "stop"} & set(kwargs)):
        start = kwargs.get("start", _default(fields["start"]))
        stop = kwargs.get("stop", _default(fields["stop"]))
        if not start < stop:
            prefix = f"{path}." if path else ""
            raise OptionError(f"{where}: {prefix}start {start} is not below {prefix}stop {stop}")


def _expected(kind: Any) -> str:
    names = [getattr(a, "__name__", str(a)) for a in typing.get_args(kind)]
    return " or ".join("null" if n == "NoneType" else n for n in names)


def _describe(value: Any) -> str:
    """A JSON value as a user wrote it, for messages."""
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return f"a list {json.dumps(value)[:40]}"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- --muon-sf ------------------------------------------------------------------------------
def load_muon_sf(path: str | Path, correction: str | None = None) -> Any:
    """The :class:`~tau3mu.corrections.MuonScaleFactors` of ``path`` (``--muon-sf``):
    a correctionlib file holding ``correction`` (default
    ``NUM_MediumID_DEN_TrackerMuons``) that evaluates as ``(abseta, pt, variation)`` for
    every variation the analysis uses.

    Raises :class:`OptionError` ``--muon-sf FILE: what is wrong``.
    """
    import correctionlib

    from tau3mu.corrections import DEFAULT_CORRECTION, VARIATIONS, MuonScaleFactors

    correction = correction or DEFAULT_CORRECTION
    where = f"--muon-sf {path}"
    document = read_json_object(path, where)
    try:
        cset = correctionlib.CorrectionSet.from_string(json.dumps(document))
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OptionError(f"{where}: not a correctionlib (schema v2) file: {first}") from None
    names = list(cset)
    if correction not in names:
        raise OptionError(
            f"{where}: no correction {correction!r} in the file "
            + (f"(it has {few(names)})" if names else "(it has none)")
        )
    sf = MuonScaleFactors(path, correction)
    abseta, pt = (_inside(sf.domains.get(key)) for key in ("abseta", "pt"))
    for _, key in VARIATIONS:
        try:
            float(cset[correction].evaluate(abseta, pt, key))
        except Exception as err:
            raise OptionError(
                f"{where}: {correction!r} cannot be evaluated as (abseta, pt, {key!r}): {err}"
            ) from None
    return sf


def _inside(domain: Any) -> float:
    """A value inside a correction's input domain (a mid point where it is bounded)."""
    if domain is None:
        return 1.0
    low = domain.low if math.isfinite(domain.low) else 0.0
    return 0.5 * (low + domain.high) if math.isfinite(domain.high) else low + 1.0


# -- dataset names -----------------------------------------------------------------------------
#: suffixes that name the scale-factor variations' histograms in ``histograms.root``
RESERVED_SUFFIXES = ("_sf_up", "_sf_down")
#: the longest file name most file systems take, in bytes
MAX_FILE_NAME = 255
#: the longest file a dataset's name goes into: its fit figure
LONGEST_OUTPUT = "mass_fit_{}.png"


def check_dataset_names(names: Sequence[str], source: str) -> None:
    """Every dataset keeps its own outputs: refuse an empty name, a name whose file-safe
    spelling (:func:`tau3mu.outputs.safe_name`) ends like a variation's histogram or is
    too long for a file name, and two names whose file-safe spellings are the same,
    ignoring case (the figures' file names must differ on case-insensitive file systems
    too). ``source`` is the
    datasets file (or what made the datasets), for the message.

    Raises :class:`~tau3mu.datasets.DatasetError` naming both datasets.
    """
    from tau3mu.datasets import DatasetError
    from tau3mu.outputs import safe_name

    seen: dict[str, str] = {}
    for name in names:
        safe = safe_name(name)
        if not name.strip():
            raise DatasetError(f"{source}: a dataset has an empty name")
        if safe.endswith(RESERVED_SUFFIXES):
            raise DatasetError(
                f"{source}: dataset {name!r}: a name may not end in "
                f"{' or '.join(RESERVED_SUFFIXES)}, which name the scale-factor variations' "
                "histograms"
            )
        size = len(LONGEST_OUTPUT.format(safe).encode("utf-8"))
        if size > MAX_FILE_NAME:
            raise DatasetError(
                f"{source}: dataset {name[:40]!r}...: too long for its figure's file name "
                f"({size} bytes, at most {MAX_FILE_NAME})"
            )
        other = seen.setdefault(safe.casefold(), name)
        if other != name:
            raise DatasetError(
                f"{source}: datasets {other!r} and {name!r} would share the output name "
                f"{safe!r} (histograms.root keys, figure files); rename one"
            )


def few(names: Iterable[str], limit: int = 8) -> str:
    """``'a', 'b', ... (N in all)``: a listing that stays short however many names."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names):,} in all)" if len(names) > limit else "")
