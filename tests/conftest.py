"""Shared fixtures: paths to the steering repo's shared data and generated ntuples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: ``../shared`` beside the checkout (CI lays a copy there); overridable for odd set-ups
SHARED = Path(os.environ.get("TAU3MU_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared data folder {SHARED} not found; set TAU3MU_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def branch_list_file(shared_dir: Path) -> Path:
    return shared_dir / "data" / "tree3mu_branches.txt"


@pytest.fixture(scope="session")
def pog_sf_file(shared_dir: Path) -> Path:
    """The real Muon POG 2017 UL ID scale factors (correctionlib schema v2)."""
    return shared_dir / "data" / "Efficiency_muon_trackerMuon_Run2017_UL_ID_schemaV2.json"
