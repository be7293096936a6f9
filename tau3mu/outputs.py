"""Write a run's outputs, each atomically: a temporary file in the same folder, then a rename.

An interrupted run therefore never leaves a half-written ``histograms.root`` or
``fit.json`` that looks complete: a file is either the old one, absent, or whole.

Files (in the output folder):

``histograms.root``  ``h_mass_<dataset>`` (nominal) and ``h_mass_<dataset>_<variation>`` TH1D
                      plus ``<control>_<dataset>``, written with uproot, readable by ROOT
``histograms.pkl``   the ``hist.Hist`` objects with their dataset / systematic axes
``cutflow.json``     ``{dataset: {label: {"events": n, "candidates": n}}}``
``snapshot.root``    TTree ``ntuple``: the best candidates of all datasets, an integer
                      ``dataset`` branch named by the TObjString ``datasets``
                      (``snapshot.parquet`` on request, with a string ``dataset`` column)
``report.json``      what ran, how fast, on what
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tau3mu.atomic import atomic_open, atomic_path, current_umask

if TYPE_CHECKING:  # awkward is imported where a snapshot is written: `tau3mu fit` needs none
    import awkward as ak

__all__ = [
    "atomic_open",
    "atomic_path",
    "current_umask",
    "cutflow_table",
    "histogram_slices",
    "in_input_order",
    "load_histograms",
    "root_compression",
    "safe_name",
    "snapshot_columns",
    "with_datasets",
    "write_histograms",
    "write_json",
    "write_snapshot",
]


def write_json(path: str | Path, data: Any) -> Path:
    """``data`` as strict JSON: NaN and infinities (an undefined error, a pull of an empty
    bin) become ``null``, since ``NaN`` is not JSON and strict parsers reject the file."""
    with atomic_open(path) as handle:
        json.dump(
            _finite(data), handle, indent=2, sort_keys=False, allow_nan=False, default=_json_default
        )
        handle.write("\n")
    return Path(path)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (containers walked)."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def safe_name(name: str) -> str:
    """``name`` usable in a file or ROOT key name: anything but letters, digits, _ and - becomes _."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)


def in_input_order(result: Any, names: Sequence[str]) -> Any:
    """``result`` (an :class:`~tau3mu.execution.AnalysisOutput`) with its datasets in the
    order of ``names`` (the datasets file's, or ``--dataset``'s) everywhere: cutflow,
    snapshot, truth, scale factors and the histograms' ``dataset`` axis.

    The executors merge chunks in the order they finish, so without this the first
    dataset of the outputs (and of ``mass_fit.png``) would change from run to run.
    Datasets absent from ``names`` (none in practice) follow in their merged order.
    A dataset that was processed but selected no event gets its empty histograms
    (:func:`with_datasets`), so that it keeps its place in every output.
    """
    present = list(result.cutflow)
    for h in result.hists.values():
        if "dataset" in h.axes.name:
            present += [d for d in h.axes["dataset"] if d not in present]
    order = [n for n in dict.fromkeys(names) if n in present]
    order += [n for n in present if n not in order]

    def ordered(mapping: dict[str, Any]) -> dict[str, Any]:
        return {key: mapping[key] for key in sorted(mapping, key=order.index)}

    hists = {}
    for name, h in result.hists.items():
        if "dataset" in h.axes.name:
            weighted = [d for d in order if d in result.scale_factors]
            # every histogram of simulation has the scale-factor variations
            h = with_datasets(h, order, weighted, variations=True)
            categories = list(h.axes["dataset"])
            wanted = sorted(categories, key=order.index)
            if wanted != categories:
                with warnings.catch_warnings():  # "list indexing selection is experimental"
                    warnings.simplefilter("ignore", UserWarning)
                    h = h[{"dataset": wanted}]
        hists[name] = h
    return dataclasses.replace(
        result,
        cutflow=ordered(result.cutflow),
        hists=hists,
        snapshot=ordered(result.snapshot),
        truth=ordered(result.truth),
        scale_factors=ordered(result.scale_factors),
    )


#: the ``systematic`` categories of simulation weighted with scale factors, in ``h_mass``
SF_VARIATIONS = ("sf_up", "sf_down")


