"""The mass spectrum the fit tests generate toys from: 2017B-like (4.8 fb^-1 after the
Run 2 selection, ``docs/physics.md``, "Synthetic data"), on the ``h_mass`` binning."""

from __future__ import annotations

import numpy as np

from tau3mu.config import DPLUS_MASS, DS_MASS, MassAxis

AXIS = MassAxis()
EDGES = np.linspace(AXIS.start, AXIS.stop, AXIS.bins + 1)
#: the model's parameters: ~5k Ds+, ~1.8k D+, a falling background
TRUTH = {
    "n_ds": 5000.0,
    "n_dplus": 1800.0,
    "n_bkg": 64500.0,
    "mean_ds": DS_MASS,
    "sigma_ds": 0.0115,
    "alpha_ds": 1.8,
    "n_cb_ds": 3.0,
    "mean_dplus": DPLUS_MASS,
    "sigma_dplus": 0.011,
    "alpha_dplus": 1.8,
    "n_cb_dplus": 3.0,
    "slope": -1.3,
}
