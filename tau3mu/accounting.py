"""Accounting: every input event is processed, or reported as skipped, exactly once.

:func:`check_accounting` proves that processed plus skipped events equal the events of
the usable input files; :func:`accounting_line` says it in one line.
"""

from __future__ import annotations

from typing import Any

from tau3mu.errors import Tau3MuError
from tau3mu.inspection import Inspection

__all__ = ["AccountingError", "accounting_line", "check_accounting"]


class AccountingError(Tau3MuError, RuntimeError):
    """Processed plus skipped events do not add up to the input."""


def check_accounting(
    inspection: Inspection,
    cutflow: dict[str, Any],
    skipped_chunks: list[dict],
    *,
    partial: bool = False,
) -> dict[str, Any]:
    """Processed + skipped-chunk events must equal the events of the usable files.

    ``input_events`` counts every input file whose event count could be read, so it
    also equals processed + skipped chunks + skipped files' events; files that could
    not be read at all are listed with ``events: None``. Returns the summary that
    report.json holds; raises :class:`AccountingError` when the events do not add up
    (unless ``partial``: a run stopped early on purpose)."""
    processed = sum(steps["events"]["events"] for steps in cutflow.values())
    skipped = sum(int(s["events"]) for s in skipped_chunks)
    expected = inspection.total
    in_skipped_files = sum(int(s["events"] or 0) for s in inspection.skipped)
    summary = {
        "input_events": expected + in_skipped_files,
        "usable_events": expected,
        "processed_events": processed,
        "skipped_chunk_events": skipped,
        "skipped_file_events": in_skipped_files,
        "unreadable_files": sum(s["events"] is None for s in inspection.skipped),
        "skipped_files": inspection.skipped,
        "skipped_chunks": skipped_chunks,
        "balanced": processed + skipped == expected,
        "partial": partial,
    }
    if processed + skipped != expected and not partial:
        raise AccountingError(
            f"events do not add up: {processed} processed + {skipped} in skipped chunks "
            f"!= {expected} in the usable input files"
        )
    return summary


def accounting_line(summary: dict[str, Any]) -> str:
    """One line that adds the events up, as :func:`check_accounting` checked them."""
    line = (
        f"accounting: {summary['input_events']:,} input events = "
        f"{summary['processed_events']:,} processed + "
        f"{summary['skipped_chunk_events']:,} in skipped chunks + "
        f"{summary['skipped_file_events']:,} in skipped files"
    )
    if summary.get("unreadable_files"):
        line += f" (+ {summary['unreadable_files']} unreadable file(s), events unknown)"
    if summary.get("resumed_chunks"):
        line += f"; {summary['resumed_chunks']} chunk(s) resumed from the checkpoint"
    return line
