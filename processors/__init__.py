"""The coffea processors of the analysis."""

from __future__ import annotations
