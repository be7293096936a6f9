"""TTrees that deserialise only the branches the analysis reads (uproot's ``custom_classes``).

Opening a Run 2 tree makes uproot deserialise the metadata of all its branches, in
Python, though the schema reads a fifth of them (the cost: docs/benchmarks.md, "Small
files"); NanoEvents then types every branch the tree lists. :func:`lazy_classes` is an ``uproot.open`` ``custom_classes``
mapping (a public option) whose ``TTree`` and ``TBranchElement`` models are uproot's own,
subclassed: while a tree's top-level branches are read, a ``TBranchElement`` whose name
the filter rejects is not deserialised, the cursor jumps over its bytes (their byte
count is in the stream), and the tree lists only the branches it read. Such a tree
reads the same bytes for the branches it has as a complete one.

Every skip is checked; the tree is read again in full, as uproot reads it, when a skip
could have lost something a kept branch needs:

- the class tags ROOT writes once, at the first object of a class: the first
  ``TBranchElement`` is always read in full (it tags ``TLeafElement``), and a later class
  reference that a skipped body held makes uproot raise, which triggers the full read;
- references from a kept branch into a skipped one: kept ``TBranchElement`` branches
  must be top-level, unsplit ones (``fType`` 0, no count branch), and a kept leaf whose
  title names a variable dimension must have its count leaf.

:func:`is_partial` tells such a tree from a complete one, and :func:`serves` whether it
holds every branch another filter asks for. The models are made at run time: trees and
branches read with them do not pickle (the ``uproot.open`` options that carry the
mapping do, :class:`LazyClasses`).

The ``TBranchElement`` model also answers ``array`` from the file's array cache when
uproot stored that very array there: uproot's own ``array`` looks it up, then reads and
interprets the baskets again anyway, and NanoEvents asks for each jagged branch twice
(its offsets, then its content).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import uproot
import uproot.const
import uproot.deserialization
import uproot.models.TBranch
import uproot.models.TTree

__all__ = ["LazyClasses", "branch_names", "is_partial", "lazy_classes", "serves"]

#: deserialisation context key: the branch-name filter while a tree's branches are read
_FILTER = "tau3mu.lazytrees.filter"
#: context key: whether a ``TBranchElement`` of this tree was read in full yet
_TAGGED = "tau3mu.lazytrees.tagged"
#: context key: the names of the branches left out so far
_SKIPPED = "tau3mu.lazytrees.skipped"
_VARIABLE_DIMENSION = re.compile(r"\[[^\]0-9]")
_TOBJECT_VERSION = struct.Struct(">h")
_TOBJECT_ID_BITS = struct.Struct(">II")


def _branch_name(chunk: Any, cursor: Any, context: dict[str, Any]) -> str | None:
    """The name of the ``TBranchElement`` at ``cursor`` (left where it is), or None
    where the stream does not give byte counts: the ``fName`` of its ``TNamed`` base,
    read as uproot's ``TObject`` and ``TString`` models read it."""
    peek = cursor.copy(link_refs=False)
    for _ in range(3):  # the TBranchElement's, its TBranch base's, its TNamed base's headers
        num_bytes, _, _ = uproot.deserialization.numbytes_version(chunk, peek, context)
        if num_bytes is None:
            return None
    version = peek.field(chunk, _TOBJECT_VERSION, context)
    if version & uproot.const.kByteCountVMask:
        peek.skip(4)
    _, bits = peek.fields(chunk, _TOBJECT_ID_BITS, context)
    if bits & uproot.const.kIsReferenced:
        peek.skip(2)
    return str(peek.string(chunk, context))


