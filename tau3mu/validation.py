"""Every check of what a user gives, in one place, made before any file is opened or any
worker started: the numeric options, ``--selection``, ``--muon-sf``, the output folders
(``--out``, ``--checkpoint``) and the datasets' names.

Each mistake raises a :class:`~tau3mu.errors.Tau3MuError` whose message is one line
naming the option or the file and what is wrong; ``tau3mu.cli`` turns it into exit
code 2.

The ``--selection`` file is checked by :mod:`tau3mu.json_settings` (its rules are
there).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tau3mu.errors import OptionError, OutputError
from tau3mu.json_settings import read_json_object, refuse_duplicate_keys, selection_from_dict
from tau3mu.wording import few

__all__ = [
    "RunSetup",
    "check_dataset_names",
    "check_era",
    "check_numbers",
    "check_output_folder",
    "check_run",
    "few",
    "load_muon_sf",
    "load_selection",
    "read_json_object",
    "refuse_duplicate_keys",
    "selection_from_dict",
]


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
