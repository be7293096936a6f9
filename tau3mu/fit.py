"""The Ds+ / D+ mass fit (``docs/physics.md``, "Fit"): extended binned maximum likelihood with zfit.

Model: Crystal Ball for the Ds+, Crystal Ball for the D+, exponential background, each
extended with its own yield. The original pre-fitted each part in its own range and
then fitted all together, which did not converge on real 2017B data. Here:

1. start values come from the histogram itself: the background level and slope from a
   log-linear fit of the sidebands, the peak yields from the counts above it;
2. the Crystal Ball tail exponents are fixed (a 62-bin spectrum does not constrain
   them, and floating them is what lets such fits wander off); the rest floats;
3. Migrad, a refit from its minimum if that is not valid, then Hesse; while Minuit's
   minimum is not valid or its covariance not accurate, what a spectrum may fail to
   determine is held in turn: an absent peak at its lower bound, a width narrower than a
   bin at the detector resolution, the tail onsets at their start values. A fit that
   still fails is reported as failed, with Minuit's reason, and no numbers.

Two engines share that strategy (``_minimise``) and the result (``_result``); each only
supplies its loss and expected counts. ``fit_counts`` (the default) uses zfit: its model
is built once per binning and reused; zfit's binned loss is compiled into a TensorFlow
function of the parameter vector on the first fit, which Minuit calls; a warm fit only
swaps the data (see ``_Model``; times in docs/benchmarks.md). ``fit_counts_iminuit``
uses iminuit's cost with a closed-form numpy Crystal Ball CDF: the independent
cross-check. Parameter names used in results: ``n_ds, n_dplus, n_bkg, mean_ds, sigma_ds, alpha_ds, n_cb_ds,
mean_dplus, sigma_dplus, alpha_dplus, n_cb_dplus, slope``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tau3mu.config import DPLUS_MASS, DS_MASS

#: sideband windows (GeV) of the original pre-fit, used for background start values
SIDEBANDS = ((1.65, 1.84), (1.89, 1.925), (1.99, 2.02))
#: (start, lower, upper) per shape parameter (``docs/physics.md``, "Fit")
SHAPE_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "mean_ds": (1.97, 1.94, 2.10),
    # widths: the original allowed up to 0.1 / 0.05; the detector resolution is ~12 MeV, and a width
    # above 30 MeV is a peak eating background, not a resolution
    "sigma_ds": (0.012, 0.001, 0.03),
    "alpha_ds": (1.5, 0.3, 10.0),
    "n_cb_ds": (3.0, 0.5, 25.0),
    "mean_dplus": (1.87, 1.82, 1.89),
    "sigma_dplus": (0.011, 0.001, 0.03),
    "alpha_dplus": (1.5, 0.3, 10.0),
    "n_cb_dplus": (3.0, 0.5, 25.0),
    # the original allowed (-2, -0.01); flat and rising backgrounds exist, so it may cross 0
    "slope": (-1.0, -10.0, 10.0),
}
YIELDS = ("n_ds", "n_dplus", "n_bkg")
#: parameters held at their start value in the fit
FIXED = ("n_cb_ds", "n_cb_dplus")


@dataclass
class FitResult:
    """Outcome of a mass fit; ``converged`` False means: do not use the numbers.

    ``params`` maps each parameter name to its ``value``, ``error`` (NaN when held fixed),
    Minos ``lower``/``upper`` (NaN unless asked for) and ``fixed`` (True when the fit held
    it at its value: the Crystal Ball tail exponents always, others where the strategy of
    the module docstring had to).
    """

    converged: bool
    status: int
    reason: str
    valid: bool
    edm: float
    strategy: str = ""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    correlation: dict[str, dict[str, float]] = field(default_factory=dict)
    chi2: float = math.nan
    ndf: int = 0
    pulls: list[float] = field(default_factory=list)
    entries: float = 0.0
    fit_time_s: float = 0.0
    at_limit: list[str] = field(default_factory=list)

    @property
    def yields(self) -> dict[str, dict[str, float]]:
        return {name: self.params[name] for name in YIELDS if name in self.params}

    def value(self, name: str) -> float:
        return self.params[name]["value"]

    def error(self, name: str) -> float:
        return self.params[name]["error"]

    def is_fixed(self, name: str) -> bool:
        """Whether the fit held ``name`` at its value (results written before the ``fixed``
        flag existed: a parameter without an error)."""
        p = self.params[name]
        return bool(p.get("fixed", math.isnan(p["error"])))

    @property
    def fixed(self) -> list[str]:
        """The parameters the fit held at their values, in ``params`` order."""
        return [name for name in self.params if self.is_fixed(name)]

    def value_text(self, name: str, fmt: str = ".5g", error_fmt: str = ".3g") -> str:
        """``1360.4 +- 116`` for a fitted parameter, ``3 (fixed)`` for a fixed one."""
        p = self.params[name]
        if self.is_fixed(name):
            return f"{p['value']:{fmt}} (fixed)"
        return f"{p['value']:{fmt}} +- {p['error']:{error_fmt}}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.converged:
            out = {
                key: out[key]
                for key in ("converged", "status", "reason", "valid", "edm", "strategy", "entries")
            }
            out["result"] = "failed"
        else:
            out["result"] = "ok"
            out["chi2_ndf"] = self.chi2 / self.ndf if self.ndf else math.nan
        return out

    def to_json(self, path: str | Path) -> Path:
        from tau3mu.outputs import write_json

        return write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitResult:
        """The result of :meth:`to_dict`, also read back from JSON, where the numbers that
        were NaN (an error not computed, Minos bounds not asked for) are ``null``."""
        known = set(cls.__dataclass_fields__)
        numeric = ("params", "correlation", "chi2", "edm", "pulls", "entries", "fit_time_s")
        return cls(
            **{k: _nan_for_null(v) if k in numeric else v for k, v in data.items() if k in known}
        )

    def table(self) -> str:
        if not self.converged:
            return f"fit FAILED (status {self.status}): {self.reason}"
        lines = [f"fit converged (status {self.status}, edm {self.edm:.2g}, {self.strategy})"]
        for name, p in self.params.items():
            if self.is_fixed(name):
                lines.append(f"  {name:<12} {p['value']:>12.5g}    (fixed)")
            else:
                lines.append(f"  {name:<12} {p['value']:>12.5g} +- {p['error']:<10.3g}")
        lines.append(f"  chi2/ndf     {self.chi2:.1f}/{self.ndf}")
        return "\n".join(lines)


def _nan_for_null(value: Any) -> Any:
    """JSON's ``null`` back to NaN, inside dicts and lists of numbers."""
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: _nan_for_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_for_null(v) for v in value]
    return value


