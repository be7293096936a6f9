"""Which datasets of a run form each era's data and simulation (the data eras of a
simulation era: :func:`tau3mu.eras.data_eras_of`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tau3mu.eras import data_eras_of
from tau3mu.errors import Tau3MuError

__all__ = ["NormalisationInputError", "era_groups"]


class NormalisationInputError(Tau3MuError):
    """A run's outputs cannot be normalised (no simulation, an era without data, ...)."""


def era_groups(datasets: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Simulation era -> {"data": [...], "simulation": [...]} dataset names, from
    ``report.json``'s ``datasets`` block.

    Raises :class:`NormalisationInputError` when there is no simulation dataset, a
    simulation dataset has no era, or an era has no data.
    """
    simulation = {n: d for n, d in datasets.items() if d.get("type") == "mc"}
    if not simulation:
        raise NormalisationInputError(
            'no simulation dataset ("type": "mc") in the run: nothing to normalise'
        )
    data = {n: d.get("era") for n, d in datasets.items() if d.get("type") != "mc"}
    groups: dict[str, dict[str, list[str]]] = {}
    for name, meta in simulation.items():
        era = meta.get("era")
        if not era:
            raise NormalisationInputError(f"simulation dataset {name!r} has no era")
        groups.setdefault(str(era), {"data": [], "simulation": []})["simulation"].append(name)
    for era, group in groups.items():
        eras = set(data_eras_of(era, sorted({str(e) for e in data.values() if e})))
        group["data"] = [n for n, e in data.items() if e in eras]
        if not group["data"]:
            raise NormalisationInputError(
                f"simulation era {era!r} ({', '.join(group['simulation'])}) has no data "
                "dataset of its era in the run"
            )
    return groups
