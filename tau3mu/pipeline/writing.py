"""``write``: an analysis's histograms, cutflow and snapshot into an output folder."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tau3mu.errors import OutputError
from tau3mu.outputs import cutflow_table, write_histograms, write_json, write_snapshot
from tau3mu.pipeline.analysis import Analysis
from tau3mu.pipeline.options import RunOptions

__all__ = ["Written", "start_outputs", "write", "writing_to"]


@dataclass(frozen=True)
class Written:
    """The files :func:`write` wrote, and the snapshot's description for ``report.json``
    (:func:`tau3mu.outputs.write_snapshot`)."""

    histograms_root: Path
    histograms_pickle: Path
    cutflow: Path
    snapshot: dict[str, Any]


def start_outputs(out: str | Path) -> Path:
    """Make the folder ``out`` and remove an earlier run's ``report.json`` from it:
    ``report.json`` marks a complete run, written last, so an earlier one must not stand
    beside this run's outputs should this one be interrupted. Returns the folder."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").unlink(missing_ok=True)
    return folder


def write(analysis: Analysis, out: str | Path, options: RunOptions) -> Written:
    """Write ``histograms.root``/``.pkl``, ``cutflow.json`` and the snapshot
    (``options.snapshot_format``) into ``out`` (which exists); print the cutflow table.

    Raises :class:`~tau3mu.errors.OutputError` naming ``--out`` when a file cannot be
    written.
    """
    folder = Path(out)
    output = analysis.output
    simulation = {d.name for d in analysis.datasets if d.is_mc}
    with writing_to(folder):
        paths = write_histograms(folder, output.hists, simulation=simulation)
        write_json(folder / "cutflow.json", output.cutflow)
        snapshot = write_snapshot(folder, output.snapshot, fmt=options.snapshot_format)
    print(cutflow_table(output.cutflow))
    return Written(paths["root"], paths["pickle"], folder / "cutflow.json", snapshot)


@contextlib.contextmanager
def writing_to(out: Path) -> Iterator[None]:
    """Writing the outputs in ``out``: a folder that stopped being writable during the
    run (checked before it) is the output side's fault, reported as ``--out``'s.

    Raises :class:`~tau3mu.errors.OutputError` for an :class:`OSError` in the body.
    """
    try:
        yield
    except OSError as err:
        name = Path(err.filename).name if err.filename else "an output"
        name = re.sub(r"^\.(.+)\.[^.]+\.part$", r"\1", name)  # atomic_path's temporary
        raise OutputError(f"--out {out}: cannot write {name} ({err.strerror or err})") from err