# -- histogram helpers --------------------------------------------------------------------
def mass_counts(h: Any) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of a 1D mass histogram, or of the nominal slice of a bigger one."""
    if h.ndim > 1:
        selection = {}
        for axis in h.axes[:-1]:
            if axis.name == "systematic":
                selection["systematic"] = "nominal"
            elif axis.name == "dataset":
                if len(axis) != 1:
                    raise ValueError(
                        "histogram has several datasets: pick one with h[{'dataset': name}]"
                    )
                selection["dataset"] = axis[0]
        h = h[selection]
    return np.asarray(h.values(), dtype=np.float64), np.asarray(h.axes[0].edges)


def start_values(counts: np.ndarray, edges: np.ndarray) -> dict[str, float]:
    """Background level and slope from the sidebands, peak yields from the excess over it."""
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = np.diff(edges)
    side = np.zeros(len(centres), dtype=bool)
    for lo, hi in SIDEBANDS:
        side |= (centres > lo) & (centres < hi)
    use = side & (counts > 0)
    if use.sum() >= 3:
        slope, intercept = np.polyfit(
            centres[use], np.log(counts[use] / width[use]), 1, w=np.sqrt(counts[use])
        )
    else:
        slope, intercept = 0.0, math.log(max(counts.sum(), 1.0) / (edges[-1] - edges[0]))
    slope = float(
        np.clip(slope, SHAPE_DEFAULTS["slope"][1] + 0.1, SHAPE_DEFAULTS["slope"][2] - 0.1)
    )
    background = np.exp(intercept + slope * centres) * width
    total = float(counts.sum())

    def excess(centre: float, half: float) -> float:
        window = np.abs(centres - centre) < half
        return float((counts[window] - background[window]).sum())

    n_ds = excess(DS_MASS, 0.03)
    n_dplus = excess(DPLUS_MASS, 0.03)
    n_bkg = max(total - max(n_ds, 0) - max(n_dplus, 0), 1.0)
    return {
        "n_ds": float(np.clip(n_ds, 0.05 * total, 0.9 * total)) if total else 1.0,
        "n_dplus": float(np.clip(n_dplus, 0.02 * total, 0.9 * total)) if total else 1.0,
        "n_bkg": float(np.clip(n_bkg, 1.0, total)) if total else 1.0,
        "slope": slope,
    }


# -- TensorFlow: its environment and XLA's compilation cache ------------------------------
#: entries kept in the XLA cache folder (~0.4 MB each; one per binning and loss function)
_XLA_CACHE_ENTRIES = 16
#: what TensorFlow logs each time it reads a cache entry: it tries the text format first
_XLA_CACHE_NOISE = "Error parsing text-format tensorflow.XlaSerializedCacheEntry"
#: and what it logs, as errors, on loading an entry: that CPU tuning flags of the compiler
#: (``+prefer-no-scatter``, not instruction sets) are not host features. The folder is
#: per CPU already (its name hashes the host's CPU flags): no entry of another CPU is read
_XLA_AOT_NOISE = "cpu_aot_loader.cc"


class _XlaCache:
    """TensorFlow's persistent XLA cache, kept where concurrent or failing writes do no harm.

    Compiling the loss with XLA is ~0.7 s of a cold fit; with the flag
    ``--tf_xla_persistent_cache_directory`` TensorFlow saves the executable and loads it in
    later processes. It keys an entry by a hash of the compiled HLO module, which holds the
    bin edges, and checks the whole module on loading, so binnings do not collide; the
    folder is per TensorFlow version and CPU (the executable is built for the host's
    instruction set). But TensorFlow writes entries in place, and a truncated entry or a
    failed write fails the compiled call itself, for the rest of the process. So
    TensorFlow gets a private folder in the temporary directory with copies of the user's
    entries; new entries are copied back by atomic rename after a compilation, and an
    error in doing that only loses the entry. The private folder is given to TensorFlow
    through ``TF_XLA_FLAGS``, which is restored once TensorFlow has read it (at the first
    compilation), so that processes started later do not share it. Up to
    ``_XLA_CACHE_ENTRIES`` are kept (the key also holds the traced function's name, which
    counts the functions traced before it in the process). The folder is ``xla/`` in
    tau3mu's cache folder (:func:`tau3mu.cache.cache_dir`): ``TAU3MU_CACHE_DIR=off`` turns
    it off, and a cache directory set by the user in ``TF_XLA_FLAGS`` is left alone.
    """

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.private: Path | None = None
        self.user_flags: str | None = None

    @staticmethod
    def folder_for_this_host() -> Path | None:
        from importlib.metadata import PackageNotFoundError, version

        from tau3mu.cache import cache_dir

        root = cache_dir()
        if root is None:
            return None
        try:
            tensorflow = version("tensorflow")
        except PackageNotFoundError:
            return None
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
        flags = next(
            (line for line in cpuinfo.splitlines() if line.startswith(("flags", "Features"))),
            platform.processor(),
        )
        cpu = hashlib.sha256(flags.encode()).hexdigest()[:12]
        return root / "xla" / f"tf{tensorflow}-{platform.machine()}-{cpu}"

    def enable(self) -> None:
        """Point TensorFlow at a private copy of the cache; call before importing it."""
        flags = os.environ.get("TF_XLA_FLAGS")
        if flags is not None and "tf_xla_persistent_cache_directory" in flags:
            return
        folder = self.folder_for_this_host()
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            private = Path(tempfile.mkdtemp(prefix="tau3mu-xla-"))
        except OSError:
            return
        if shutil.disk_usage(private).free < 2**26:  # a failed write fails the fit
            private.rmdir()
            return
        atexit.register(shutil.rmtree, private, ignore_errors=True)
        for entry in folder.glob("*.pb"):
            try:
                shutil.copyfile(entry, private / entry.name)
            except OSError:
                (private / entry.name).unlink(missing_ok=True)
        os.environ["TF_XLA_FLAGS"] = f"{flags or ''} --tf_xla_persistent_cache_directory={private}"
        self.folder, self.private, self.user_flags = folder, private, flags

    @contextlib.contextmanager
    def compiling(self) -> Iterator[None]:
        """Around a first call: hide the read noise, then publish what was compiled."""
        folder, private = self.folder, self.private
        if folder is None or private is None:
            yield
            return
        with _stderr_without(_XLA_CACHE_NOISE, _XLA_AOT_NOISE):
            yield
        if self.user_flags is None:
            os.environ.pop("TF_XLA_FLAGS", None)
        else:
            os.environ["TF_XLA_FLAGS"] = self.user_flags
        from tau3mu.outputs import atomic_path

        with contextlib.suppress(OSError):  # a cache only ever saves work
            for entry in private.glob("*.pb"):
                target = folder / entry.name
                if not target.exists():
                    with atomic_path(target) as partial:
                        shutil.copyfile(entry, partial)
            entries = sorted(folder.glob("*.pb"), key=lambda p: p.stat().st_mtime)
            for old in entries[:-_XLA_CACHE_ENTRIES]:
                old.unlink(missing_ok=True)


@contextlib.contextmanager
def _stderr_without(*noise: str) -> Iterator[None]:
    """Pass on what is written to file descriptor 2 meanwhile, less lines with any of
    the strings of ``noise``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = (x for x in text.splitlines(True) if not any(n in x for n in noise))
            sys.stderr.write("".join(kept))


