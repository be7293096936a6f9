"""The Ds+ / D+ mass fit (SPEC section 4): extended binned maximum likelihood with zfit.

Model: Crystal Ball for the Ds+, Crystal Ball for the D+, exponential background, each
extended with its own yield. The original pre-fitted each part in its own range and
then fitted all together, which did not converge on real 2017B data. Here:

1. start values come from the histogram itself: the background level and slope from a
   log-linear fit of the sidebands, the peak yields from the counts above it;
2. the Crystal Ball tail exponents are fixed (a 62-bin spectrum does not constrain
   them, and floating them is what lets such fits wander off); the rest floats;
3. if the fit is not valid, one refit from its minimum; a fit that still fails is
   reported as failed, with Minuit's reason, and no numbers.

The model is built once per binning and reused: zfit's binned loss is compiled into a
TensorFlow function of the parameter vector on the first fit, which Minuit calls; a warm
fit only swaps the data (see ``_Model``; times in docs/benchmarks.md). Parameter names used in results:
``n_ds, n_dplus, n_bkg, mean_ds, sigma_ds, alpha_ds, n_cb_ds, mean_dplus, sigma_dplus,
alpha_dplus, n_cb_dplus, slope``.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tau3mu.config import DPLUS_MASS, DS_MASS

#: sideband windows (GeV) of the original pre-fit, used for background start values
SIDEBANDS = ((1.65, 1.84), (1.89, 1.925), (1.99, 2.02))
#: (start, lower, upper) per shape parameter, SPEC section 4
SHAPE_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "mean_ds": (1.97, 1.94, 2.10),
    # widths: SPEC allows up to 0.1 / 0.05; the detector resolution is ~12 MeV, and a width
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
    """Outcome of a mass fit; ``converged`` False means: do not use the numbers."""

    converged: bool
    status: int
    reason: str
    valid: bool
    edm: float
    strategy: str = ""
    params: dict[str, dict[str, float]] = field(default_factory=dict)
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
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def table(self) -> str:
        if not self.converged:
            return f"fit FAILED (status {self.status}): {self.reason}"
        lines = [f"fit converged (status {self.status}, edm {self.edm:.2g}, {self.strategy})"]
        for name, p in self.params.items():
            lines.append(f"  {name:<12} {p['value']:>12.5g} +- {p['error']:<10.3g}")
        lines.append(f"  chi2/ndf     {self.chi2:.1f}/{self.ndf}")
        return "\n".join(lines)


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
    import zfit
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
    ~300 calls of a fit and its Hesse; one compiled call is ~0.6 ms. Minuit, its
    settings (strategy 1, errordef and EDM tolerance as zfit sets them) and the retry
    strategy are those of the zfit minimiser before.
    """

    #: order of the parameter vector given to Minuit
    ORDER = (*YIELDS, *SHAPE_DEFAULTS)

    def __init__(self, edges: np.ndarray) -> None:
        import tensorflow as tf
        import zfit
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

    def fcn(self, x: np.ndarray) -> float:
        return float(self._evaluate(np.asarray(x, dtype=np.float64))[0])

    def grad(self, x: np.ndarray) -> np.ndarray:
        _, gradient = self._value_gradient(np.asarray(x, dtype=np.float64))
        return np.array([float(g) for g in gradient])

    def counts_at(self, x: np.ndarray) -> np.ndarray:
        """Expected counts per bin at ``x``; leaves the zfit parameters at ``x``."""
        return np.asarray(self._evaluate(np.asarray(x, dtype=np.float64))[1])

    def expected(self, which: str | None = None) -> np.ndarray:
        pdf = self.binned if which is None else self.binned_components[which]
        return np.asarray(pdf.counts())


_MODELS: dict[tuple[float, ...], _Model] = {}


def _model_for(edges: np.ndarray) -> _Model:
    key = tuple(np.round(edges, 9))
    if key not in _MODELS:
        _MODELS[key] = _Model(edges)
    return _MODELS[key]


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


def fit_mass(h: Any, *, minos: bool = False, min_entries: int = 50) -> FitResult:
    """Fit a mass histogram (``hist.Hist``; a nominal slice is taken from bigger ones)."""
    import time

    counts, edges = mass_counts(h)
    return fit_counts(counts, edges, minos=minos, min_entries=min_entries, _clock=time.perf_counter)


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


