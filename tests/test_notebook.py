"""The notebook runs top to bottom, as a physicist would run it."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analysis.ipynb"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TAU3MU_NOTEBOOK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TAU3MU_NOTEBOOK_LUMI", "0.1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = "".join(
        out.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert "trigger_match" in outputs
    assert "fit converged" in outputs
    assert (tmp_path / "data" / "mass_fit.png").is_file()
    assert (tmp_path / "data" / "snapshot.root").is_file()
    assert "dataset branch: {'0': 'synthetic_run3_2022F'}" in outputs
    assert "flight_significance" in outputs.split("acceptance")[1]  # the Run 3 order
    # the normalisation section: R and f_B beside what was generated, and the ct-fit figure
    assert "; generated 0.85" in outputs
    assert "; generated 0.25" in outputs
    assert (tmp_path / "data" / "normalisation" / "out" / "normalisation.json").is_file()