_XLA_CACHE = _XlaCache()


def _import_zfit() -> Any:
    """zfit, with TensorFlow's environment set first (it is read when TensorFlow loads)."""
    if "tensorflow" not in sys.modules:
        # TensorFlow imports Keras 3 (its optimizers, and matplotlib.pyplot with them,
        # ~1 s) unless told to use tf_keras (Keras 2), which is what zfit uses anyway
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        # zfit silences TensorFlow's log; unset, it also warns that it does so
        os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")
        _XLA_CACHE.enable()
    import zfit

    return zfit


# -- the zfit model, built once per binning ---------------------------------------------
@functools.cache
def _binned_pdfs() -> tuple[type, type]:
    """zfit binned PDFs that integrate their shape over every bin at once.

    ``BinnedFromUnbinnedPDF`` integrates the unbinned PDF bin by bin, through a ``Space``
    per bin and a vectorised map: a graph of ~9,500 operations that took ~10 s to trace
    and ~2.5 ms to run. These compute the same bin integrals with zfit's own analytic
    Crystal Ball integral (``crystalball_integral_func``) on all bin edges at once, and the
    exponential's in closed form: the same model in a few hundred operations. Each is
    normalised to the fit range by the sum of its bins, which tile the range.
    """
    zfit = _import_zfit()
    import zfit.z.numpy as znp
    from zfit.core.space import supports
    from zfit.models.physics import crystalball_integral_func

    class BinnedCrystalBall(zfit.pdf.BaseBinnedPDF):
        def __init__(self, obs, mu, sigma, alpha, n, extended, name):
            params = {"mu": mu, "sigma": sigma, "alpha": alpha, "n": n}
            super().__init__(obs=obs, extended=extended, name=name, params=params)
            edges = np.asarray(obs.binning.edges[0], dtype=np.float64)
            self._lower, self._upper = edges[:-1, None], edges[1:, None]

        @supports(norm="space")
        def _rel_counts(self, x, norm):
            p = self.params
            per_bin = crystalball_integral_func(
                p["mu"].value(),
                p["sigma"].value(),
                p["alpha"].value(),
                p["n"].value(),
                self._lower,
                self._upper,
            )
            return per_bin / znp.sum(per_bin)

    class BinnedExponential(zfit.pdf.BaseBinnedPDF):
        def __init__(self, obs, lam, extended, name):
            super().__init__(obs=obs, extended=extended, name=name, params={"lam": lam})
            edges = np.asarray(obs.binning.edges[0], dtype=np.float64)
            # exp(lam (x - centre)): shifted to the middle of the range against overflow,
            # as zfit's Exponential does
            self._offset = edges[:-1] - 0.5 * (edges[0] + edges[-1])
            self._width = np.diff(edges)

        @supports(norm="space")
        def _rel_counts(self, x, norm):
            lam = self.params["lam"].value()
            # bin integral exp(lam a) (exp(lam w) - 1) / lam, written as
            # exp(lam a) w expm1(lam w) / (lam w): finite and smooth through lam = 0
            lw = lam * self._width
            small = znp.abs(lw) < 1e-7
            safe = znp.where(small, znp.ones_like(lw), lw)
            ratio = znp.where(small, 1.0 + 0.5 * lw, znp.expm1(safe) / safe)
            per_bin = znp.exp(lam * self._offset) * self._width * ratio
            return per_bin / znp.sum(per_bin)

    return BinnedCrystalBall, BinnedExponential


