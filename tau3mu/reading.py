"""How tau3mu reads ROOT files: uproot's options, the process's setup, the guarded shortcuts.

Every place that opens an input file takes its options from :func:`uproot_options` (the
Runner's chunks, the dask-awkward graph, a chunk probed on its own) or
:func:`inspection_options` (the inspection), and every process that reads calls
:func:`prepare_process` first. Together they apply tau3mu's reading optimisations:

- ISA-L inflate (:mod:`tau3mu.inflate`), set per process by :func:`prepare_process`;
- one-pass ``std::vector`` readers (:mod:`tau3mu.vectors`), through uproot's
  ``object_cache`` option;
- kept trees (:mod:`tau3mu.opentrees`): a local file's tree opened once per process;
- trees that deserialise only the branches the schema uses, or those a run reads
  (:mod:`tau3mu.lazytrees`, uproot's public ``custom_classes`` option, with uproot's
  models subclassed; :mod:`tau3mu.traced_branches`);
- NanoEvents typing only those branches (:func:`iteritems_options`, a public option);
- a per-chunk array cache (:data:`tau3mu.opentrees.CHUNK_ARRAY_CACHE`, a public option);
- uproot's XRootD source for ``root://`` (:mod:`tau3mu.xrootd`, a public option);
- UTF-8 dataset names and paths in coffea's Runner (:func:`allow_unicode_names`).

The first three and the last reach into uproot's or coffea's private parts, and the
dask-awkward graph's reading (:mod:`tau3mu.graph_source`) and its one task per
partition (:mod:`tau3mu.graph_fusion`) into dask's and dask-awkward's. They are used
only with the versions they were tested with (:data:`TESTED_VERSIONS`,
:func:`supported`); with any other version, or with ``TAU3MU_PRIVATE_APIS=off``, tau3mu
reads and computes through the libraries' own paths, with the same results.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from functools import cache
from importlib.metadata import version
from typing import Any

from tau3mu import inflate, lazytrees, opentrees, vectors
from tau3mu.preadsource import PReadFileSource
from tau3mu.schemas import schema_branch
from tau3mu.xrootd import (
    ensure_xrootd_configured,
    is_remote,
    is_xrootd,
    xrootd_options,
)

__all__ = [
    "LAZY_TREES_ENV",
    "PRIVATE_APIS_ENV",
    "TESTED_VERSIONS",
    "BranchFilter",
    "allow_unicode_names",
    "fileset_paths",
    "group_member_options",
    "inspection_options",
    "iteritems_options",
    "lazy_trees",
    "prepare_process",
    "supported",
    "switched_off",
    "uproot_options",
]

#: package -> (first tested version, first version not tested), as (major, minor)
TESTED_VERSIONS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "uproot": ((5, 7), (5, 8)),
    "coffea": ((2026, 9), (2026, 10)),
    "dask": ((2025, 3), (2025, 4)),
    "dask-awkward": ((2026, 2), (2026, 3)),
}
#: ``off`` makes :func:`supported` false: the libraries' own paths, whatever the versions
PRIVATE_APIS_ENV = "TAU3MU_PRIVATE_APIS"
#: ``off`` reads complete trees (uproot's own models), for side-by-side measurements
LAZY_TREES_ENV = "TAU3MU_LAZY_TREES"

#: which branches an open reads and NanoEvents types: a module-level function or a
#: picklable object (:class:`tau3mu.traced_branches.BranchSet`), by branch name
BranchFilter = Callable[[str], bool]

_PREPARED: set[str] = set()


@cache
def _major_minor(package: str) -> tuple[int, int]:
    parts = version(package).split(".")
    return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)


def supported(package: str) -> bool:
    """Whether tau3mu may use ``package``'s private parts (a key of
    :data:`TESTED_VERSIONS`: ``"uproot"``, ``"coffea"``, ``"dask"``, ``"dask-awkward"``):
    its installed version lies in :data:`TESTED_VERSIONS` and ``$TAU3MU_PRIVATE_APIS`` is
    not ``off``. Raises KeyError for another package."""
    first, beyond = TESTED_VERSIONS[package]
    if switched_off(PRIVATE_APIS_ENV):
        return False
    return first <= _major_minor(package) < beyond


def prepare_process() -> None:
    """Set this process up for reading, once: ISA-L inflate (where :func:`supported`) and
    tau3mu's XRootD client settings. A worker process calls it before its first open:
    what the submitting process set does not travel with the work."""
    if "inflate" not in _PREPARED and supported("uproot"):
        inflate.configure()
    _PREPARED.add("inflate")
    ensure_xrootd_configured()


def fileset_paths(fileset: dict[str, Any]) -> list[str]:
    """Every file of a fileset (``{dataset: {"files": {path: tree}}}``)."""
    return [path for spec in fileset.values() for path in spec["files"]]


def switched_off(variable: str) -> bool:
    """Whether the environment variable ``variable`` says ``off`` (or 0, no, false)."""
    return os.environ.get(variable, "").strip().lower() in ("off", "0", "no", "false")


def lazy_trees() -> bool:
    """Whether chunks read trees of the schema's branches only (:mod:`tau3mu.lazytrees`):
    where :func:`supported` and ``$TAU3MU_LAZY_TREES`` is not ``off``."""
    return supported("uproot") and not switched_off(LAZY_TREES_ENV)


def _lazy_tree_options(branches: BranchFilter) -> dict[str, Any]:
    """uproot's ``custom_classes`` for trees of ``branches``, where :func:`lazy_trees`;
    else none."""
    return {"custom_classes": lazytrees.lazy_classes(branches)} if lazy_trees() else {}


def _kept_tree_options(branches: BranchFilter) -> dict[str, Any]:
    """Kept trees, of ``branches`` where :func:`lazy_trees` (then a kept tree is taken
    only if it holds them all), else complete ones."""
    lazy = _lazy_tree_options(branches)
    return {
        "handler": opentrees.KeptFileSource,
        "object_cache": opentrees.kept_trees_for(branches) if lazy else opentrees.kept_trees(),
        "array_cache": opentrees.CHUNK_ARRAY_CACHE,
        **lazy,
    }


def uproot_options(
    paths: Iterable[str],
    *,
    keep_trees: bool = False,
    graph: bool = False,
    timeout: int = 30,
    branches: BranchFilter = schema_branch,
) -> dict[str, Any]:
    """``uproot.open`` options for reading chunks of ``paths``.

    ``root://`` inputs get uproot's own XRootD source (it honours ``timeout``, seconds an
    XRootD request may wait, and reconnects). Eager reads take ``std::vector`` branches in
    one pass (:mod:`tau3mu.vectors`) and keep a chunk's arrays
    (:data:`tau3mu.opentrees.CHUNK_ARRAY_CACHE`) from trees that deserialise only
    ``branches`` (the schema's by default, :mod:`tau3mu.lazytrees`;
    ``$TAU3MU_LAZY_TREES=off``: complete trees); with ``keep_trees`` (the Runner), local
    files' trees are kept open for their next chunks (:mod:`tau3mu.opentrees`), without
    it local files are read synchronously (:class:`~tau3mu.preadsource.PReadFileSource`); the
    dask-awkward graph's partitions read with these too (:mod:`tau3mu.graph_source`).
    With ``graph``: the options ``uproot.dask`` accepts (no caches), for its look at a
    dataset's first file while the graph is built.
    """
    paths = list(paths)
    fast = supported("uproot")
    eager: dict[str, Any] = {}
    if not graph:
        if fast:
            eager["object_cache"] = vectors.VectorTrees()
            eager.update(_lazy_tree_options(branches))
        eager["array_cache"] = opentrees.CHUNK_ARRAY_CACHE
    if paths and all(is_xrootd(p) for p in paths):
        return {**xrootd_options(timeout), **eager}
    local = bool(paths) and not any(is_remote(p) for p in paths)
    if keep_trees and fast and local:
        return _kept_tree_options(branches)
    if fast and local and not graph:
        # uproot's default for local files goes through fsspec and a thread pool; a file
        # read once (a group's member) costs ~40 % less read synchronously
        eager.update(handler=PReadFileSource)
    return eager


def group_member_options(
    path: str, *, timeout: int = 30, branches: BranchFilter = schema_branch
) -> dict[str, Any]:
    """``uproot.open`` options for a member of a group of small files
    (:mod:`tau3mu.group_work`), reading ``branches``: a local file's tree that this
    process keeps (the inspection's open) is taken rather than read again, and a tree read now is not kept
    (:class:`~tau3mu.opentrees.BorrowingFileSource`, with lazy trees); otherwise the
    file is read as a chunk reads it (:func:`uproot_options`). No array cache: the group
    keeps the arrays it joins."""
    if lazy_trees() and not is_remote(path):
        options = {**_kept_tree_options(branches), "handler": opentrees.BorrowingFileSource}
    else:
        options = uproot_options([path], timeout=timeout, branches=branches)
    return {**options, "array_cache": None}


def iteritems_options(branches: BranchFilter = schema_branch) -> dict[str, Any]:
    """coffea's ``iteritems_options`` for NanoEvents: only ``branches`` are typed, on
    every open of a file; by default those the schema builds from
    (:func:`tau3mu.schemas.schema_branch`)."""
    return {"filter_name": branches}


def inspection_options(
    path: str, *, keep_trees: bool = False, branches: BranchFilter = schema_branch
) -> dict[str, Any]:
    """``uproot.open`` options for inspecting one file: a local file's tree read as the
    Runner's chunks read it (``branches``, :mod:`tau3mu.lazytrees`), with
    ``keep_trees`` kept for the Runner's chunks in this process; a remote file's tree read
    lazily too, never kept, ``root://`` through uproot's ``XRootDSource`` as the chunks
    read it (without a timeout: the caller gives its own)."""
    lazy = _lazy_tree_options(branches)
    if is_remote(path):
        remote = xrootd_options() if is_xrootd(path) else {}
        remote.pop("timeout", None)
        return {**remote, **lazy}
    if keep_trees and supported("uproot"):
        return _kept_tree_options(branches)
    return lazy


def _utf8_hash(items: Any) -> int:
    """coffea's ``_hash`` (the hash of a ``FileMeta``: dataset, file, tree), encoding
    the text as UTF-8 instead of ASCII: the same value for ASCII names, and no
    ``UnicodeEncodeError`` for a dataset or a path with other characters."""
    digest = hashlib.md5(";".join(str(x) for x in items).encode("utf-8"))
    return int(digest.hexdigest()[:16], base=16)


def allow_unicode_names() -> bool:
    """Let coffea's Runner take dataset names and file paths that are not ASCII (its
    ``FileMeta`` hash encodes them as ASCII), where :func:`supported`; return whether it
    does. Idempotent."""
    if not supported("coffea"):
        return False
    import coffea.processor.executor as executor
    import coffea.util

    executor._hash = _utf8_hash
    coffea.util._hash = _utf8_hash
    return True
