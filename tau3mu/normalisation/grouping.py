"""Which datasets of a run form each era's data and simulation.

``data_eras_of`` here is the rule agreed for ``tau3mu.eras.data_eras_of``: a data era
belongs to a simulation era when equal, or when it is the simulation era plus run
letter(s) ("2017B" to "2017"), plus the Run 3 sub-periods named below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tau3mu.errors import Tau3MuError

__all__ = ["NormalisationInputError", "data_eras_of", "era_groups"]

#: Run 3 simulation sub-periods and the data eras they stand for
SUB_PERIODS = {
    "2022preEE": ("2022C", "2022D"),
    "2022postEE": ("2022E", "2022F", "2022G"),
    "2023preBPix": ("2023B", "2023C"),
    "2023postBPix": ("2023D",),
}


class NormalisationInputError(Tau3MuError):
    """A run's outputs cannot be normalised (no simulation, an era without data, ...)."""


def data_eras_of(sim_era: str, data_eras: Iterable[str]) -> list[str]:
    """The data eras among ``data_eras`` that belong to the simulation era ``sim_era``."""
    sub = SUB_PERIODS.get(sim_era)
    letters = re.compile(re.escape(sim_era) + r"[A-Z]+")
    return [
        era
        for era in data_eras
        if era == sim_era or (era in sub if sub else letters.fullmatch(era) is not None)
    ]


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
        eras = set(data_eras_of(era, {e for e in data.values() if e}))
        group["data"] = [n for n, e in data.items() if e in eras]
        if not group["data"]:
            raise NormalisationInputError(
                f"simulation era {era!r} ({', '.join(group['simulation'])}) has no data "
                "dataset of its era in the run"
            )
    return groups
