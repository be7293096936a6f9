"""A JSON object of settings read into a dataclass, every value checked: what
``--selection`` gives (:func:`tau3mu.validation.load_selection`).

The check is generic over dataclasses: it walks
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

Each mistake raises :class:`~tau3mu.errors.OptionError` as one line: where (the option
and file), the key path and what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

from tau3mu.errors import OptionError
from tau3mu.wording import suggestion

__all__ = ["MAX_BINS", "read_json_object", "refuse_duplicate_keys", "selection_from_dict"]

#: the most bins ``h_mass`` may have (a larger number is a typo, and memory per chunk)
MAX_BINS = 100_000


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
            raise OptionError(f"{where}: {name}: unknown setting{suggestion(key, settable)}")
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


def _default(spec: dataclasses.Field[Any]) -> Any:
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
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return selection_from_dict(value, kind, where, name)
    if origin is tuple:
        return _checked_tuple(args, value, name, where, default)
    return _checked_scalar(kind, value, name, where)


def _checked_tuple(
    args: tuple[Any, ...], value: Any, name: str, where: str, default: Any
) -> tuple[Any, ...]:
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