def fit_counts(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    minos: bool = False,
    min_entries: int = 50,
    gradient: bool = False,
    _clock: Any = None,
) -> FitResult:
    """Fit bin counts with edges; see the module docstring for the strategy.

    ``gradient``: False (default) lets Minuit differentiate the loss numerically; True
    gives it the gradient from TensorFlow, as ``zfit.minimize.Minuit`` does by default:
    fewer loss calls (a warm fit ~0.3 s instead of ~0.45 s), but the gradient graph
    takes ~1.4 s to compile, which a cold fit pays (benchmarks/bench_fit.py).
    """
    import time

    from iminuit import Minuit

    clock = _clock or time.perf_counter
    tic = clock()
    counts = np.asarray(counts, dtype=np.float64)
    entries = float(counts.sum())
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        return _failed(-1, "histogram has negative or non-finite bin contents", entries)
    if entries < min_entries:
        return _failed(
            -1, f"only {entries:.0f} entries: too few for a three-component fit", entries
        )
    model = _model_for(np.asarray(edges, dtype=np.float64))
    model.data.update_data(counts)
    names = list(model.ORDER)
    starts = {name: spec[0] for name, spec in SHAPE_DEFAULTS.items()}
    starts.update(start_values(counts, edges))
    limits = {name: spec[1:] for name, spec in SHAPE_DEFAULTS.items()}
    limits.update({name: (1.0, max(entries, 2.0)) for name in YIELDS})
    m = Minuit(
        model.fcn,
        [float(np.clip(starts[n], *limits[n])) for n in names],
        grad=model.grad if gradient else None,
        name=names,
    )
    m.errordef = model.errordef
    m.strategy = 1
    # zfit's tolerance 1e-3 on the EDM in units of errordef (iminuit multiplies by 0.002)
    m.tol = 1e-3 / 0.002 / model.errordef
    for name in names:
        m.limits[name] = limits[name]

    # the Crystal Ball tail exponents are not constrained by a 62-bin spectrum: they stay
    # fixed (to SPEC-5-like simulation values); everything else floats from good starts
    for name in FIXED:
        m.fixed[name] = True
    strategy = "one fit from histogram start values, tail exponents fixed"
    m.migrad()
    if not m.valid:
        # a retry from the minimum found, as Minuit's own strategy 2 would
        strategy = "refit from the first minimum"
        m.migrad()
    # a peak indistinguishable from the background under it (~10 % of the range)
    floor = 3 * np.sqrt(max(0.1 * float(m.values["n_bkg"]), 1.0))
    absent = [n for n in ("n_dplus", "n_ds") if m.values[n] < floor]
    if not m.valid and absent:
        # a peak the data do not show: its yield sits on the lower bound; hold it there
        held = [p for name in absent for p in (name, *_shape_of(name))]
        for name in absent:
            m.values[name] = 1.0
        for name in held:
            m.fixed[name] = True
        strategy = f"{', '.join(absent)} at the lower bound (peak absent), held fixed"
        m.migrad()
    if not m.valid:
        # the Crystal Ball tail onsets are the last weakly constrained parameters
        for name in ("alpha_ds", "alpha_dplus"):
            m.values[name] = SHAPE_DEFAULTS[name][0]
            m.fixed[name] = True
        strategy += "; tail onsets fixed"
        m.migrad()
    if not m.valid:
        return _failed(3, _minuit_reason(m), entries, strategy, float(m.fmin.edm))
    m.hesse()
    floating = [n for n in names if not m.fixed[n]]
    cov_ok = (
        m.covariance is not None
        and not m.fmin.hesse_failed
        and all(np.isfinite(m.errors[n]) for n in floating)
    )
    if not cov_ok:
        return _failed(
            4, "covariance matrix not positive definite", entries, strategy, float(m.fmin.edm)
        )
    if minos:
        m.minos(*floating)
    params: dict[str, dict[str, float]] = {}
    at_limit = []
    for name in [*SHAPE_DEFAULTS, *YIELDS]:
        entry = {
            "value": float(m.values[name]),
            "error": math.nan,
            "lower": math.nan,
            "upper": math.nan,
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
    expected = model.counts_at(np.array(m.values))
    with np.errstate(divide="ignore", invalid="ignore"):
        pulls = np.where(
            expected > 0, (counts - expected) / np.sqrt(np.maximum(expected, 1e-12)), 0.0
        )
    chi2 = float(np.sum(pulls**2))
    ndf = int(len(counts) - len(floating))
    return FitResult(
        converged=True,
        status=0,
        reason="",
        valid=bool(m.valid),
        edm=float(m.fmin.edm),
        strategy=strategy,
        params=params,
        correlation=correlation,
        chi2=chi2,
        ndf=ndf,
        pulls=[float(x) for x in pulls],
        entries=entries,
        fit_time_s=clock() - tic,
        at_limit=at_limit,
    )


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


# -- an independent engine: iminuit with numba-stats ---------------------------------------
def model_cdf(x: np.ndarray, p: dict[str, float], lo: float, hi: float) -> np.ndarray:
    """Expected entries below ``x`` of the three-component model truncated to [lo, hi]."""
    from numba_stats import crystalball

    def cb(alpha: float, n: float, mean: float, sigma: float) -> np.ndarray:
        ends = crystalball.cdf(np.array([lo, hi]), alpha, n, mean, sigma)
        return (crystalball.cdf(x, alpha, n, mean, sigma) - ends[0]) / (ends[1] - ends[0])

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
    counts: np.ndarray, edges: np.ndarray, *, min_entries: int = 50
) -> FitResult:
    """The same model and strategy with iminuit and numba-stats CDFs: the cross-check.

    Fits in milliseconds; it shares only the start values and parameter ranges with the
    zfit engine, so agreement between the two tests the zfit model and minimisation.
    """
    import time

    from iminuit import Minuit
    from iminuit.cost import ExtendedBinnedNLL

    tic = time.perf_counter()
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    entries = float(counts.sum())
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        return _failed(-1, "histogram has negative or non-finite bin contents", entries)
    if entries < min_entries:
        return _failed(
            -1, f"only {entries:.0f} entries: too few for a three-component fit", entries
        )
    names = [*YIELDS, *SHAPE_DEFAULTS]

    def model(x, *values):
        return model_cdf(x, dict(zip(names, values, strict=True)), edges[0], edges[-1])

    starts = {name: spec[0] for name, spec in SHAPE_DEFAULTS.items()}
    starts.update(start_values(counts, edges))
    cost = ExtendedBinnedNLL(counts, edges, model)
    m = Minuit(cost, *(starts[n] for n in names), name=names)
    for name, (_, lower, upper) in SHAPE_DEFAULTS.items():
        m.limits[name] = (lower, upper)
    for name in YIELDS:
        m.limits[name] = (1.0, max(entries, 2.0))
    for name in FIXED:
        m.fixed[name] = True
    strategy = "one fit from histogram start values, tail exponents fixed"
    m.migrad()
    if not m.valid:
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
        return _failed(
            3, "Minuit did not find a valid minimum", entries, strategy, float(m.fmin.edm)
        )
    m.hesse()
    # an inaccurate covariance (Minuit forced it positive definite) means a direction the
    # data do not constrain: hold, in turn, what a spectrum may fail to determine
    for remedy in (hold_absent_peaks, fix_narrow_widths, fix_tail_onsets):
        if m.valid and m.accurate:
            break
        remedy()
        m.hesse()
    if not m.valid:
        return _failed(
            3, "Minuit did not find a valid minimum", entries, strategy, float(m.fmin.edm)
        )
    if not m.accurate:
        return _failed(4, "covariance matrix not accurate", entries, strategy, float(m.fmin.edm))
    floating = [n for n in names if not m.fixed[n]]
    params = {
        n: {
            "value": float(m.values[n]),
            "error": float(m.errors[n]) if not m.fixed[n] else math.nan,
            "lower": math.nan,
            "upper": math.nan,
        }
        for n in [*SHAPE_DEFAULTS, *YIELDS]
    }
    corr = m.covariance.correlation()
    correlation = {a: {b: float(corr[a, b]) for b in floating} for a in floating}
    expected = np.diff(model(edges, *m.values))
    pulls = (counts - expected) / np.sqrt(np.maximum(expected, 1e-12))
    return FitResult(
        converged=True,
        status=0,
        reason="",
        valid=True,
        edm=float(m.fmin.edm),
        strategy=strategy,
        params=params,
        correlation=correlation,
        chi2=float(np.sum(pulls**2)),
        ndf=len(counts) - len(floating),
        pulls=[float(p) for p in pulls],
        entries=entries,
        fit_time_s=time.perf_counter() - tic,
    )