def _lazy_branch_element(base: Any) -> type:
    """uproot's versioned ``TBranchElement`` model ``base``, skipping unwanted branches."""

    def read(
        cls: Any,
        chunk: Any,
        cursor: Any,
        context: dict[str, Any],
        file: Any,
        selffile: Any,
        parent: Any,
        concrete: Any = None,
    ) -> Any:
        wanted = context.get(_FILTER)
        if wanted is None or concrete is not None:
            return base.read.__func__(cls, chunk, cursor, context, file, selffile, parent, concrete)
        name = _branch_name(chunk, cursor, context)
        if name is None or wanted(name) or not context.get(_TAGGED):
            context[_FILTER], context[_TAGGED] = None, True  # its own sub-branches: in full
            try:
                return base.read.__func__(
                    cls, chunk, cursor, context, file, selffile, parent, concrete
                )
            finally:
                context[_FILTER] = wanted
        num_bytes, _, _ = uproot.deserialization.numbytes_version(chunk, cursor, context, False)
        cursor.skip(num_bytes)
        context[_SKIPPED].append(name)
        return None

    namespace = {"read": classmethod(read), "array": _cached_array, "__module__": __name__}
    # uproot derives the class name and version from the model's name
    return type(base.__name__, (base,), namespace)


def _entry_range(num_entries: int, start: int | None, stop: int | None) -> tuple[int, int]:
    """``entry_start`` and ``entry_stop`` as ``TBranch.array`` reads them (a slice's rules)."""
    start = 0 if start is None else start + num_entries if start < 0 else start
    stop = num_entries if stop is None else stop + num_entries if stop < 0 else stop
    start, stop = min(num_entries, max(0, start)), min(num_entries, max(0, stop))
    return int(start), int(max(start, stop))


def _cached_array(
    self: Any,
    interpretation: Any = None,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    **options: Any,
) -> Any:
    """``TBranch.array``, answered from the array cache when uproot stored this very
    array there (same branch, interpretation, entries, library): uproot's own ``array``
    looks the array up but reads and interprets the baskets again, and NanoEvents asks
    for a jagged branch twice (offsets, then content)."""
    cache = options.get("array_cache", "inherit")
    cache = self.file.array_cache if isinstance(cache, str) and cache == "inherit" else cache
    used = self.interpretation if interpretation is None else interpretation
    if (
        cache is not None
        and options.get("library", "ak") == "ak"
        and not isinstance(cache, str)
        and isinstance(used, uproot.interpretation.Interpretation)
    ):
        start, stop = _entry_range(self.num_entries, entry_start, entry_stop)
        key = f"{self.cache_key}:{self.name}:{used.cache_key}:{start}-{stop}:ak"
        found = cache.get(key)
        if found is not None:
            return found
    return super(type(self), self).array(interpretation, entry_start, entry_stop, **options)


class _PartialTree:
    """Mixin of the lazy ``TTree`` models: ``branches_skipped`` counts the branches
    left out (0 for a tree read in full) and ``skipped_names`` names them, ``wanted`` is
    the filter that kept the others."""

    branches_skipped = 0
    skipped_names: tuple[str, ...] = ()
    wanted: Callable[[str], bool] | None = None


def _complete(tree: Any) -> bool:
    """Whether no kept branch can refer to a skipped one (see the module's docstring)."""

    def branches(parent: Any) -> Iterator[Any]:
        for branch in parent.member("fBranches"):
            yield branch
            yield from branches(branch)

    for branch in branches(tree):
        members = branch.all_members
        if "fType" in members and (
            members["fType"] != 0
            or members.get("fBranchCount") is not None
            or members.get("fBranchCount2") is not None
        ):
            return False
        for leaf in branch.member("fLeaves"):
            title = str(leaf.member("fTitle"))
            count = leaf.all_members.get("fLeafCount")
            if count is None and _VARIABLE_DIMENSION.search(title):
                return False
    return True


def _lazy_tree(base: Any, wanted: Callable[[str], bool]) -> type:
    """uproot's versioned ``TTree`` model ``base``, reading only the branches ``wanted``
    accepts (and the ones the checks need), else in full."""

    def read_members(
        self: Any, chunk: Any, cursor: Any, context: dict[str, Any], file: Any
    ) -> None:
        start, breadcrumbs = cursor.index, context.get("breadcrumbs")
        context[_FILTER], context[_TAGGED], context[_SKIPPED] = wanted, False, []
        try:
            base.read_members(self, chunk, cursor, context, file)
            branches = list(self.member("fBranches"))
            partial: bool | None = None in branches
            if partial:
                self._members["fBranches"] = [b for b in branches if b is not None]
                if not _complete(self):
                    partial = None  # read again in full
        except uproot.deserialization.DeserializationError:
            partial = None
        finally:
            context.pop(_FILTER, None)
            context.pop(_TAGGED, None)
            skipped = tuple(context.pop(_SKIPPED, ()))
        if partial is None:
            cursor.move_to(start)
            context["breadcrumbs"] = breadcrumbs  # as they were before the partial pass
            self._bases.clear()
            self._members.clear()
            base.read_members(self, chunk, cursor, context, file)
            return
        if partial:
            self._members["fLeaves"] = [leaf for leaf in self.member("fLeaves") if leaf is not None]
            self.branches_skipped = len(branches) - len(self.member("fBranches"))
            self.skipped_names = skipped
            self.wanted = wanted

    namespace = {"read_members": read_members, "__module__": __name__}
    return type(base.__name__, (_PartialTree, base), namespace)


