"""What a dataset's era decides: its year, its run period and its centre-of-mass energy."""

from __future__ import annotations

from typing import Literal

Period = Literal["run2", "run3"]


def year_of(era: str) -> int:
    """The year of an era such as ``2017``, ``2017B`` or ``2022F``: its leading four digits.

    Raises ``ValueError`` when the era does not start with four digits.
    """
    text = str(era).strip()
    if len(text) < 4 or not text[:4].isdigit():
        raise ValueError(f"era {era!r}: expected a year first, e.g. 2017, 2017B or 2022F")
    return int(text[:4])


def period_of(era: str) -> Period:
    """``run2`` for 2016-2018, ``run3`` from 2022 on; ``ValueError`` for other years."""
    year = year_of(era)
    if 2016 <= year <= 2018:
        return "run2"
    if year >= 2022:
        return "run3"
    raise ValueError(f"era {era!r}: no run period for {year} (2016-2018 or 2022 on)")


def sqrt_s_tev(era: str) -> float:
    """The LHC's centre-of-mass energy in the era's year: 13.0 TeV in Run 2, 13.6 in Run 3."""
    return {"run2": 13.0, "run3": 13.6}[period_of(era)]