#: compile the loss with XLA (benchmarks/bench_fit.py measures with and without)
_XLA = True


class _Model:
    """zfit objects for one binning, and the loss compiled once for all its fits.

    The loss is zfit's ``ExtendedBinnedNLL`` on ``BinnedSamplerData``, whose counts are
    swapped in place for each histogram (a warm fit). Minuit (iminuit, as inside
    ``zfit.minimize.Minuit``) calls it through TensorFlow functions of the parameter
    vector, compiled (XLA) on the first fit: the loss value with the expected counts, and,
    only with ``gradient=True``, the value with its gradient. Going through
    ``zfit.minimize.Minuit`` cost ~10 ms of Python per call (``assign_values_jit`` and the
    loss call each look up a traced function from their Python arguments), ~3 s for the
    ~300 calls of a fit and its Hesse; one compiled call is ~0.6 ms. Minuit's errordef
    and EDM tolerance are those zfit sets; the strategy is the shared one (``_minimise``).
    The first call of each function compiles it, through the XLA cache (``_XlaCache``).
    """

    #: order of the parameter vector given to Minuit
    ORDER = (*YIELDS, *SHAPE_DEFAULTS)

    def __init__(self, edges: np.ndarray) -> None:
        zfit = _import_zfit()
        import tensorflow as tf
        from zfit._data.binneddatav1 import BinnedSamplerData

        crystal_ball, exponential = _binned_pdfs()
        self.edges = edges
        binning = zfit.binned.VariableBinning(edges, name="mass")
        self.binned_obs = zfit.Space("mass", binning=binning)
        self.p: dict[str, Any] = {}
        for name, (start, lower, upper) in SHAPE_DEFAULTS.items():
            self.p[name] = zfit.Parameter(f"tau3mu_{name}", start, lower, upper)
        for name in YIELDS:
            self.p[name] = zfit.Parameter(f"tau3mu_{name}", 100.0, 0.0, 1e9)
        ds, dplus = (
            crystal_ball(
                self.binned_obs,
                mu=self.p[f"mean_{peak}"],
                sigma=self.p[f"sigma_{peak}"],
                alpha=self.p[f"alpha_{peak}"],
                n=self.p[f"n_cb_{peak}"],
                extended=self.p[f"n_{peak}"],
                name=label,
            )
            for peak, label in (("ds", "Ds"), ("dplus", "Dplus"))
        )
        background = exponential(
            self.binned_obs, lam=self.p["slope"], extended=self.p["n_bkg"], name="background"
        )
        self.binned_components = {"n_ds": ds, "n_dplus": dplus, "n_bkg": background}
        self.binned = zfit.pdf.BinnedSumPDF([ds, dplus, background], name="model")
        self.data = BinnedSamplerData(
            h=zfit.data.BinnedData.from_tensor(
                space=self.binned_obs, values=np.ones(len(edges) - 1)
            )
        )
        self.loss = zfit.loss.ExtendedBinnedNLL(self.binned, self.data)
        self.errordef = float(self.loss.errordef)
        vector = [self.p[name] for name in self.ORDER]

        def assign(x):
            for i, param in enumerate(vector):
                param.assign(x[i], read_value=False)

        # autograph off: AutoGraph's conversion of the zfit call tree took ~10 s; XLA
        # (jit_compile) fuses the few hundred operations: one call ~0.6 ms instead of
        # ~2 ms, for ~0.7 s more compilation on the first fit
        @tf.function(autograph=False, jit_compile=_XLA)
        def evaluate(x):
            # the loss, and the expected counts for the pulls (one trace for both)
            assign(x)
            return self.loss.value(full=False), self.binned.counts()

        @tf.function(autograph=False, jit_compile=_XLA)
        def value_gradient(x):
            assign(x)
            with tf.GradientTape() as tape:
                loss = self.loss.value(full=False)
            return loss, tape.gradient(loss, vector)

        self._evaluate, self._value_gradient = evaluate, value_gradient
        self._compiled: set[Callable] = set()

    def _call(self, function: Callable, x: np.ndarray) -> Any:
        """``function(x)``; its first call compiles it, through the XLA cache."""
        x = np.asarray(x, dtype=np.float64)
        if function in self._compiled:
            return function(x)
        with _XLA_CACHE.compiling():
            out = function(x)
        self._compiled.add(function)
        return out

    def fcn(self, x: np.ndarray) -> float:
        return float(self._call(self._evaluate, x)[0])

    def grad(self, x: np.ndarray) -> np.ndarray:
        _, gradient = self._call(self._value_gradient, x)
        return np.array([float(g) for g in gradient])

    def counts_at(self, x: np.ndarray) -> np.ndarray:
        """Expected counts per bin at ``x``; leaves the zfit parameters at ``x``."""
        return np.asarray(self._call(self._evaluate, x)[1])

    def expected(self, which: str | None = None) -> np.ndarray:
        pdf = self.binned if which is None else self.binned_components[which]
        return np.asarray(pdf.counts())


