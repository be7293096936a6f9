"""Cross-check with ROOT: the corrected RDataFrame original and tau3mu agree bin by bin."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tau3mu.execution import run_runner
from tau3mu.processors.dsphipi import DsPhiPiProcessor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.root
def test_rdataframe_and_tau3mu_agree(run2_dataset, fileset_of):
    pytest.importorskip("ROOT")
    from rdf_original import run_rdf

    (spec,) = run2_dataset["datasets"].values()
    files = [spec["rootpath"] + f for f in spec["files"].split()]
    rdf = run_rdf(files)
    ours = run_runner(fileset_of(run2_dataset), DsPhiPiProcessor(), chunksize=2500)
    (name,) = ours.cutflow
    assert {label: [c["events"], c["candidates"]] for label, c in ours.cutflow[name].items()} == rdf["cutflow"]
    h = ours.hists["h_mass"][{"dataset": name, "systematic": "nominal"}].values()
    np.testing.assert_array_equal(h, np.asarray(rdf["h_mass"]))
    assert h.sum() > 100  # a real comparison, not of two empty histograms
