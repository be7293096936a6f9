"""``tau3mu fit``: refit the mass peaks of a saved histogram; also the last step of a run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from tau3mu.fit import Spectrum, add_fit_engine_option

__all__ = [
    "add_fit_engine_option",
    "add_label_option",
    "configure",
    "main",
    "mass_histograms",
    "run_metadata",
]


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
    parser.add_argument(
        "--minos",
        action="store_true",
        help="also Minos intervals of every parameter (either engine)",
    )
    add_fit_engine_option(parser)
    add_label_option(parser)
    parser.add_argument(
        "--era",
        help="era of every dataset, for the figures' sqrt(s) (default: the eras, luminosities "
        "and types that the run's report.json beside the histogram file records)",
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


def mass_histograms(path: str | Path, name: str = "h_mass") -> dict[str, Spectrum]:
    """{dataset: :class:`Spectrum`} of the nominal mass histograms in a ROOT file
    (``<name>`` or ``<name>_<dataset>``, one-dimensional) or in a ``histograms.pkl``;
    with variances where the histogram is weighted.

    Raises :class:`~tau3mu.errors.FileError` naming the file: missing, unreadable,
    neither a ROOT file nor a pickle of histograms, or without such a histogram.
    """
    from tau3mu.errors import FileError

    path = Path(path)
    if not path.is_file():
        raise FileError(f"{path}: no such file")
    try:
        with path.open("rb") as handle:
            is_root = handle.read(4) == b"root"
    except OSError as err:
        raise FileError(f"{path}: cannot be read ({err.strerror or err})") from None
    out = _root_histograms(path, name) if is_root else _pickled_histograms(path, name)
    if not out:
        raise FileError(f"{path}: no histogram named {name!r} (or {name}_<dataset>)")
    return out


def _root_histograms(path: Path, name: str) -> dict[str, Spectrum]:
    import uproot

    from tau3mu.errors import FileError

    out: dict[str, Spectrum] = {}
    try:
        with uproot.open(path) as f:
            keys = [k.split(";")[0] for k in f.keys(cycle=False)]
            for key in keys:
                if key == name or (
                    key.startswith(name + "_") and not key.endswith(("_sf_up", "_sf_down"))
                ):
                    dataset = key.removeprefix(name).removeprefix("_") or name
                    out[dataset] = _counts_edges(f[key], f"{path}: {key}")
    except FileError:
        raise
    except Exception as err:
        raise FileError(f"{path}: unreadable ROOT file ({type(err).__name__}: {err})") from None
    return out


def _pickled_histograms(path: Path, name: str) -> dict[str, Spectrum]:
    from tau3mu.errors import FileError
    from tau3mu.outputs import load_histograms

    try:
        loaded: Any = load_histograms(path)
    except Exception as err:
        raise FileError(
            f"{path}: neither a ROOT file nor a histograms.pkl of tau3mu run "
            f"({type(err).__name__}: {err})"
        ) from None
    h = loaded.get(name) if isinstance(loaded, dict) else loaded
    if h is None:
        return {}
    if not hasattr(h, "axes") or not hasattr(h, "values"):
        raise FileError(f"{path}: {name!r} is a {type(h).__name__}, not a histogram")
    out: dict[str, Spectrum] = {}
    if "dataset" in h.axes.name:
        for dataset in h.axes["dataset"]:
            sub = h[{"dataset": dataset}]
            if "systematic" in sub.axes.name:
                sub = sub[{"systematic": "nominal"}]
            out[dataset] = _counts_edges(sub, f"{path}: {name} of {dataset!r}")
    else:
        out[name] = _counts_edges(h, f"{path}: {name}")
    return out


def _counts_edges(h: Any, where: str) -> Spectrum:
    """A one-dimensional histogram's counts, edges and variances (None when it has
    none, or they equal the counts), or :class:`FileError`."""
    from tau3mu.errors import FileError
    from tau3mu.fit import is_weighted

    try:
        counts, *edges = h.to_numpy()
        variances = h.variances()
    except Exception as err:
        raise FileError(f"{where}: not a histogram ({type(err).__name__}: {err})") from None
    if len(edges) != 1:
        raise FileError(f"{where}: a {len(edges)}-dimensional histogram; the fit needs 1")
    counts = np.asarray(counts, dtype=float)
    if variances is not None:
        variances = np.asarray(variances, dtype=float)
    return Spectrum(
        counts,
        np.asarray(edges[0], dtype=float),
        variances if is_weighted(counts, variances) else None,
    )


def main(args: argparse.Namespace) -> int:
    """``tau3mu fit``; a mistake raises :class:`~tau3mu.errors.Tau3MuError` (exit 2)."""
    from tau3mu.errors import OptionError
    from tau3mu.mass_fits import fit_datasets
    from tau3mu.validation import check_output_folder, few

    check_output_folder(args.out, "--out")
    histograms = mass_histograms(args.histfile, args.hist)
    if args.dataset:
        unknown = [d for d in dict.fromkeys(args.dataset) if d not in histograms]
        if unknown:
            raise OptionError(
                f"--dataset: unknown dataset(s) {few(unknown, 3)}; "
                f"{args.histfile} has {few(histograms)}"
            )
        histograms = {d: histograms[d] for d in args.dataset}
    recorded = run_metadata(args.histfile)
    results = fit_datasets(
        histograms,
        args.out,
        engine=args.fit_engine,
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
