"""Faster reading of Run 2's ``std::vector`` branches: uproot with one-pass readers.

Profiling the I/O floor on Run 2 files (``benchmarks/bench_throughput.py``) showed that,
after inflate, uproot spends most of its time removing the 10-byte header ROOT writes
before every event's ``std::vector`` (``AsJagged.basket_array``: a boolean mask over
the basket's bytes, a fancy-indexed write and a compress), and reads the
``vector<string>`` trigger names through an AwkwardForth machine. :class:`AsStdVector`
and :class:`AsStringVector` are uproot's own ``AsJagged`` and ``AsObjects`` with that
step replaced by one numba pass (:mod:`tau3mu.kernels.vectors`), which also checks
every header. The arrays are identical, and so are their forms, so coffea sees no
difference.

uproot picks a branch's interpretation when the tree is read, and offers no option to
choose another for all reads; its ``object_cache`` option is where every opened tree
passes. :class:`VectorTrees` is such a cache: it swaps the interpretation of each tree's
vector branches (:func:`use_fast_vectors`) and keeps nothing. The Runner's kept trees
(:mod:`tau3mu.opentrees`) do the same, for the Runner's chunks and the dask-awkward
graph's partitions alike (:mod:`tau3mu.graph_source`).

:func:`tau3mu.reading.uproot_options` hands out the cache.
``TAU3MU_VECTORS=uproot`` leaves uproot's own readers in place (for side-by-side
measurements).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import awkward as ak
import numpy as np
import uproot
from uproot.behaviors.TTree import TTree
from uproot.containers import AsString, AsVector
from uproot.interpretation.jagged import AsJagged, JaggedArray
from uproot.interpretation.library import Awkward
from uproot.interpretation.numerical import AsDtype
from uproot.interpretation.objects import AsObjects

from tau3mu.kernels.vectors import (
    VECTOR_HEADER_BYTES,
    split_string_vectors,
    strip_vector_headers,
)
from tau3mu.schemas import schema_branch

READERS = ("tau3mu", "uproot")


def reader() -> str:
    """The ``std::vector`` reader in use: ``$TAU3MU_VECTORS`` or ``"tau3mu"``."""
    choice = os.environ.get("TAU3MU_VECTORS", "tau3mu").lower()
    if choice not in READERS:
        raise ValueError(f"TAU3MU_VECTORS={choice!r}: use one of {READERS}")
    return choice


def _first(basket: Any, branch: Any) -> int:
    """The basket's first entry in the file (so errors name entries as the file counts)."""
    return int(branch.basket_entry_start_stop(basket.basket_num)[0])


class _OnePass:
    """``basket_array`` through :meth:`_read` (a kernel on the basket's bytes), with
    uproot's hooks around it and a malformed entry reported as uproot reports bad bytes:
    a ``DeserializationError`` naming the file, branch, basket and entry."""

    def _uproot_reads(self, byte_offsets: Any, library: Any) -> bool:
        raise NotImplementedError

    def _read(self, data: Any, byte_offsets: Any, first_entry: int, args: tuple) -> Any:
        raise NotImplementedError

    def basket_array(
        self,
        data: Any,
        byte_offsets: Any,
        basket: Any,
        branch: Any,
        context: Any,
        cursor_offset: Any,
        library: Any,
        options: Any,
    ) -> Any:
        args = (basket, branch, context, cursor_offset, library, options)
        if self._uproot_reads(byte_offsets, library):
            # a mixin: the next class in the MRO is uproot's (untyped) interpretation
            return super().basket_array(data, byte_offsets, *args)  # type: ignore[misc]
        where = {"data": data, "byte_offsets": byte_offsets, "basket": basket}
        where |= {"branch": branch, "context": context, "cursor_offset": cursor_offset}
        # uproot's interpretation (next in the MRO) defines the hooks
        self.hook_before_basket_array(**where, library=library, options=options)  # type: ignore[attr-defined]
        problem: str | None = None
        try:
            output = self._read(data, byte_offsets, _first(basket, branch), args)
        except ValueError as err:
            problem = str(err)
        if problem is not None:  # raised here, not in the except: the whole story
            raise uproot.deserialization.DeserializationError(
                f"branch {branch.name!r}, basket {basket.basket_num}: {problem}",
                None,
                None,
                context,
                branch.file.file_path,
            )
        after = {"output": output, "library": library, "options": options}
        self.hook_after_basket_array(**where, **after)  # type: ignore[attr-defined]
        return output