_MODELS: dict[tuple[float, ...], _Model] = {}


def _model_for(edges: np.ndarray) -> _Model:
    key = tuple(np.round(edges, 9))
    if key not in _MODELS:
        _MODELS[key] = _Model(edges)
    return _MODELS[key]


# -- one strategy and one result for both engines --------------------------------------
def _shape_of(yield_name: str) -> tuple[str, ...]:
    """Shape parameters of the peak whose yield is ``yield_name``."""
    peak = yield_name.removeprefix("n_")
    return (f"mean_{peak}", f"sigma_{peak}", f"alpha_{peak}")


def _failed(
    status: int, reason: str, entries: float, strategy: str = "", edm: float = math.nan
) -> FitResult:
    return FitResult(
        converged=False,
        status=status,
        reason=reason,
        valid=False,
        edm=edm,
        strategy=strategy,
        entries=entries,
    )


def _unfit(counts: np.ndarray, min_entries: int) -> FitResult | None:
    """The failed result for a histogram that cannot be fitted, else None."""
    entries = float(counts.sum())
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        return _failed(-1, "histogram has negative or non-finite bin contents", entries)
    if entries < min_entries:
        return _failed(
            -1, f"only {entries:.0f} entries: too few for a three-component fit", entries
        )
    return None


def _starts(counts: np.ndarray, edges: np.ndarray, names: tuple[str, ...]) -> list[float]:
    """Start values of ``names`` from the histogram, inside their limits."""
    starts = {name: spec[0] for name, spec in SHAPE_DEFAULTS.items()}
    starts.update(start_values(counts, edges))
    limits = _limits(float(counts.sum()))
    return [float(np.clip(starts[name], *limits[name])) for name in names]


