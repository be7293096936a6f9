"""Histogram definitions: ``h_mass`` and the control histograms a physicist checks.

Every histogram has a ``dataset`` axis and a ``systematic`` axis (``nominal`` for data;
``nominal``, ``sf_up``, ``sf_down`` for simulation) and weighted storage, so that data
and simulation histograms add and plot alike. Every control histogram but ``h_ncand``
has the ``mass`` axis of ``h_mass`` before its variable's, so that the Ds component can
be extracted per mass bin (sWeights, sideband subtraction); ``h_ct`` (the best
candidate's proper decay length) also has the truth ``origin`` axis before it
(:data:`tau3mu.config.ORIGIN_OTHER`, ``ORIGIN_PROMPT``, ``ORIGIN_FROM_B``).
"""

from __future__ import annotations

from typing import Any

import hist

from tau3mu.config import (
    CT_AXIS,
    ORIGIN_FROM_B,
    ORIGIN_OTHER,
    ORIGIN_PROMPT,
    SelectionConfig,
)

__all__ = ["CONTROL", "WITHOUT_MASS", "book"]

#: name -> (variable label, bins, start, stop); the mass histogram comes from the config
CONTROL: dict[str, tuple[str, str, int, float, float]] = {
    "h_mu_pt": ("mu_pt", r"Muon $p_T$ [GeV]", 50, 0.0, 25.0),
    "h_mu_eta": ("mu_eta", r"Muon $\eta$", 48, -2.4, 2.4),
    "h_trk_pt": ("trk_pt", r"Track $p_T$ [GeV]", 50, 0.0, 25.0),
    "h_trk_eta": ("trk_eta", r"Track $\eta$", 48, -2.4, 2.4),
    # Run 2: the refitted muon tracks' mass, Run 3: the muons' (both periods' windows)
    "h_phi_mass": ("phi_mass", r"$m(\mu\mu)$ [GeV]", 40, 0.98, 1.06),
    "h_flight_sig": ("flight_sig", r"Flight distance significance (BS-SV)", 50, 0.0, 50.0),
    "h_vtx_chi2": ("vtx_chi2", r"Vertex $\chi^2$", 50, 0.0, 25.0),
    "h_ct": ("ct", r"Proper decay length $ct$ [cm]", *CT_AXIS),
    "h_ncand": ("ncand", "Selected candidates per event", 10, 0.5, 10.5),
}
#: control histograms without the mass axis
WITHOUT_MASS = ("h_ncand",)


def _axes(name: str) -> list[Any]:
    return [
        hist.axis.StrCategory([], name="dataset", label="Dataset", growth=True),
        hist.axis.StrCategory([], name="systematic", label="Systematic", growth=True),
    ]


def book(config: SelectionConfig, *, dask: bool = False) -> dict[str, Any]:
    """Empty histograms, ``hist.dask.Hist`` for the dask-awkward path."""
    cls: Any
    if dask:
        from hist import dask as hist_dask

        cls = hist_dask.Hist
    else:
        cls = hist.Hist
    axis = config.mass_axis

    def mass_axis() -> Any:
        return hist.axis.Regular(
            axis.bins, axis.start, axis.stop, name="mass", label=r"$m(\mu\mu\pi)$ [GeV]"
        )

    out = {"h_mass": cls(*_axes("h_mass"), mass_axis(), storage=hist.storage.Weight())}
    for name, (var, label, bins, start, stop) in CONTROL.items():
        before = [] if name in WITHOUT_MASS else [mass_axis()]
        if name == "h_ct":
            origins = [ORIGIN_OTHER, ORIGIN_PROMPT, ORIGIN_FROM_B]
            before.insert(0, hist.axis.IntCategory(origins, name="origin", label="Origin"))
        out[name] = cls(
            *_axes(name),
            *before,
            hist.axis.Regular(bins, start, stop, name=var, label=label),
            storage=hist.storage.Weight(),
        )
    return out
