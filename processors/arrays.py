"""One code path for awkward (coffea Runner) and dask-awkward (graph) arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import awkward as ak


def is_dask(array: Any) -> bool:
    """True for dask-awkward collections."""
    return type(array).__module__.startswith("dask_awkward")


def lib(array: Any) -> Any:
    """``awkward`` or ``dask_awkward``, whichever handles ``array``."""
    if is_dask(array):
        import dask_awkward

        return dask_awkward
    return ak


def call(function: Callable[..., Any], *arrays: Any, **kwargs: Any) -> Any:
    """Run a kernel eagerly, or per partition for dask-awkward inputs."""
    if any(is_dask(a) for a in arrays):
        import dask_awkward

        return dask_awkward.map_partitions(
            function, *arrays, label=function.__name__.replace("_", "-"), **kwargs
        )
    return function(*arrays, **kwargs)


__all__ = ["call", "is_dask", "lib"]