def _limits(entries: float) -> dict[str, tuple[float, float]]:
    """(lower, upper) per parameter: the ranges of ``SHAPE_DEFAULTS``, yields within
    [1, entries]."""
    limits = {name: spec[1:] for name, spec in SHAPE_DEFAULTS.items()}
    limits.update({name: (1.0, max(entries, 2.0)) for name in YIELDS})
    return limits


def _minuit_reason(m: Any) -> str:
    fmin = m.fmin
    if fmin is None:
        return "Minuit did not run"
    problems = [
        text
        for flag, text in (
            (fmin.is_above_max_edm, "EDM above the maximum"),
            (fmin.has_reached_call_limit, "call limit reached"),
            (fmin.has_parameters_at_limit, "parameters at a limit"),
            (not fmin.has_posdef_covar, "covariance not positive definite"),
        )
        if flag
    ]
    return "Minuit did not find a valid minimum" + (f" ({', '.join(problems)})" if problems else "")


def _minimise(m: Any, entries: float, *, minos: bool) -> tuple[int, str, str]:
    """Migrad, Hesse and the remedies of the module docstring on a configured Minuit.

    Returns (status, reason, strategy): status 0 with a valid minimum and an accurate
    covariance, 3 without a valid minimum, 4 with an inaccurate covariance (Minuit forced
    it positive definite: a direction the data do not constrain).
    """
    limits = _limits(entries)
    for name in m.parameters:
        m.limits[name] = limits[name]
    # the Crystal Ball tail exponents are not constrained by a 62-bin spectrum: they stay
    # fixed (at values like those of simulation); everything else floats from good starts
    for name in FIXED:
        m.fixed[name] = True
    strategy = "one fit from histogram start values, tail exponents fixed"
    m.migrad()
    if not m.valid:
        # a retry from the minimum found, as Minuit's own strategy 2 would
        strategy = "refit from the first minimum"
        m.migrad()
    m.hesse()
    held: list[str] = []

    def hold_absent_peaks() -> None:
        # a peak the data do not show: its yield sits on the lower bound; hold it there
        nonlocal strategy
        absent = [
            n
            for n in ("n_dplus", "n_ds")
            if not m.fixed[n] and m.values[n] < max(1.5, 3 * m.errors[n])
        ]
        if not absent:
            return
        for name in absent:
            m.values[name] = 1.0
            m.fixed[name] = True
            for shape in _shape_of(name):  # an absent peak has no shape to measure
                m.fixed[shape] = True
        held.extend(absent)
        strategy = f"{', '.join(held)} at the lower bound (peak absent), held fixed"
        m.migrad()

    def fix_tail_onsets() -> None:
        # the Crystal Ball tail onsets are the last weakly constrained parameters
        nonlocal strategy
        onsets = [n for n in ("alpha_ds", "alpha_dplus") if not m.fixed[n]]
        for name in onsets:
            m.values[name] = SHAPE_DEFAULTS[name][0]
            m.fixed[name] = True
        if onsets:
            strategy += "; tail onsets fixed"
            m.migrad()

    def fix_narrow_widths() -> None:
        # a width on its lower bound, narrower than a bin, is a one-bin fluctuation, not a
        # measured resolution: hold it at the detector resolution
        nonlocal strategy
        narrow = [
            n
            for n in ("sigma_ds", "sigma_dplus")
            if not m.fixed[n] and m.values[n] <= SHAPE_DEFAULTS[n][1] * 1.01
        ]
        for name in narrow:
            m.values[name] = SHAPE_DEFAULTS[name][0]
            m.fixed[name] = True
        if narrow:
            strategy += f"; {', '.join(narrow)} at the resolution"
            m.migrad()

    if not (m.valid and m.accurate):
        hold_absent_peaks()
        if not m.valid:
            fix_tail_onsets()
        if not m.valid:
            return 3, _minuit_reason(m), strategy
        m.hesse()
        # an inaccurate covariance means a direction the data do not constrain: hold, in
        # turn, what a spectrum may fail to determine
        for remedy in (hold_absent_peaks, fix_narrow_widths, fix_tail_onsets):
            if m.valid and m.accurate:
                break
            remedy()
            m.hesse()
    if not m.valid:
        return 3, _minuit_reason(m), strategy
    if not m.accurate:
        return 4, "covariance matrix not accurate (forced positive definite)", strategy
    if minos:
        m.minos(*(n for n in m.parameters if not m.fixed[n]))
    return 0, "", strategy


