"""Muon ID scale factors from a correctionlib schema-v2 file (docs/physics.md, "Scale factors").

The real Muon POG 2017 UL file has pt edges from 3 GeV with flow ``"error"``, while the
selection admits endcap muons down to 2 GeV. Inputs are therefore clamped into the
correction's domain before evaluation, and the number of clamped values is reported so
that the approximation is visible, not silent.

The files tau3mu ships (the repository's ``data/`` folder, package ``tau3mu.data``) are
found per data-taking year by :func:`shipped_muon_sf`; :func:`scale_factors_for` turns
the command's ``--muon-sf`` / ``--no-muon-sf`` into the scale factors of every simulated
dataset's year.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from tau3mu.eras import year_of
from tau3mu.errors import Tau3MuError

#: correction used by the analysis (docs/physics.md, "Selection")
DEFAULT_CORRECTION = "NUM_MediumID_DEN_TrackerMuons"
#: Muon POG ID scale-factor files shipped in ``data/`` (package ``tau3mu.data``), by year
SHIPPED_MUON_SF: dict[int, str] = {2017: "Efficiency_muon_trackerMuon_Run2017_UL_ID_schemaV2.json"}
#: weight variations, as (label in the output, key in the correction)
VARIATIONS: tuple[tuple[str, str], ...] = (
    ("nominal", "nominal"),
    ("sf_up", "systup"),
    ("sf_down", "systdown"),
)


@dataclass(frozen=True)
class Domain:
    """Where a binned correction is defined: [low, high) per input."""

    low: float
    high: float

    def clamp(self, values: Any) -> Any:
        """Move values into [low, high); NaN stays NaN and is not counted as clamped."""
        upper = np.nextafter(self.high, -np.inf) if np.isfinite(self.high) else np.inf
        return np.minimum(np.maximum(values, self.low), upper)

    def outside(self, values: Any) -> Any:
        return (values < self.low) | (values >= self.high)


def _binning_domains(node: dict[str, Any], out: dict[str, Domain]) -> None:
    """Walk a schema-v2 correction tree and collect the edges of every binning input."""
    if not isinstance(node, dict):
        return
    if node.get("nodetype") in ("binning", "multibinning"):
        inputs = [node["input"]] if node["nodetype"] == "binning" else node["inputs"]
        edges = [node["edges"]] if node["nodetype"] == "binning" else node["edges"]
        for name, edge in zip(inputs, edges, strict=False):
            if isinstance(edge, dict):  # uniform binning
                low, high = float(edge["low"]), float(edge["high"])
            else:
                low, high = float(edge[0]), float(edge[-1])
            old = out.get(name)
            out[name] = (
                Domain(low, high) if old is None else Domain(max(old.low, low), min(old.high, high))
            )
    for child in node.get("content", []) if isinstance(node.get("content"), list) else []:
        _binning_domains(child.get("value", child) if "key" in child else child, out)


class MuonScaleFactors:
    """Per-muon ID scale factors with clamping into the correction's domain.

    The JSON text is kept (not the path), so the object pickles to remote Dask workers
    that do not share the client's file system; it is parsed once per process.
    """

    def __init__(self, path: str | Path, correction: str = DEFAULT_CORRECTION) -> None:
        self.path = str(path)
        self.correction_name = correction
        try:
            self._text = Path(path).read_text(encoding="utf-8")
            document = json.loads(self._text)
        except OSError as err:
            raise FileNotFoundError(f"scale-factor file {path}: {err.strerror}") from err
        except json.JSONDecodeError as err:
            raise ValueError(f"scale-factor file {path} is not valid JSON: {err}") from err
        names = [c.get("name") for c in document.get("corrections", [])]
        if correction not in names:
            raise KeyError(
                f"scale-factor file {path} has no correction {correction!r}; it has {names}"
            )
        node = document["corrections"][names.index(correction)]
        self.domains: dict[str, Domain] = {}
        _binning_domains(node["data"], self.domains)
        self._evaluator: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_evaluator"] = None
        return state

    def fingerprint(self) -> dict[str, str]:
        """What the weights depend on (the file's content, not its path): the key under
        which checkpointed chunks weighted with these factors are kept."""
        digest = hashlib.sha256(self._text.encode()).hexdigest()
        return {"correction": self.correction_name, "sha256": digest}

    @property
    def evaluator(self) -> Any:
        if self._evaluator is None:
            import correctionlib

            cset = correctionlib.CorrectionSet.from_string(self._text)
            self._evaluator = cset[self.correction_name]
        return self._evaluator

    def clamp(self, abseta: Any, pt: Any) -> tuple[Any, Any, Any]:
        """Inputs moved into the domain, and a mask of the values that had to be moved."""
        moved = False
        if "abseta" in self.domains:
            moved = self.domains["abseta"].outside(abseta)
            abseta = self.domains["abseta"].clamp(abseta)
        if "pt" in self.domains:
            moved = moved | self.domains["pt"].outside(pt)
            pt = self.domains["pt"].clamp(pt)
        return abseta, pt, moved

    def evaluate(self, eta: Any, pt: Any, variation: str = "nominal") -> Any:
        """Scale factor of muons with (eta, pt), clamped into the domain; works on awkward arrays."""
        abseta, pt, _ = self.clamp(np.abs(eta), pt)
        return self.evaluator.evaluate(abseta, pt, variation)

    def event_weights(self, muons: list[tuple[Any, Any]]) -> tuple[dict[str, Any], Any]:
        """Product over muons ``[(eta, pt), ...]`` of the SFs per variation, and the clamp count."""
        weights: dict[str, Any] = {}
        clamped = 0
        prepared = []
        for eta, pt in muons:
            abseta, pt_in, moved = self.clamp(np.abs(eta), pt)
            prepared.append((abseta, pt_in))
            clamped = clamped + ak.sum(moved)
        for label, key in VARIATIONS:
            weight = 1.0
            for abseta, pt_in in prepared:
                weight = weight * self.evaluator.evaluate(abseta, pt_in, key)
            weights[label] = weight
        return weights, clamped

    def __repr__(self) -> str:
        return f"MuonScaleFactors({self.path!r}, correction={self.correction_name!r})"


class ScaleFactorError(Tau3MuError, ValueError):
    """The scale factors of a simulated dataset cannot be chosen or read."""


def shipped_muon_sf(year: int) -> Path | None:
    """The Muon POG ID scale-factor file tau3mu ships for ``year``, or None (2017 only)."""
    name = SHIPPED_MUON_SF.get(year)
    if name is None:
        return None
    return Path(str(resources.files("tau3mu.data").joinpath(name)))


def _load(path: str | Path, option: str) -> MuonScaleFactors:
    try:
        return MuonScaleFactors(path)
    except (OSError, ValueError, KeyError) as err:
        text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise ScaleFactorError(f"{option}: {text}") from None


def scale_factors_for(
    datasets: Iterable[Any],
    muon_sf: str | Path | None = None,
    no_muon_sf: bool = False,
    default_era: str | None = None,
) -> dict[str, MuonScaleFactors]:
    """The muon ID scale factors of every year that has simulation among ``datasets``.

    Parameters
    ----------
    datasets
        Objects with ``name``, ``era`` and ``is_mc`` (:class:`tau3mu.datasets.Dataset`).
    muon_sf
        A correctionlib file (``--muon-sf``) used for every simulated year instead of the
        shipped ones.
    no_muon_sf
        Run simulation without scale factors (weight 1): returns ``{}``.
    default_era
        The era of datasets that name none (``--era``).

    Returns
    -------
    ``{year: MuonScaleFactors}`` (years as strings, ``"2017"``) for the years of the
    simulated datasets (each file read once); ``{}`` when no dataset is simulation or
    with ``no_muon_sf``. :class:`tau3mu.processors.dsphipi.DsPhiPiProcessor` takes it as
    its ``scale_factors``.

    Raises
    ------
    ScaleFactorError
        Both options given; a simulated dataset whose era has no year or whose year has
        no shipped file (and no ``muon_sf``); a file that cannot be read or lacks the
        correction.
    """
    if muon_sf is not None and no_muon_sf:
        raise ScaleFactorError("--muon-sf and --no-muon-sf exclude each other: choose one")
    simulated = [d for d in datasets if d.is_mc]
    if no_muon_sf or not simulated:
        return {}
    chosen = _load(muon_sf, f"--muon-sf {muon_sf}") if muon_sf is not None else None
    loaded: dict[Path, MuonScaleFactors] = {}
    out: dict[str, MuonScaleFactors] = {}
    for d in simulated:
        era = d.era or default_era
        if era is None:
            raise ScaleFactorError(
                f"dataset {d.name!r}: simulation without an era, so its muon scale factors "
                "are unknown; give its 'era' (or --era), or pass --muon-sf FILE or --no-muon-sf"
            )
        year = year_of(era)
        if chosen is not None:
            out[str(year)] = chosen
            continue
        path = shipped_muon_sf(year)
        if path is None:
            shipped = ", ".join(str(y) for y in sorted(SHIPPED_MUON_SF))
            raise ScaleFactorError(
                f"dataset {d.name!r} (simulation, era {d.era!r}): tau3mu ships muon ID scale "
                f"factors for {shipped} only, not {year}; pass --muon-sf FILE or --no-muon-sf"
            )
        if path not in loaded:
            loaded[path] = _load(path, f"shipped scale factors {path.name}")
        out[str(year)] = loaded[path]
    return out


class PileupWeights:
    """Pileup weights w_PU(true pileup) from a correctionlib file (docs/physics.md,
    "Normalisation weights").

    The correction is the file's only one, or the one named ``correction``; it has one
    real input, the true number of interactions (Run 2 ``nPileUpInt``, Run 3
    ``Pileup_nTrueInt``), and at most one string input, the variation, given
    ``"nominal"`` (the LUM POG files' ``weights`` input). Like :class:`MuonScaleFactors`
    the JSON text is kept, so that the object pickles to remote workers.

    Raises
    ------
    ScaleFactorError
        A file that cannot be read, is not a correctionlib document, has no such
        correction, or whose correction does not have these inputs.
    """

    def __init__(self, path: str | Path, correction: str | None = None) -> None:
        import correctionlib

        self.path = str(path)
        where = f"--pileup {path}"
        try:
            self._text = Path(path).read_text(encoding="utf-8")
            cset = correctionlib.CorrectionSet.from_string(self._text)
        except OSError as err:
            raise ScaleFactorError(f"{where}: cannot read the file ({err.strerror})") from None
        except Exception as err:  # correctionlib's pydantic and JSON errors alike
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ScaleFactorError(f"{where}: not a correctionlib file ({first})") from None
        names = list(cset)
        if correction is None and len(names) != 1:
            raise ScaleFactorError(
                f"{where}: expected one correction, the file has {names or 'none'}"
            )
        self.correction_name = correction or names[0]
        if self.correction_name not in names:
            raise ScaleFactorError(f"{where}: no correction {self.correction_name!r} in {names}")
        kinds = [i.type for i in cset[self.correction_name].inputs]
        if kinds.count("real") + kinds.count("int") != 1 or kinds.count("string") > 1:
            raise ScaleFactorError(
                f"{where}: correction {self.correction_name!r} has inputs {kinds}; expected "
                "one number (the true pileup) and at most one string (the variation)"
            )
        self.inputs = kinds
        self._evaluator: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_evaluator"] = None
        return state

    def fingerprint(self) -> dict[str, str]:
        """The correction's name and the file content's SHA-256 (checkpoint key)."""
        digest = hashlib.sha256(self._text.encode()).hexdigest()
        return {"correction": self.correction_name, "sha256": digest}

    def evaluate(self, true_pileup: Any) -> Any:
        """w_PU of each value of ``true_pileup``: numpy, flat awkward or dask-awkward
        arrays of float64 (correctionlib evaluates each kind; an ``int`` input gets the
        values truncated)."""
        if self._evaluator is None:
            import correctionlib

            cset = correctionlib.CorrectionSet.from_string(self._text)
            self._evaluator = cset[self.correction_name]
        values = true_pileup
        if "int" in self.inputs:
            values = values.astype(np.int64) if isinstance(values, np.ndarray) else values
        args = [values if kind != "string" else "nominal" for kind in self.inputs]
        return self._evaluator.evaluate(*args)

    def __repr__(self) -> str:
        return f"PileupWeights({self.path!r}, correction={self.correction_name!r})"
