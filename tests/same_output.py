"""One check that two runs gave the same output, bit for bit (NaN equal to NaN)."""

from __future__ import annotations

import awkward as ak
import numpy as np

from tau3mu.execution import AnalysisOutput


def assert_same_output(a: AnalysisOutput, b: AnalysisOutput) -> None:
    """Cutflow, truth counts, every histogram's values (flow bins included) and variances,
    and every dataset's snapshot (fields, types and values) of ``a`` and ``b`` agree."""
    assert a.cutflow == b.cutflow
    assert a.truth == b.truth
    assert a.hists.keys() == b.hists.keys()
    for name, h in a.hists.items():
        other = b.hists[name]
        np.testing.assert_array_equal(h.values(flow=True), other.values(flow=True), err_msg=name)
        np.testing.assert_array_equal(h.variances(), other.variances(), err_msg=name)
    assert a.snapshot.keys() == b.snapshot.keys()
    for dataset, snap in a.snapshot.items():
        other = b.snapshot[dataset]
        assert ak.fields(snap) == ak.fields(other), dataset
        assert ak.array_equal(snap, other, equal_nan=True), dataset