@lru_cache(maxsize=16)  # a process sees a few filters (the schema's, a run's sets)
def _models(wanted: Callable[[str], bool]) -> dict[str, type]:
    """The lazy ``TBranchElement`` and ``TTree`` dispatch models for ``wanted``."""
    element_versions = uproot.models.TBranch.Model_TBranchElement.known_versions
    tree_versions = uproot.models.TTree.Model_TTree.known_versions
    element = type(
        "Model_TBranchElement",
        (uproot.models.TBranch.Model_TBranchElement,),
        {
            "known_versions": {v: _lazy_branch_element(c) for v, c in element_versions.items()},
            "__module__": __name__,
        },
    )
    tree = type(
        "Model_TTree",
        (uproot.models.TTree.Model_TTree,),
        {
            "known_versions": {v: _lazy_tree(c, wanted) for v, c in tree_versions.items()},
            "__module__": __name__,
        },
    )
    return {"TBranchElement": element, "TTree": tree}


class LazyClasses(dict):
    """uproot's classes with the lazy ``TTree`` and ``TBranchElement`` models; pickles
    as the call that makes it (the models are made at run time)."""

    def __init__(self, wanted: Callable[[str], bool]) -> None:
        super().__init__({**uproot.classes, **_models(wanted)})
        self.wanted = wanted

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return lazy_classes, (self.wanted,)


def lazy_classes(wanted: Callable[[str], bool]) -> LazyClasses:
    """``uproot.open``'s ``custom_classes``: uproot's classes, with trees that read only
    the top-level ``TBranchElement`` branches whose names ``wanted`` (a module-level
    function, so that the options pickle) accepts; see the module's docstring. A new
    mapping on every call (uproot adds the classes it makes from a file's streamers)."""
    return LazyClasses(wanted)


def branch_names(tree: Any) -> frozenset[str]:
    """The names of ``tree``'s top-level branches in its file: those it lists and, for a
    partial tree, those it left out."""
    return frozenset(tree.keys(recursive=False)) | frozenset(getattr(tree, "skipped_names", ()))


def is_partial(tree: Any) -> bool:
    """Whether ``tree`` was read by :func:`lazy_classes`' models and left branches out."""
    return isinstance(tree, _PartialTree) and tree.branches_skipped > 0


def serves(tree: Any, wanted: Callable[[str], bool] | None) -> bool:
    """Whether ``tree`` holds every branch of its file that ``wanted`` accepts (None:
    every branch). A complete tree serves any filter; a partial one serves its own
    filter (the same object, or an equal one), and a filter whose ``within(own)`` says
    that the tree's own filter accepts all it does
    (:class:`tau3mu.traced_branches.BranchSet`).

    >>> class Partial(_PartialTree):
    ...     branches_skipped, wanted = 3, staticmethod(str.isupper)
    >>> class Upper:
    ...     def __call__(self, name): return name.isupper() and len(name) < 3
    ...     def within(self, other): return other is str.isupper
    >>> serves(Partial(), str.isupper), serves(Partial(), Upper()), serves(Partial(), str.islower)
    (True, True, False)
    >>> serves(Partial(), None), serves(object(), None)
    (False, True)
    """
    if not is_partial(tree):
        return True
    own = tree.wanted
    if wanted is None or own is None:
        return False
    if own is wanted or own == wanted:
        return True
    within = getattr(wanted, "within", None)
    return within is not None and bool(within(own))