def with_datasets(
    h: Any, datasets: Sequence[str], weighted: Collection[str] = (), *, variations: bool = False
) -> Any:
    """``h`` with a ``dataset`` category for each of ``datasets``: one it lacks (a
    dataset that selected no event fills nothing, so its category never grew) is added
    empty, with the ``nominal`` systematic and, for the ``weighted`` datasets, the
    scale-factor variations where ``h`` has them (or ``variations`` says it takes them).
    Filled with zero weight: contents and variances stay 0. ``h`` itself is not changed.
    """
    missing = [d for d in datasets if d not in list(h.axes["dataset"])]
    if not missing:
        return h
    h = h.copy()
    have = list(h.axes["systematic"])
    # the first bin's lower edge, or the first category (h_ct's origin)
    values = {a.name: [a.value(0)] for a in h.axes if a.name not in ("dataset", "systematic")}
    for dataset in missing:
        systematics = ["nominal"]
        if dataset in weighted:
            systematics += [s for s in SF_VARIATIONS if variations or s in have]
        for systematic in systematics:
            h.fill(dataset=dataset, systematic=systematic, **values, weight=[0.0])
    return h


def histogram_slices(
    hists: dict[str, Any], simulation: Collection[str] | None = None
) -> dict[str, Any]:
    """One 1D histogram per (histogram, dataset, systematic), named for ``histograms.root``.

    Variations (``_sf_up``, ``_sf_down``) only for the datasets in ``simulation`` (all
    datasets when None): the ``systematic`` axis is shared, so a data dataset has those
    categories too, empty.
    """
    out = {}
    for name, h in hists.items():
        for dataset in h.axes["dataset"]:
            for systematic in h.axes["systematic"]:
                if systematic != "nominal" and simulation is not None and dataset not in simulation:
                    continue
                one = h[{"dataset": dataset, "systematic": systematic}]
                key = f"{name}_{safe_name(dataset)}"
                if systematic != "nominal":
                    key += f"_{systematic}"
                out[key] = one
    return out


def root_compression() -> Any:
    """The compression of the ROOT files tau3mu writes: ZLIB, which every ROOT version
    reads, deflated by ISA-L (level 1) where the ``isal`` package is installed, else by
    the standard library at ROOT's level 1.

    uproot's ``ZLIB(level)`` on ISA-L deflates at ISA-L level ``round(level / 3)``, so
    level 3 here (the level the file records) is ISA-L's level 1, faster than the
    standard library's level 1 and no larger (docs/benchmarks.md, "Where the time goes").
    """
    import uproot

    from tau3mu.inflate import isal_available

    if not isal_available():
        return uproot.ZLIB(1)
    compression = uproot.ZLIB(3)
    compression.library = "isal"  # this instance only: uproot's class default stays
    return compression


