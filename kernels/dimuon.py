"""Invariant mass of two particles from their measured (pt, eta, phi, energy).

The Run 3 selection takes the phi candidate's mass from the two muons' own four-momenta,
energy included, as the group's analysis does; the sum and the mass are the ``vector``
library's (its numpy backend), not a formula of ours.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
import vector

from tau3mu.kernels.buffers import is_typetracer, on_typetracer, wrap
from tau3mu.kernels.kinematics import _flat_inputs

__all__ = ["dimuon_mass", "dimuon_mass_values"]


def dimuon_mass_values(*arrays: np.ndarray) -> np.ndarray:
    """Mass (GeV, ``float64``) of the sum of two four-vectors given as eight flat arrays
    ``pt1, eta1, phi1, energy1, pt2, eta2, phi2, energy2``; NaN in, NaN out.

    Raises
    ------
    ValueError
        Unless eight arrays of one length are given.

    Two muons back to back, 0.5 GeV each: twice their energy.

    >>> e = float(np.hypot(0.5, 0.105658))
    >>> m = dimuon_mass_values(*[np.array([v]) for v in (0.5, 0.0, 0.0, e, 0.5, 0.0, np.pi, e)])
    >>> round(float(m[0]), 5) == round(2 * e, 5)
    True
    """
    flat = [np.asarray(a, dtype=np.float64) for a in arrays]
    if len(flat) != 8 or len({len(a) for a in flat}) != 1:
        raise ValueError("dimuon_mass_values: eight flat arrays of one length are needed")
    first = vector.array({"pt": flat[0], "eta": flat[1], "phi": flat[2], "E": flat[3]})
    second = vector.array({"pt": flat[4], "eta": flat[5], "phi": flat[6], "E": flat[7]})
    # vector's annotations declare no ``+`` for VectorNumpy; at run time it is numpy.add
    return np.asarray((first + second).mass, dtype=np.float64)  # type: ignore[operator]


def dimuon_mass(*arrays: Any) -> ak.Array:
    """:func:`dimuon_mass_values` on eight ``var * float`` arrays of one structure, per
    entry; returns ``var * float64``. On typetracers: touches the inputs and returns a
    ``var * float64`` typetracer."""
    if is_typetracer(*arrays):
        return on_typetracer(dimuon_mass, arrays)
    offsets, flat = _flat_inputs(arrays, "dimuon_mass")
    return wrap(offsets, dimuon_mass_values(*flat))
