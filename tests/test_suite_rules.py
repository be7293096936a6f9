"""The suite's own rules: under ``make test`` (TAU3MU_REQUIRE_ALL=1) nothing may skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SKIPPING = """
import pytest

def test_needs_a_module_that_is_not_there():
    pytest.importorskip("tau3mu_no_such_module")

@pytest.mark.skipif(True, reason="no real xrootd: not installed")
def test_needs_xrootd():
    pass

def test_runs():
    pass
"""


@pytest.mark.parametrize(("require_all", "code"), [("1", 1), ("", 0)], ids=["make-test", "plain"])
def test_require_all_turns_every_skip_into_a_failure(require_all, code, tmp_path):
    """The hook of tests/conftest.py, on a suite that skips for a missing module and for a
    missing xrootd server: with the switch pytest fails (exit 1) and names the reasons."""
    (tmp_path / "test_skips.py").write_text(SKIPPING)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "TAU3MU_REQUIRE_ALL": require_all, "PYTHONPATH": str(tests)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stdout[-3000:]
    if require_all:
        assert "1 failed, 1 passed, 1 error" in done.stdout
        assert "allows no skip; it skipped: Skipped: no real xrootd" in done.stdout
        assert "could not import 'tau3mu_no_such_module'" in done.stdout
    else:
        assert "1 passed, 2 skipped" in done.stdout
