"""What the fit takes from a histogram: the nominal mass spectrum's counts and edges."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["mass_counts"]


def mass_counts(h: Any) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of a 1D mass histogram, or of the nominal slice of a bigger one.

    A ``systematic`` axis is sliced at ``nominal``; a ``dataset`` axis must have one
    entry. Raises ValueError when it has several.
    """
    if h.ndim > 1:
        selection = {}
        for axis in h.axes[:-1]:
            if axis.name == "systematic":
                selection["systematic"] = "nominal"
            elif axis.name == "dataset":
                if len(axis) != 1:
                    raise ValueError(
                        "histogram has several datasets: pick one with h[{'dataset': name}]"
                    )
                selection["dataset"] = axis[0]
        h = h[selection]
    return np.asarray(h.values(), dtype=np.float64), np.asarray(h.axes[0].edges)