def _result(
    m: Any,
    counts: np.ndarray,
    expected: Callable[[np.ndarray], np.ndarray],
    *,
    minos: bool,
    tic: float,
) -> FitResult:
    """Minimise (``_minimise``) and report: numbers for a converged fit, else the reason.

    ``expected`` gives the expected counts per bin at a parameter vector in Minuit's order.
    """
    entries = float(counts.sum())
    status, reason, strategy = _minimise(m, entries, minos=minos)
    if status:
        return _failed(status, reason, entries, strategy, float(m.fmin.edm))
    floating = [n for n in m.parameters if not m.fixed[n]]
    params: dict[str, dict[str, Any]] = {}
    at_limit = []
    for name in [*SHAPE_DEFAULTS, *YIELDS]:
        entry: dict[str, Any] = {
            "value": float(m.values[name]),
            "error": math.nan,
            "lower": math.nan,
            "upper": math.nan,
            "fixed": name not in floating,
        }
        if name in floating:
            entry["error"] = float(m.errors[name])
            if minos and name in m.merrors:
                entry["lower"] = float(m.merrors[name].lower)
                entry["upper"] = float(m.merrors[name].upper)
            lower, upper = m.limits[name]
            span = (upper - lower) * 1e-4
            if abs(entry["value"] - lower) < span or abs(upper - entry["value"]) < span:
                at_limit.append(name)
        params[name] = entry
    corr = m.covariance.correlation()
    correlation = {a: {b: float(corr[a, b]) for b in floating} for a in floating}
    mu = expected(np.array(m.values))
    with np.errstate(divide="ignore", invalid="ignore"):
        pulls = np.where(mu > 0, (counts - mu) / np.sqrt(np.maximum(mu, 1e-12)), 0.0)
    return FitResult(
        converged=True,
        status=0,
        reason="",
        valid=bool(m.valid),
        edm=float(m.fmin.edm),
        strategy=strategy,
        params=params,
        correlation=correlation,
        chi2=float(np.sum(pulls**2)),
        ndf=int(len(counts) - len(floating)),
        pulls=[float(x) for x in pulls],
        entries=entries,
        fit_time_s=time.perf_counter() - tic,
        at_limit=at_limit,
    )


# -- the engines -------------------------------------------------------------------------
def fit_mass(h: Any, *, minos: bool = False, min_entries: int = 50) -> FitResult:
    """Fit a mass histogram (``hist.Hist``; a nominal slice is taken from bigger ones)."""
    counts, edges = mass_counts(h)
    return fit_counts(counts, edges, minos=minos, min_entries=min_entries)


