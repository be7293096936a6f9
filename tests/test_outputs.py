"""The output writers: strict JSON, file modes, dataset order, the one snapshot file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tau3mu.outputs import write_json


def strict_json(text: str):
    """Parse as a strict parser (JavaScript's JSON.parse) would: NaN/Infinity are errors."""

    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), None),
        (float("inf"), None),
        (-math.inf, None),
        (np.float64("nan"), None),
        (np.float32(1.5), 1.5),
        (np.array([np.nan, 2.0, np.inf]), [None, 2.0, None]),
        (
            {"params": {"n": {"error": np.nan, "value": 3}}},
            {"params": {"n": {"error": None, "value": 3}}},
        ),
        ((1, np.int64(2), [np.nan]), [1, 2, [None]]),
        (1e308, 1e308),
    ],
)
def test_json_is_strict(tmp_path, value, expected):
    path = write_json(tmp_path / "out.json", {"x": value})
    assert strict_json(path.read_text()) == {"x": expected}
