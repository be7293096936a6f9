"""One input file checked: can it be opened, read to its end, and does it serve its dataset.

:func:`file_verdict` is what :func:`tau3mu.inspection.inspect_inputs` runs for each file,
in whichever process opens it (a thread, a Dask worker): a :class:`Verdict` with the
file's entries and UUID, or the reason it cannot be analysed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import uproot

from tau3mu import reading
from tau3mu.eras import layout_mismatch
from tau3mu.errors import Tau3MuError
from tau3mu.layouts import RUN2, RUN3
from tau3mu.lazytrees import branch_names
from tau3mu.schemas import (
    LayoutError,
    branch_type_problems,
    detect_layout,
    required_branches,
    schema_branch,
)
from tau3mu.wording import error_text
from tau3mu.xrootd import is_remote, local_path

__all__ = ["EraMismatchError", "FileRules", "InputFileError", "Verdict", "file_verdict"]


class InputFileError(Tau3MuError, RuntimeError):
    """A file that cannot be analysed, with the reason."""


class EraMismatchError(InputFileError):
    """A file whose layout is not the one of its dataset's era's run period."""


@dataclass(frozen=True)
class Verdict:
    """What opening a file found: its entries and ROOT file UUID, or why it is unusable."""

    entries: int = 0
    uuid: bytes = b""
    reason: str | None = None
    #: a mistake of the datasets file, not of the file: never skipped
    fatal: bool = False
    #: a usable file's branches that the schema builds from (read or left out)
    branches: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FileRules:
    """What a file of a dataset must satisfy: its era (None: any period) and the year of
    Run 2's trigger-match branches."""

    era: str | None
    year: str

    @classmethod
    def of(cls, era: str | None, config: Any) -> FileRules:
        return cls(era, config.trigger_match_year(era))


def file_verdict(
    path: str,
    tree: str,
    rules: FileRules,
    keep_trees: bool = False,
    branches: reading.BranchFilter = schema_branch,
) -> Verdict:
    """The file's entries and UUID if it is usable, or the reason it is not, from its
    tree read for ``branches`` (:func:`tau3mu.reading.inspection_options`; they must
    include the ones ``rules`` require).

    With ``keep_trees``, a local file's tree is kept for the Runner's chunks, should
    they run in this process (:mod:`tau3mu.opentrees`). Never raises for a bad file."""
    reading.prepare_process()  # on a Dask worker, this may be its first open
    options = reading.inspection_options(path, keep_trees=keep_trees, branches=branches)
    try:
        f = uproot.open(path, timeout=60, **options)
    except FileNotFoundError:
        return Verdict(reason="file not found")
    except Exception as err:  # uproot raises ValueError, OSError, ... for non-ROOT files
        return Verdict(reason=f"cannot be opened as a ROOT file ({error_text(err)})")
    entries = 0
    try:
        cut = _cut_short(path, f)
        if cut is not None:
            return Verdict(reason=cut)
        if tree not in f:
            keys = sorted({k.split(";")[0] for k in f.keys(recursive=True)})[:8]
            return Verdict(reason=f"no tree {tree!r} (the file has {keys})")
        t = f[tree]
        entries = int(t.num_entries)  # what a skipped file held, for the accounting
        verdict = _tree_problem(t, tree, rules, entries)
        if verdict is not None:
            return verdict
        if entries:
            # read the basket that lies furthest into the file (of the branches the tree
            # lists): a file cut short there fails here, not mid-run
            t[_furthest_branch(t)].array(entry_start=entries - 1, entry_stop=entries, library="np")
        names = frozenset(name for name in branch_names(t) if schema_branch(name))
        return Verdict(entries, bytes(f.file.fUUID), branches=names)
    except Exception as err:
        return Verdict(entries, reason=f"unreadable ({error_text(err)})")
    finally:
        f.close()


def _cut_short(path: str, f: Any) -> str | None:
    """Why a file is shorter than its header says (ROOT's "truncated" check), or None;
    a remote file's size is asked of its server (None if it does not say). The
    furthest-basket read below only sees the branches the tree lists, which are the
    schema's alone where trees are read lazily (:mod:`tau3mu.lazytrees`)."""
    if is_remote(path):
        try:
            size = int(f.file.source.num_bytes)
        except Exception:  # a server that does not give the size: the read below checks
            return None
    else:
        size = os.path.getsize(local_path(path))
    end = int(f.file.fEND)
    if size < end:
        return f"truncated (the file has {size} bytes, its header records {end})"
    return None


def _furthest_branch(t: Any) -> str:
    """The branch whose last basket starts furthest into the file (a file cut short
    loses that basket first); the first branch by name if no basket is outside the tree."""
    furthest, where = sorted(t.keys())[0], -1
    for name in t.keys():  # noqa: SIM118 (branch names)
        branch = t[name]
        if branch.num_baskets:
            seek = int(branch.member("fBasketSeek")[branch.num_baskets - 1])
            if seek > where:
                furthest, where = name, seek
    return furthest


def _tree_problem(t: Any, tree: str, rules: FileRules, entries: int) -> Verdict | None:
    """Why the tree cannot serve its dataset (layout, era, branches, types), or None."""
    branches = set(t.keys())
    try:
        layout = detect_layout(branches)
    except LayoutError as err:
        return Verdict(entries, reason=str(err))
    mismatch = layout_mismatch(layout, rules.era) if rules.era is not None else None
    if mismatch:
        return Verdict(entries, reason=mismatch, fatal=True)
    required = required_branches(layout, rules.year)
    missing = sorted(required - branches)
    if layout == "run2" and RUN2.l1_decision in missing and RUN2.l1_final_decision in branches:
        missing.remove(RUN2.l1_decision)  # the producer version with initial/final decisions
    if missing:
        return Verdict(entries, reason=f"tree {tree!r} lacks needed branch(es) {missing}")
    if layout == "run3" and not (
        any(b.startswith(RUN3.trigger_bit("HLT_")) for b in branches)
        and any(b.startswith(RUN3.trigger_bit("L1_")) for b in branches)
    ):
        return Verdict(
            entries, reason=f"tree {tree!r} has no Trigger_HLT_* and Trigger_L1_* trigger bits"
        )
    needed = required | {RUN2.truth, RUN3.truth, RUN2.l1_final_decision}
    typenames = {b: t[b].typename for b in needed & branches}
    wrong = branch_type_problems(layout, typenames, rules.year)
    if wrong:
        return Verdict(entries, reason=f"tree {tree!r}: " + "; ".join(wrong))
    return None