def fit_counts(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    minos: bool = False,
    min_entries: int = 50,
    gradient: bool = False,
) -> FitResult:
    """Fit bin counts with edges, zfit's loss; see the module docstring for the strategy.

    ``gradient``: False (default) lets Minuit differentiate the loss numerically; True
    gives it the gradient from TensorFlow, as ``zfit.minimize.Minuit`` does by default:
    fewer loss calls (a warm fit ~0.1 s faster), but the gradient graph takes seconds to
    compile, which a cold fit pays (benchmarks/bench_fit.py).
    """
    from iminuit import Minuit

    tic = time.perf_counter()
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if (failed := _unfit(counts, min_entries)) is not None:
        return failed
    model = _model_for(edges)
    model.data.update_data(counts)
    names = model.ORDER
    m = Minuit(
        model.fcn,
        _starts(counts, edges, names),
        grad=model.grad if gradient else None,
        name=names,
    )
    # zfit's errordef, and its tolerance 1e-3 on the EDM in units of errordef (iminuit
    # multiplies its tol by 0.002)
    m.errordef = model.errordef
    m.tol = 1e-3 / 0.002 / model.errordef
    return _result(m, counts, model.counts_at, minos=minos, tic=tic)


def component_counts(edges: np.ndarray, result: FitResult) -> dict[str, np.ndarray]:
    """Expected counts per bin of each component and the total, at the fitted values."""
    model = _model_for(np.asarray(edges, dtype=np.float64))
    for name, p in result.params.items():
        param = model.p[name]
        param.set_value(float(np.clip(p["value"], param.lower, param.upper)))
    out = {name: model.expected(name) for name in YIELDS}
    out["total"] = model.expected()
    return out


def load_result(path: str | Path) -> FitResult:
    return FitResult.from_dict(json.loads(Path(path).read_text()))


# -- an independent engine: iminuit with a closed-form Crystal Ball CDF ------------------------
def model_cdf(x: np.ndarray, p: dict[str, float], lo: float, hi: float) -> np.ndarray:
    """Expected entries below ``x`` of the three-component model truncated to [lo, hi].

    The Crystal Ball CDF is :func:`tau3mu.crystalball.crystal_ball_cdf` (numpy, no
    compilation; the same values as SciPy's and numba-stats' to 1e-15).
    """
    from tau3mu.crystalball import crystal_ball_cdf as cdf

    def cb(alpha: float, n: float, mean: float, sigma: float) -> np.ndarray:
        ends = cdf(np.array([lo, hi]), alpha, n, mean, sigma)
        return (cdf(x, alpha, n, mean, sigma) - ends[0]) / (ends[1] - ends[0])

    slope = p["slope"]
    if abs(slope) < 1e-9:
        background = (x - lo) / (hi - lo)
    else:
        background = np.expm1(slope * (x - lo)) / np.expm1(slope * (hi - lo))
    return (
        p["n_ds"] * cb(p["alpha_ds"], p["n_cb_ds"], p["mean_ds"], p["sigma_ds"])
        + p["n_dplus"] * cb(p["alpha_dplus"], p["n_cb_dplus"], p["mean_dplus"], p["sigma_dplus"])
        + p["n_bkg"] * background
    )


def toy_counts(rng: np.random.Generator, edges: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """A Poisson toy histogram from the model with known parameters (closure tests)."""
    expected = np.diff(model_cdf(np.asarray(edges, dtype=np.float64), params, edges[0], edges[-1]))
    return rng.poisson(np.maximum(expected, 0)).astype(np.float64)


def fit_counts_iminuit(
    counts: np.ndarray, edges: np.ndarray, *, minos: bool = False, min_entries: int = 50
) -> FitResult:
    """The same model and strategy with iminuit's cost and a numpy Crystal Ball CDF.

    Fits in milliseconds; it shares only the start values, parameter ranges and strategy
    with the zfit engine, not the model code, so agreement between the two tests the zfit
    model.
    """
    from iminuit import Minuit
    from iminuit.cost import ExtendedBinnedNLL

    tic = time.perf_counter()
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if (failed := _unfit(counts, min_entries)) is not None:
        return failed
    names = (*YIELDS, *SHAPE_DEFAULTS)

    def model(x, *values):
        return model_cdf(x, dict(zip(names, values, strict=True)), edges[0], edges[-1])

    m = Minuit(ExtendedBinnedNLL(counts, edges, model), *_starts(counts, edges, names), name=names)
    return _result(m, counts, lambda values: np.diff(model(edges, *values)), minos=minos, tic=tic)
