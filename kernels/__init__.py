"""Numba-compiled kernels on jagged arrays: arrays in, arrays out, no coffea, no I/O."""

from __future__ import annotations
