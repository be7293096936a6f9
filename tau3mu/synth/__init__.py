"""Synthetic ntuples in the Run 2 and Run 3 layouts, standing in for CMS data."""

from __future__ import annotations