class AsStdVector(_OnePass, AsJagged):
    """uproot's ``AsJagged`` for ``std::vector<number>``, headers removed in one pass."""

    @classmethod
    def of(cls, interpretation: AsJagged) -> AsStdVector:
        return cls(
            interpretation.content,
            interpretation.header_bytes,
            interpretation._typename,
            interpretation._original,
        )

    def _uproot_reads(self, byte_offsets: Any, library: Any) -> bool:
        return byte_offsets is None  # a counted array, not a streamed vector

    def _read(self, data: Any, byte_offsets: Any, first_entry: int, args: tuple) -> Any:
        elements, offsets = strip_vector_headers(
            data, byte_offsets, self._content.itemsize, first_entry=first_entry
        )
        return JaggedArray(offsets, self._content.basket_array(elements, None, *args))


class AsStringVector(_OnePass, AsObjects):
    """uproot's ``AsObjects`` for ``std::vector<std::string>``, read in one numba pass
    (uproot runs an AwkwardForth machine) when an awkward array is asked for."""

    @classmethod
    def of(cls, interpretation: AsObjects) -> AsStringVector:
        return cls(interpretation.model, interpretation.branch)

    def _uproot_reads(self, byte_offsets: Any, library: Any) -> bool:
        return byte_offsets is None or not isinstance(library, Awkward)

    def _read(self, data: Any, byte_offsets: Any, first_entry: int, args: tuple) -> Any:
        entries, strings, chars = split_string_vectors(data, byte_offsets, first_entry=first_entry)
        return ak.Array(_string_lists(entries, strings, chars))


def _string_lists(
    entries: np.ndarray, strings: np.ndarray, chars: np.ndarray
) -> ak.contents.ListOffsetArray:
    """``var * string``, laid out as uproot's own reader lays it out."""
    return ak.contents.ListOffsetArray(
        ak.index.Index64(entries),
        ak.contents.ListOffsetArray(
            ak.index.Index64(strings),
            ak.contents.NumpyArray(chars, parameters={"__array__": "char"}),
            parameters={"__array__": "string"},
        ),
    )


def _is_string_vector(interpretation: Any) -> bool:
    model = getattr(interpretation, "model", None)
    return (
        type(interpretation) is AsObjects
        and model is not None
        and type(model) is AsVector
        and model.header
        and type(model.values) is AsString
        and not model.values.header
    )


def _is_number_vector(interpretation: Any) -> bool:
    return (
        type(interpretation) is AsJagged
        and interpretation.header_bytes == VECTOR_HEADER_BYTES
        and type(interpretation.content) is AsDtype
        and interpretation.content.from_dtype.shape == ()
    )


def use_fast_vectors(tree: TTree, wanted: Callable[[str], bool] | None = None) -> int:
    """Read ``tree``'s ``std::vector<number>`` branches with :class:`AsStdVector` and
    its ``std::vector<std::string>`` ones with :class:`AsStringVector`; with ``wanted``,
    only the branches whose name it accepts (the others keep uproot's reader, whose
    set-up is then not paid for).

    Returns how many branches were switched (0 under ``TAU3MU_VECTORS=uproot``).
    """
    if reader() != "tau3mu":
        return 0
    switched = 0
    for branch in tree.itervalues(recursive=True):
        if wanted is not None and not wanted(branch.name):
            continue
        interpretation = branch.interpretation
        if _is_number_vector(interpretation):
            branch._interpretation = AsStdVector.of(interpretation)
        elif _is_string_vector(interpretation):
            branch._interpretation = AsStringVector.of(interpretation)
        else:
            continue
        switched += 1
    return switched


class VectorTrees(MutableMapping):
    """uproot ``object_cache`` that gives every tree read through it :class:`AsStdVector`
    readers for the branches the schema uses (:func:`tau3mu.schemas.schema_branch`) and
    keeps nothing (each open reads its objects again, as without a cache).

    Pickles to a fresh instance, so it can travel to Dask workers in uproot's options.
    """

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return VectorTrees, ()

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, TTree):
            use_fast_vectors(value, schema_branch)

    def __delitem__(self, key: str) -> None:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
