"""The mass-fit figure: data, total model, components and a pull panel, CMS style."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tau3mu.fit import FitResult, model_cdf

__all__ = [
    "DEFAULT_LABEL",
    "draw_fit",
    "energy_tev",
    "label_text",
    "plot_fit",
    "save_figure",
]

#: the text beside "CMS" unless the user chooses another (``--label``)
DEFAULT_LABEL = "Private work"

#: how the figure names the parameters it shows as fixed
_PARAMETER_TEX = {
    "n_cb_ds": r"n_{\mathrm{CB}}(D_s^+)",
    "n_cb_dplus": r"n_{\mathrm{CB}}(D^+)",
    "alpha_ds": r"\alpha(D_s^+)",
    "alpha_dplus": r"\alpha(D^+)",
    "sigma_ds": r"\sigma(D_s^+)",
    "sigma_dplus": r"\sigma(D^+)",
    "mean_ds": r"m(D_s^+)",
    "mean_dplus": r"m(D^+)",
    "slope": r"\lambda",
    "bkg_b1": r"b_1",
    "bkg_b2": r"b_2",
}


def label_text(label: str = DEFAULT_LABEL, *, simulation: bool = False) -> str:
    """The text after "CMS" on a figure: ``label``, preceded by "Simulation" for simulation
    (as mplhep's CMS label writes it)."""
    return " ".join(f"{'Simulation ' if simulation else ''}{label}".split())


def energy_tev(era: str | None) -> float | None:
    """sqrt(s) of the era's run period (13 TeV in Run 2, 13.6 TeV in Run 3); None when
    the era is not known or names no run period: the figure then shows no energy."""
    from tau3mu.eras import sqrt_s_tev

    if not era:
        return None
    try:
        return sqrt_s_tev(era)
    except ValueError:
        return None


def _yield_line(symbol: str, result: FitResult, name: str) -> str:
    p = result.params[name]
    if result.is_fixed(name):
        return f"$N({symbol}) = {p['value']:.0f}$ (fixed)"
    return f"$N({symbol}) = {p['value']:.0f} \\pm {p['error']:.0f}$"


def _fixed_shapes_line(result: FitResult) -> str:
    """``Fixed: n_CB(Ds+) = 3, n_CB(D+) = 3`` for the fixed shape parameters, or ''."""
    shapes = [name for name in result.fixed if name in _PARAMETER_TEX]
    parts = [f"${_PARAMETER_TEX[n]} = {result.value(n):.4g}$" for n in shapes]
    return "Fixed: " + ", ".join(parts) if parts else ""


def plot_fit(
    counts: np.ndarray,
    edges: np.ndarray,
    result: FitResult,
    path_stem: str | Path,
    **options: Any,
) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` of :func:`draw_fit`'s figure (``options``
    are its keywords); returns the two paths."""
    return save_figure(draw_fit(counts, edges, result, **options), Path(path_stem), dpi=110)


def save_figure(fig: Any, stem: Path, *, dpi: float) -> list[Path]:
    """Write ``<stem>.png`` (at ``dpi``) and ``<stem>.pdf`` of ``fig``, each atomically,
    cropped to one tight bounding box, then close ``fig``; returns the two paths.

    The box (the figure's artists plus matplotlib's ``savefig.pad_inches``) is measured
    once, with the renderer the figure already has; ``bbox_inches="tight"`` would lay
    out the whole figure once more for every file.
    """
    import matplotlib.pyplot as plt

    from tau3mu.atomic import atomic_path

    pad = plt.rcParams["savefig.pad_inches"]
    box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(pad)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        target = stem.with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=dpi, bbox_inches=box)
        written.append(target)
    plt.close(fig)
    return written


def draw_fit(
    counts: np.ndarray,
    edges: np.ndarray,
    result: FitResult,
    *,
    label: str = DEFAULT_LABEL,
    lumi: float | None = None,
    era: str | None = None,
    title: str | None = None,
    simulation: bool = False,
    variances: np.ndarray | None = None,
) -> Any:
    """The figure of a fit (a matplotlib ``Figure``); a failed fit shows the data and says so.

    The CMS label reads "CMS <label>" ("CMS Simulation <label>" for ``simulation``, whose
    points are labelled as simulation too); on the right ``lumi`` (fb^-1, three significant
    digits) and the era's sqrt(s) (:func:`energy_tev`). Yields and shape parameters the
    fit held fixed are shown as fixed. The data's error bars are sqrt(``variances``) of a
    weighted histogram, else sqrt(counts).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    hep.style.use("CMS")
    counts = np.asarray(counts, dtype=float)
    edges = np.asarray(edges, dtype=float)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    hep.histplot(
        counts,
        edges,
        yerr=np.sqrt(counts if variances is None else np.asarray(variances, dtype=float)),
        histtype="errorbar",
        color="black",
        label="Simulation" if simulation else "Data",
        ax=top,
    )
    if result.converged:
        _draw_model(top, bottom, edges, result)
    else:
        top.text(
            0.03,
            0.95,
            f"fit failed: {result.reason}",
            transform=top.transAxes,
            va="top",
            fontsize=14,
            color="red",
        )
    bottom.axhline(0, color="black", lw=1)
    for level in (-2, 2):
        bottom.axhline(level, color="gray", ls=":", lw=1)
    bottom.set_ylim(-4.5, 4.5)
    bottom.set_ylabel("Pull")
    bottom.set_xlabel(r"$m(\mu^+\mu^-\pi^+)$ [GeV]")
    top.set_ylabel(f"Candidates / {1000 * (edges[1] - edges[0]):.1f} MeV")
    top.set_ylim(0, max(counts.max() * 1.75, 1))  # room for the legend above the peaks
    # the dataset names the legend: above the axes it would run into the CMS label
    top.legend(loc="upper right", fontsize=15, title=title, title_fontsize=12)
    _cms_label(top, label, simulation=simulation, lumi=lumi, era=era)
    return fig


def _draw_model(top: Any, bottom: Any, edges: np.ndarray, result: FitResult) -> None:
    """The total model and its components on ``top``, the pulls on ``bottom``, and the
    yields and fixed parameters as text."""
    values = {name: p["value"] for name, p in result.params.items()}
    fine = np.linspace(edges[0], edges[-1], 400)
    width = edges[1] - edges[0]

    def density(params: dict[str, float]) -> np.ndarray:
        cdf = model_cdf(fine, params, edges[0], edges[-1])
        return np.gradient(cdf, fine) * width

    zero = {"n_ds": 0.0, "n_dplus": 0.0, "n_bkg": 0.0}
    top.plot(fine, density(values), color="tab:blue", lw=2, label="Total model")
    for name, colour, text in (
        ("n_ds", "tab:red", r"$D_s^+ \to \phi\pi^+$"),
        ("n_dplus", "tab:green", r"$D^+ \to \phi\pi^+$"),
        ("n_bkg", "tab:gray", "Background"),
    ):
        top.plot(
            fine,
            density({**values, **zero, name: values[name]}),
            ls="--",
            color=colour,
            label=text,
        )
    centres = 0.5 * (edges[1:] + edges[:-1])
    pulls = np.asarray(result.pulls)
    bottom.bar(centres, pulls, width=np.diff(edges), color="tab:blue", alpha=0.6)
    lines = [
        _yield_line("D_s^+", result, "n_ds"),
        _yield_line("D^+", result, "n_dplus"),
        f"$\\chi^2/ndf = {result.chi2:.1f}/{result.ndf}$",
    ]
    top.text(0.03, 0.95, "\n".join(lines), transform=top.transAxes, va="top", fontsize=16)
    if fixed := _fixed_shapes_line(result):
        top.text(0.03, 0.76, fixed, transform=top.transAxes, va="top", fontsize=11)


def _cms_label(
    top: Any, label: str, *, simulation: bool, lumi: float | None, era: str | None
) -> None:
    """The CMS label, the luminosity and the era's sqrt(s) above ``top``."""
    import mplhep as hep

    text = label_text(label, simulation=simulation)
    energy = energy_tev(era)
    hep.cms.label(
        llabel=text,
        data=not simulation,
        lumi=lumi,
        lumi_format="{0:.3g}",
        com=None if energy is None else f"{energy:g}",  # 13 TeV, 13.6 TeV
        ax=top,
        loc=0,
        # a long label at the style's size runs into the luminosity
        **({"fontsize": 20} if len(text) > 14 else {}),
    )
