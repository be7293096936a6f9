"""The normalisation's figures: R per era, the sWeighted ct fit, and data against
simulation for every control variable (CMS style, as :mod:`tau3mu.fitplot`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tau3mu.fitplot import DEFAULT_LABEL, energy_tev, label_text, save_figure

__all__ = ["plot_control", "plot_ct_fit", "plot_ratios", "save"]


def _style() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import mplhep as hep

    hep.style.use("CMS")
    return hep


def _label(
    ax: Any, era: str | None, lumi: float | None, label: str, simulation: bool = False
) -> None:
    hep = _style()
    energy = energy_tev(era)
    hep.cms.label(
        llabel=label_text(label, simulation=simulation),
        data=not simulation,
        lumi=lumi,
        lumi_format="{0:.3g}",
        com=None if energy is None else f"{energy:g}",
        ax=ax,
        loc=0,
    )


def save(fig: Any, stem: Path) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically; returns the paths."""
    return save_figure(fig, stem, dpi=100)


def plot_ratios(
    eras: Mapping[str, Mapping[str, float]], stem: Path, label: str = DEFAULT_LABEL
) -> list[Path]:
    """R per era with statistical and total errors (``eras``: era -> ``R``,
    ``stat_error``, ``syst_error``)."""
    import matplotlib.pyplot as plt

    _style()
    fig, ax = plt.subplots(figsize=(10, 7))
    names = list(eras)
    x = np.arange(len(names))
    r = np.array([eras[n]["R"] for n in names])
    stat = np.array([eras[n]["stat_error"] for n in names])
    total = np.hypot(stat, [eras[n]["syst_error"] for n in names])
    ax.errorbar(x, r, yerr=total, fmt="none", color="tab:blue", capsize=8, label="stat. + syst.")
    ax.errorbar(x, r, yerr=stat, fmt="o", color="black", capsize=4, label="stat.")
    ax.axhline(1.0, color="gray", ls=":")
    ax.set_xticks(x, names)
    ax.set_xlim(-0.7, len(names) - 0.3)
    ax.set_ylim(0, max(1.5, float((r + total).max()) * 1.3))
    ax.set_xlabel("Era")
    ax.set_ylabel(r"$R = N_{D_s}^{\mathrm{data}} / N_{D_s}^{\mathrm{sim}}$")
    ax.legend(loc="upper right")
    _label(ax, names[0] if len(names) == 1 else None, None, label)
    return save(fig, stem)


def plot_ct_fit(
    ct: Sequence[tuple[np.ndarray, np.ndarray]],
    edges: np.ndarray,
    fraction: Any,
    stem: Path,
    *,
    era: str,
    lumi: float | None,
    label: str = DEFAULT_LABEL,
) -> list[Path]:
    """The sWeighted data ct distribution with the fitted prompt and from-b templates
    (``ct``: data, prompt and from-b (values, variances) pairs; ``fraction`` a
    :class:`FractionResult`)."""
    import matplotlib.pyplot as plt

    hep = _style()
    (data, var), prompt, from_b = ct
    width = np.diff(edges)  # the fit's bins may differ in width: densities per cm
    data, error = data / width, np.sqrt(np.maximum(var, 0)) / width
    fig, ax = plt.subplots(figsize=(10, 8))
    if fraction.converged:
        p = prompt[0] / prompt[0].sum() * fraction.n_prompt / width
        b = from_b[0] / from_b[0].sum() * fraction.n_from_b / width
        hep.histplot(
            [b, p],
            edges,
            stack=True,
            histtype="fill",
            ax=ax,
            alpha=0.6,
            label=[r"$D_s^+$ from b hadrons", r"prompt $D_s^+$"],
            color=["tab:orange", "tab:blue"],
        )
        text = f"$f_B = {fraction.fraction:.3f} \\pm {fraction.error:.3f}$"
    else:
        text = f"template fit failed: {fraction.reason}"
    hep.histplot(
        data,
        edges,
        yerr=error,
        histtype="errorbar",
        color="black",
        label="Data (sWeighted)",
        ax=ax,
    )
    ax.text(0.05, 0.06, text, transform=ax.transAxes, fontsize=18)
    if np.any(np.asarray(data) > 0):  # else nothing to draw on a log scale
        ax.set_yscale("log")
        top = float(np.abs(data).max())
        ax.set_ylim(max(top * 1e-4, 0.1), top * 20)
    ax.set_xlabel(r"Proper decay length $ct$ [cm]")
    ax.set_ylabel("sWeighted candidates / cm")
    ax.legend(loc="upper right", title=era)
    _label(ax, era, lumi, label)
    return save(fig, stem)


def plot_control(
    data: tuple[np.ndarray, np.ndarray],
    simulation: Mapping[str, tuple[np.ndarray, np.ndarray]],
    edges: np.ndarray,
    stem: Path,
    *,
    xlabel: str,
    era: str,
    lumi: float | None,
    label: str = DEFAULT_LABEL,
) -> list[Path]:
    """Data points over normalised simulation with its statistical and scale-factor bands
    and a data/simulation ratio panel. ``data`` and each of ``simulation``'s entries
    (``nominal`` and optionally ``sf_up``/``sf_down``) are (values, variances) pairs."""
    import matplotlib.pyplot as plt

    hep = _style()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    sim, sim_var = simulation["nominal"]
    shifts = [np.abs(simulation[k][0] - sim) for k in ("sf_up", "sf_down") if k in simulation]
    sf_error = np.max(shifts, axis=0) if shifts else np.zeros_like(sim)
    stat_error = np.sqrt(np.maximum(sim_var, 0))
    hep.histplot(
        sim,
        edges,
        histtype="fill",
        color="tab:blue",
        alpha=0.4,
        ax=top,
        label="Simulation (normalised)",
    )
    for error, colour, text in (
        (stat_error, "gray", "sim. stat."),
        (np.hypot(stat_error, sf_error), "tab:red", "sim. stat. + SF"),
    ):
        top.stairs(
            sim + error,
            edges,
            baseline=sim - error,
            fill=True,
            alpha=0.25,
            color=colour,
            label=text,
        )
    hep.histplot(
        data[0],
        edges,
        yerr=np.sqrt(np.maximum(data[1], 0)),
        histtype="errorbar",
        color="black",
        label=r"Data ($D_s^+$ sWeighted)",
        ax=top,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sim > 0, data[0] / sim, np.nan)
        ratio_err = np.where(sim > 0, np.sqrt(np.maximum(data[1], 0)) / sim, np.nan)
        band = np.where(sim > 0, np.hypot(stat_error, sf_error) / sim, 0)
    bottom.stairs(1 + band, edges, baseline=1 - band, fill=True, alpha=0.25, color="tab:red")
    centres = 0.5 * (edges[1:] + edges[:-1])
    bottom.errorbar(centres, ratio, yerr=ratio_err, fmt="o", color="black", ms=4)
    bottom.axhline(1.0, color="gray", ls=":")
    bottom.set_ylim(0, 2)
    bottom.set_ylabel("Data / sim.")
    bottom.set_xlabel(xlabel)
    top.set_ylabel("Candidates / bin")
    top.legend(loc="upper right", title=era, fontsize=14)
    _label(top, era, lumi, label)
    return save(fig, stem)
