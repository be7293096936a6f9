"""The mass-fit figure: data, total model, components and a pull panel, CMS style."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tau3mu.fit import FitResult, model_cdf


def plot_fit(
    counts: np.ndarray,
    edges: np.ndarray,
    result: FitResult,
    path_stem: str | Path,
    *,
    label: str = "Preliminary",
    lumi: float | None = None,
    title: str | None = None,
    simulation: bool = False,
) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf``; a failed fit shows the data and says so.

    ``lumi`` (fb^-1) is shown to three significant digits; ``simulation`` labels the
    points and the CMS label as simulation rather than data.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    hep.style.use("CMS")
    counts = np.asarray(counts, dtype=float)
    edges = np.asarray(edges, dtype=float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    hep.histplot(
        counts,
        edges,
        yerr=np.sqrt(counts),
        histtype="errorbar",
        color="black",
        label="Simulation" if simulation else "Data",
        ax=top,
    )
    if result.converged:
        values = {name: p["value"] for name, p in result.params.items()}
        fine = np.linspace(edges[0], edges[-1], 400)
        width = edges[1] - edges[0]

        def density(params: dict[str, float]) -> np.ndarray:
            # SciPy's CDF: numba-stats would compile for ~4-5 s for this one evaluation
            cdf = model_cdf(fine, params, edges[0], edges[-1], library="scipy")
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
        pulls = np.asarray(result.pulls)
        bottom.bar(centres, pulls, width=np.diff(edges), color="tab:blue", alpha=0.6)
        n_ds = result.params["n_ds"]
        n_dp = result.params["n_dplus"]
        top.text(
            0.03,
            0.95,
            f"$N(D_s^+) = {n_ds['value']:.0f} \\pm {n_ds['error']:.0f}$\n"
            f"$N(D^+) = {n_dp['value']:.0f} \\pm {n_dp['error']:.0f}$\n"
            f"$\\chi^2/ndf = {result.chi2:.1f}/{result.ndf}$",
            transform=top.transAxes,
            va="top",
            fontsize=16,
        )
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
    hep.cms.label(
        label,
        data=not simulation,
        lumi=lumi,
        lumi_format="{0:.3g}",
        ax=top,
        loc=0,
        # "Simulation Preliminary" at the style's size runs into the luminosity
        **({"fontsize": 20} if simulation else {}),
    )
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    from tau3mu.outputs import atomic_path

    written = []
    for suffix in (".png", ".pdf"):
        target = stem.with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(
                tmp, format=suffix[1:], dpi=110 if suffix == ".png" else None, bbox_inches="tight"
            )
        written.append(target)
    plt.close(fig)
    return written
