"""A correctionlib pileup-weight file for the synthetic simulation (docs/physics.md,
"Normalisation weights").

The weights are the ratio, bin by bin in the true pileup (bins of 1 from 0 to
``MAX_PILEUP``), of a data profile to the profile the generator draws simulation's true
pileup from: Run 2 ``nPileUpInt`` ~ Poisson(``SIM_MEAN``), Run 3 ``Pileup_nTrueInt`` ~
Gamma(``SIM_MEAN``, 1). The data profile is a Gamma of mean ``DATA_MEAN`` and shape
``DATA_SHAPE``. Averaged over simulation the weights are 1 (to the data profile's mass
beyond the range), so they change the shape of pileup-dependent quantities, not the
normalisation. Written in correctionlib's schema v2: one correction, one real input
(``NumTrueInteractions``), flow ``clamp``, as the LUM POG files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

__all__ = [
    "CORRECTION",
    "DATA_MEAN",
    "DATA_SHAPE",
    "MAX_PILEUP",
    "SIM_MEAN",
    "pileup_profiles",
    "write_pileup_weights",
]

CORRECTION = "pileup_weights"
MAX_PILEUP = 100
SIM_MEAN = 30.0
DATA_MEAN, DATA_SHAPE = 32.0, 20.0
#: simulation bins with less probability than this get weight 0 (no events there)
_EMPTY = 1e-12


def pileup_profiles(layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin edges, data probability per bin, simulation probability per bin) of the true
    pileup for ``layout`` (``"run2"``: integer Poisson, ``"run3"``: Gamma)."""
    edges = np.arange(MAX_PILEUP + 1, dtype=np.float64)
    data = np.diff(stats.gamma.cdf(edges, DATA_SHAPE, scale=DATA_MEAN / DATA_SHAPE))
    if layout == "run2":
        simulation = stats.poisson.pmf(edges[:-1], SIM_MEAN)
    elif layout == "run3":
        simulation = np.diff(stats.gamma.cdf(edges, SIM_MEAN, scale=1.0))
    else:
        raise ValueError(f"unknown layout {layout!r}; use run2 or run3")
    return edges, data, simulation


def write_pileup_weights(path: str | Path, layout: str) -> Path:
    """Write the pileup weights of ``layout``'s simulation to ``path`` (correctionlib
    JSON, checked by correctionlib's own schema); return the path."""
    import correctionlib.schemav2 as schema

    edges, data, simulation = pileup_profiles(layout)
    safe = np.where(simulation > _EMPTY, simulation, 1.0)
    weights = np.where(simulation > _EMPTY, data / safe, 0.0)
    correction = schema.Correction(
        name=CORRECTION,
        description=(
            f"synthetic pileup weights: Gamma(mean {DATA_MEAN}, shape {DATA_SHAPE}) data "
            f"over the {layout} simulation's true pileup profile"
        ),
        version=1,
        inputs=[schema.Variable(name="NumTrueInteractions", type="real")],
        output=schema.Variable(name="weight", type="real"),
        data=schema.Binning(
            nodetype="binning",
            input="NumTrueInteractions",
            edges=[float(e) for e in edges],
            content=[float(w) for w in weights],
            flow="clamp",
        ),
    )
    document = schema.CorrectionSet(schema_version=2, corrections=[correction])
    path = Path(path)
    path.write_text(json.dumps(document.model_dump(mode="json", exclude_unset=True), indent=1))
    return path
