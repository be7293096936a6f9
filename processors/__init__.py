"""The coffea processors of the analysis.

:class:`DsPhiPiProcessor` is the Ds+ -> phi(mu mu) pi+ selection; its pieces are public
for notebooks and tests: the histograms it books (:func:`book`), the selection steps
(:func:`select`, :func:`steps`), the best candidates' view (:func:`candidate_view`) and
the error an inconsistent input raises (:class:`InputError`), the best candidate's
proper decay length and truth origin (:mod:`tau3mu.processors.origin`).
"""

from __future__ import annotations

from tau3mu.processors.dsphipi import SNAPSHOT_FIELDS, DsPhiPiProcessor
from tau3mu.processors.histograms import CONTROL, WITHOUT_MASS, book
from tau3mu.processors.links import InputError, candidate_view
from tau3mu.processors.origin import origin_run2, origin_run3, proper_decay_length
from tau3mu.processors.selection import select, steps

__all__ = [
    "CONTROL",
    "SNAPSHOT_FIELDS",
    "WITHOUT_MASS",
    "DsPhiPiProcessor",
    "InputError",
    "book",
    "candidate_view",
    "origin_run2",
    "origin_run3",
    "proper_decay_length",
    "select",
    "steps",
]