def write_histograms(
    outdir: str | Path, hists: dict[str, Any], *, simulation: Collection[str] | None = None
) -> dict[str, Path]:
    """``histograms.root`` (TH1D per slice, variations for ``simulation`` only, see
    :func:`histogram_slices`) and ``histograms.pkl`` (the full hist objects)."""
    import uproot

    outdir = Path(outdir)
    root_path = outdir / "histograms.root"
    with atomic_path(root_path) as tmp, uproot.recreate(tmp, compression=root_compression()) as f:
        for key, h in histogram_slices(hists, simulation).items():
            f[key] = h
    pkl_path = outdir / "histograms.pkl"
    with atomic_open(pkl_path, "wb") as handle:
        pickle.dump(hists, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return {"root": root_path, "pickle": pkl_path}


def load_histograms(path: str | Path) -> dict[str, Any]:
    """Read back ``histograms.pkl`` for replotting."""
    with open(path, "rb") as handle:
        histograms: dict[str, Any] = pickle.load(handle)
    return histograms


#: the snapshot's tree, and the TObjString beside it naming the ``dataset`` branch's values
SNAPSHOT_TREE = "ntuple"
SNAPSHOT_DATASETS = "datasets"


def snapshot_columns(snapshot: dict[str, ak.Array]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The datasets' best candidates as one table: flat columns, and the index of each
    row's dataset in ``snapshot`` (its order: the input's).

    A column that only some datasets have (``weight_sf_up`` of simulation, the truth of
    files that carry it) is filled for the others: a weight variation with the nominal
    weight (no variation applies), anything else with -1 (integers), NaN (floats) or
    False.
    """
    import awkward as ak

    arrays = list(snapshot.values())
    fields = [set(ak.fields(array)) for array in arrays]
    names = list(dict.fromkeys(f for array in arrays for f in ak.fields(array)))
    columns = {}
    for name in names:
        dtype = np.result_type(
            *(ak.to_numpy(a[name]).dtype for a, f in zip(arrays, fields, strict=True) if name in f)
        )
        pieces = []
        for array, own in zip(arrays, fields, strict=True):
            if name in own:
                pieces.append(ak.to_numpy(array[name]).astype(dtype, copy=False))
            elif name.startswith("weight_") and "weight" in own:
                pieces.append(ak.to_numpy(array["weight"]).astype(dtype))
            else:
                pieces.append(np.full(len(array), _missing(dtype), dtype=dtype))
        columns[name] = np.concatenate(pieces)
    index = np.concatenate(
        [np.zeros(0, np.int32)] + [np.full(len(a), i, np.int32) for i, a in enumerate(arrays)]
    )
    return columns, index


def _missing(dtype: np.dtype) -> Any:
    if np.issubdtype(dtype, np.integer):
        return -1
    if np.issubdtype(dtype, np.floating):
        return np.nan
    return False


def write_snapshot(
    outdir: str | Path, snapshot: dict[str, ak.Array], *, fmt: str = "root"
) -> dict[str, Any]:
    """The best candidates of all datasets in one file: ``snapshot.root`` with one TTree
    ``ntuple`` (or ``snapshot.parquet``), one row per selected event.

    The ROOT tree has an integer branch ``dataset``, the position of the row's dataset in
    ``snapshot``; what each value means is in the file, as the TObjString ``datasets``
    (JSON ``{"0": name, ...}``) and in the tree's title. The parquet file has the name
    itself in a string column ``dataset`` (and the same JSON in its metadata). Returns
    ``{"path", "format", "tree", "datasets": {"0": name, ...}, "rows": {name: n}}`` for
    ``report.json``.
    """
    import uproot

    columns, index = snapshot_columns(snapshot)
    datasets = {str(i): name for i, name in enumerate(snapshot)}
    meaning = json.dumps(datasets)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(outdir) / "snapshot.parquet"
        table = pa.table(
            {
                "dataset": pa.array(list(snapshot), pa.string()).take(pa.array(index)),
                **columns,
            }
        ).replace_schema_metadata({"tau3mu.datasets": meaning})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    elif fmt == "root":
        path = Path(outdir) / "snapshot.root"
        title = "best candidate per selected event; dataset: " + ", ".join(
            f"{i}={name}" for i, name in datasets.items()
        )
        branches = {"dataset": np.int32, **{k: v.dtype for k, v in columns.items()}}
        with atomic_path(path) as tmp, uproot.recreate(tmp, compression=root_compression()) as f:
            f[SNAPSHOT_DATASETS] = meaning
            tree = f.mktree(SNAPSHOT_TREE, branches, title=title)
            if len(index):
                tree.extend({"dataset": index, **columns})
    else:
        raise ValueError(f"unknown snapshot format {fmt!r}; use root or parquet")
    return {
        "path": str(path),
        "format": fmt,
        **({"tree": SNAPSHOT_TREE} if fmt == "root" else {}),
        "datasets": datasets,
        "rows": {name: len(array) for name, array in snapshot.items()},
    }


def cutflow_table(cutflow: dict[str, dict[str, dict[str, int]]]) -> str:
    """A printable table: per dataset, events and candidates after each step, with efficiencies."""
    lines = []
    for dataset, steps in cutflow.items():
        lines.append(f"Cutflow of {dataset}")
        lines.append(f"  {'step':<22}{'events':>12}{'eff.':>9}{'candidates':>14}{'eff.':>9}")
        previous = None
        # in the processor's order: input, the dataset's period's steps, best candidate
        for label in steps:
            counts = steps[label]
            if previous is None:
                eff_e = eff_c = ""
            else:
                eff_e = _ratio(counts["events"], previous["events"])
                eff_c = _ratio(counts["candidates"], previous["candidates"])
            lines.append(
                f"  {label:<22}{counts['events']:>12,}{eff_e:>9}{counts['candidates']:>14,}{eff_c:>9}"
            )
            previous = counts
    return "\n".join(lines)


def _ratio(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "-"
