"""``tau3mu fit``: refit the mass peaks of a saved histogram; also the last step of a run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("histfile", help="histograms.root or histograms.pkl of a run")
    parser.add_argument("--hist", default="h_mass", help="histogram name (prefix in a ROOT file)")
    parser.add_argument(
        "--dataset",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="fit only these datasets, in this order (--dataset A B or --dataset A --dataset B)",
    )
    parser.add_argument("--out", default=".", help="output folder (default: here)")
    parser.add_argument("--minos", action="store_true", help="also Minos errors (zfit engine)")
    add_fit_engine_option(parser, "--engine")
    add_label_option(parser)
    parser.add_argument(
        "--era",
        help="era of every dataset, for the figures' sqrt(s) (default: the eras, luminosities "
        "and types that the run's report.json beside the histogram file records)",
    )


def add_fit_engine_option(parser: argparse.ArgumentParser, flag: str = "--fit-engine") -> None:
    """The fit engine option (``--fit-engine`` of run and demo, ``--engine`` of fit)."""
    parser.add_argument(
        flag,
        choices=["zfit", "iminuit"],
        default="zfit",
        help="zfit (default), or iminuit with numba-stats: the same model and strategy, "
        "an independent implementation that fits in milliseconds",
    )


def add_label_option(parser: argparse.ArgumentParser) -> None:
    """``--label``: the text after "CMS" on the figures."""
    from tau3mu.fitplot import DEFAULT_LABEL

    parser.add_argument(
        "--label",
        default=DEFAULT_LABEL,
        help=f'text after "CMS" on the figures (default "{DEFAULT_LABEL}"; "Simulation" is '
        "put before it for simulation), e.g. --label Preliminary",
    )


def run_metadata(histfile: str | Path) -> dict[str, dict[str, Any]]:
    """{dataset: {era, lumi, type}} from the ``report.json`` that the run which wrote
    ``histfile`` left beside it; empty when there is none or it cannot be read."""
    import json

    report = Path(histfile).with_name("report.json")
    try:
        datasets = json.loads(report.read_text())["datasets"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return datasets if isinstance(datasets, dict) else {}


def mass_histograms(
    path: str | Path, name: str = "h_mass"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{dataset: (counts, edges)} of the nominal mass histograms in a ROOT or pickle file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if path.suffix == ".root":
        import uproot

        with uproot.open(path) as f:
            keys = [k.split(";")[0] for k in f.keys(cycle=False)]
            for key in keys:
                if key == name or (
                    key.startswith(name + "_") and not key.endswith(("_sf_up", "_sf_down"))
                ):
                    counts, edges = f[key].to_numpy()
                    out[key.removeprefix(name).removeprefix("_") or name] = (counts, edges)
    else:
        from tau3mu.outputs import load_histograms

        loaded: Any = load_histograms(path)
        h = loaded[name] if isinstance(loaded, dict) else loaded
        if "dataset" in h.axes.name:
            for dataset in h.axes["dataset"]:
                sub = h[{"dataset": dataset}]
                if "systematic" in sub.axes.name:
                    sub = sub[{"systematic": "nominal"}]
                out[dataset] = (sub.values(), sub.axes[0].edges)
        else:
            out[name] = (h.values(), h.axes[0].edges)
    if not out:
        raise KeyError(f"{path}: no histogram named {name!r} (or {name}_<dataset>)")
    return out


def figure_stem(outdir: str | Path, dataset: str) -> Path:
    """``<outdir>/mass_fit_<dataset>``: the fit figure of one dataset, without suffix."""
    from tau3mu.outputs import safe_name

    return Path(outdir) / f"mass_fit_{safe_name(dataset)}"


def fit_datasets(
    histograms: dict[str, tuple[np.ndarray, np.ndarray]],
    outdir: str | Path,
    *,
    engine: str = "zfit",
    minos: bool = False,
    lumi: dict[str, float] | None = None,
    simulation: Collection[str] = (),
    eras: dict[str, str | None] | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Fit each dataset's histogram; write fit.json and the figures.

    Each dataset gets ``mass_fit_<dataset>.png/.pdf``; ``mass_fit.png/.pdf`` is a copy
    of the first dataset's (the first in the datasets file, or in ``--dataset``), so
    that it shows the same dataset on every run. Datasets in ``simulation`` are labelled
    as such on the figure; ``eras`` gives each figure its sqrt(s), ``label`` the text
    after "CMS" (default :data:`tau3mu.fitplot.DEFAULT_LABEL`).
    """
    import shutil

    from tau3mu import fit
    from tau3mu.fitplot import DEFAULT_LABEL, plot_fit
    from tau3mu.outputs import atomic_path, write_json

    outdir = Path(outdir)
    results = {}
    for i, (dataset, (counts, edges)) in enumerate(histograms.items()):
        if engine == "iminuit":
            result = fit.fit_counts_iminuit(counts, edges)
        else:
            result = fit.fit_counts(counts, edges, minos=minos)
        results[dataset] = result
        written = plot_fit(
            counts,
            edges,
            result,
            figure_stem(outdir, dataset),
            lumi=(lumi or {}).get(dataset),
            era=(eras or {}).get(dataset),
            label=DEFAULT_LABEL if label is None else label,
            title=dataset,
            simulation=dataset in simulation,
        )
        if i == 0:
            for figure in written:
                with atomic_path(outdir / f"mass_fit{figure.suffix}") as tmp:
                    shutil.copyfile(figure, tmp)
    write_json(
        outdir / "fit.json", {d: {"engine": engine, **r.to_dict()} for d, r in results.items()}
    )
    return results


def main(args: argparse.Namespace) -> int:
    try:
        histograms = mass_histograms(args.histfile, args.hist)
    except (FileNotFoundError, KeyError) as err:
        print(f"tau3mu fit: {err}", file=sys.stderr)
        return 2
    if args.dataset:
        unknown = sorted(set(args.dataset) - set(histograms))
        if unknown:
            print(
                f"tau3mu fit: unknown dataset(s) {unknown}; the file has {sorted(histograms)}",
                file=sys.stderr,
            )
            return 2
        histograms = {d: histograms[d] for d in args.dataset}
    recorded = run_metadata(args.histfile)
    results = fit_datasets(
        histograms,
        args.out,
        engine=args.engine,
        minos=args.minos,
        lumi={d: m["lumi"] for d, m in recorded.items() if m.get("lumi")},
        simulation={d for d, m in recorded.items() if m.get("type") == "mc"},
        eras={d: args.era or recorded.get(d, {}).get("era") for d in histograms},
        label=args.label,
    )
    failed = 0
    for dataset, result in results.items():
        print(f"{dataset}:\n{result.table()}")
        failed += not result.converged
    print(
        f"wrote {Path(args.out) / 'fit.json'}, mass_fit_<dataset>.png/.pdf for each dataset "
        f"and mass_fit.png/.pdf (a copy of {next(iter(results))}'s)"
    )
    return 1 if failed else 0
