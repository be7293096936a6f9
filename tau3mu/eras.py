"""What a dataset's era decides (``docs/physics.md``, "Eras"): the one home of that rule.

An era is the data-taking period a dataset belongs to, as input.json spells it:
``"2017"``, ``"2017B"``, ``"2018D"``, ``"2022F"``, ``"2024C-v1"``. Its leading year
decides the run period (the Run 2 or the Run 3 selection and layout), the year in the
names of Run 2's trigger-match branches, the centre-of-mass energy shown on figures,
and which muon scale-factor file applies.

>>> period_of("2017B"), year_of("2017B"), sqrt_s_tev("2017B")
('run2', 2017, 13.0)
>>> period_of("2024C-v1"), sqrt_s_tev("2024C-v1")
('run3', 13.6)
"""

from __future__ import annotations

import re
from typing import Literal

from tau3mu.errors import Tau3MuError

__all__ = [
    "RUN2_YEARS",
    "RUN3_FIRST_YEAR",
    "RUN3_SUBPERIODS",
    "EraError",
    "Period",
    "data_eras_of",
    "layout_mismatch",
    "period_of",
    "sqrt_s_tev",
    "year_of",
]

Period = Literal["run2", "run3"]

#: years whose data come in the Run 2 layout (``Tree3Mu/ntuple``) and take its selection
RUN2_YEARS: tuple[int, ...] = (2016, 2017, 2018)
#: the first year of Run 3 (the group's NanoAOD producer, ``Events``)
RUN3_FIRST_YEAR = 2022
_LAST_YEAR = 2026

_ERA = re.compile(r"^(?:Run)?(\d{4})[A-Za-z0-9_-]*$")

#: simulation campaigns of Run 3 that stand for a group of data eras (detector conditions
#: before and after the ECAL endcap (EE) incident in 2022 and the BPix failure in 2023)
RUN3_SUBPERIODS: dict[str, tuple[str, ...]] = {
    "2022preEE": ("2022C", "2022D"),
    "2022postEE": ("2022E", "2022F", "2022G"),
    "2023preBPix": ("2023B", "2023C"),
    "2023postBPix": ("2023D",),
}


class EraError(Tau3MuError, ValueError):
    """An era whose year is not one of Run 2's or Run 3's."""


def year_of(era: str) -> int:
    """The data-taking year of ``era``.

    Raises
    ------
    EraError
        When ``era`` does not start with a Run 2 or Run 3 year.

    >>> year_of("2018D")
    2018
    """
    match = _ERA.match(str(era).strip())
    year = int(match.group(1)) if match else None
    if year is None or not (year in RUN2_YEARS or RUN3_FIRST_YEAR <= year <= _LAST_YEAR):
        raise EraError(
            f"era {era!r}: expected a year of Run 2 ({RUN2_YEARS[0]}-{RUN2_YEARS[-1]}) or "
            f"Run 3 ({RUN3_FIRST_YEAR} on) with an optional run letter, such as '2017B' or "
            "'2022F'"
        )
    return year


def period_of(era: str) -> Period:
    """``"run2"`` for 2016-2018, ``"run3"`` from 2022 on (raises :class:`EraError`)."""
    return "run2" if year_of(era) in RUN2_YEARS else "run3"


def layout_mismatch(layout: Period, era: str) -> str | None:
    """Why a file in ``layout`` cannot belong to a dataset of ``era``, or None when the
    era's run period is the layout's (raises :class:`EraError` for an unknown era).

    >>> layout_mismatch("run3", "2017B")
    "the file is in the Run 3 layout (Events), but its dataset's era '2017B' is a Run 2 era"
    """
    from tau3mu.layouts import LAYOUTS

    period = period_of(era)
    if period == layout:
        return None
    where = f"{layout.replace('run', 'Run ')} layout ({LAYOUTS[layout].tree})"
    return (
        f"the file is in the {where}, but its dataset's era {era!r} is a "
        f"{period.replace('run', 'Run ')} era"
    )


def sqrt_s_tev(era: str) -> float:
    """The LHC centre-of-mass energy of ``era`` in TeV: 13 in Run 2, 13.6 in Run 3."""
    return 13.0 if period_of(era) == "run2" else 13.6


def data_eras_of(sim_era: str, data_eras: list[str] | tuple[str, ...]) -> list[str]:
    """The eras among ``data_eras`` whose data a simulation of ``sim_era`` stands for,
    in their given order.

    A data era belongs to a simulation era when it is the same era (up to a suffix such
    as ``"-v1"``), when the simulation era is a year and the data era that year followed
    by run letters (``"2017B"`` and ``"2017BC"`` belong to ``"2017"``, ``"2022C"`` and
    ``"2022C-v1"`` to ``"2022"``), or when the simulation era is one of the Run 3
    sub-periods of :data:`RUN3_SUBPERIODS` and the data era one of its runs (``"2022D"``
    and ``"2022D-v1"`` belong to ``"2022preEE"``).

    >>> data_eras_of("2017", ["2017B", "2017C", "2018A", "2017"])
    ['2017B', '2017C', '2017']
    >>> data_eras_of("2022postEE", ["2022C", "2022E", "2022F-v1"])
    ['2022E', '2022F-v1']
    """
    sim = str(sim_era).strip()
    runs = RUN3_SUBPERIODS.get(sim)
    out = []
    for era in data_eras:
        data = str(era).strip()
        if runs is not None:
            belongs = data == sim or re.sub(r"[^A-Za-z0-9].*$", "", data) in runs
        else:
            letters = r"[A-Z]*" if sim.isdigit() else ""  # "2017B" of "2017", not of "2017A"
            pattern = re.escape(sim) + letters + r"(?:[^A-Za-z0-9].*)?"
            belongs = re.fullmatch(pattern, data) is not None
        if belongs:
            out.append(era)
    return out
