"""The default fit engine: zfit's extended binned likelihood, minimised by iminuit.

The model is built once per binning and reused (:func:`model_for`); zfit's binned loss is
compiled (XLA) into a TensorFlow function of the parameter vector on the first fit,
which Minuit calls; a warm fit only swaps the data. The strategy and the result are
:mod:`tau3mu.fit.strategy`'s.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

from tau3mu.fit.histogram import poisson_scale
from tau3mu.fit.parameters import YIELDS, parameter_order, shape_defaults, start_vector
from tau3mu.fit.result import FitResult
from tau3mu.fit.strategy import checked_input, fit_result, unfit

__all__ = ["ZfitModel", "fit_counts", "import_zfit", "model_for"]

#: compile the loss with XLA (benchmarks/bench_fit.py measures with and without)
XLA = True


def import_zfit() -> Any:
    """zfit, with TensorFlow's environment set first (it is read when TensorFlow loads)."""
    if "tensorflow" not in sys.modules:
        # TensorFlow imports Keras 3 (its optimizers, and matplotlib.pyplot with them)
        # unless told to use tf_keras (Keras 2), which is what zfit uses anyway
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        # zfit silences TensorFlow's log; unset, it also warns that it does so
        os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")
    import zfit

    return zfit


class ZfitModel:
    """zfit objects for one binning and background, and the loss compiled once for all fits.

    The loss is zfit's ``ExtendedBinnedNLL`` on ``BinnedSamplerData``, whose counts are
    swapped in place for each histogram (a warm fit). Minuit calls it through TensorFlow
    functions of the parameter vector (order :func:`parameter_order`), compiled on their
    first call: the loss value with the expected counts, and, only with
    ``gradient=True``, the value with its gradient. Minuit's errordef and EDM tolerance
    are those ``zfit.minimize.Minuit`` sets. zfit's binned losses ignore a histogram's
    variances: for a weighted histogram (:meth:`use_data` with variances) the loss is the
    scaled Poisson likelihood of :mod:`tau3mu.fit.histogram`, computed from the same
    model's expected counts, in functions compiled at its first use.
    """

    def __init__(self, edges: np.ndarray, background: str = "exponential") -> None:
        zfit = import_zfit()
        import tensorflow as tf

        self.edges = edges
        self.background = background
        self.ORDER = parameter_order(background)
        self._build(zfit)
        self.data = zfit.data.BinnedSamplerData(
            h=zfit.data.BinnedData.from_tensor(
                space=self.binned_obs, values=np.ones(len(edges) - 1)
            )
        )
        self.loss = zfit.loss.ExtendedBinnedNLL(self.binned, self.data)
        self.errordef = float(self.loss.errordef)
        # the weighted histogram's scaled counts n s and scales s, per bin
        self._scaled_counts = tf.Variable(np.ones(len(edges) - 1), dtype=tf.float64)
        self._scale = tf.Variable(np.ones(len(edges) - 1), dtype=tf.float64)
        self.weighted = False
        vector = [self.p[name] for name in self.ORDER]
        self._evaluate, self._value_gradient = _compiled(
            tf, vector, lambda: self.loss.value(full=False), self.binned.counts
        )
        self._evaluate_scaled, self._value_gradient_scaled = _compiled(
            tf, vector, self._scaled_poisson_nll, self.binned.counts
        )

    def _build(self, zfit: Any) -> None:
        """The parameters and binned PDFs: two Crystal Balls and the background."""
        from tau3mu.fit.zfit_pdfs import binned_pdfs, crystal_ball_pdf

        binning = zfit.binned.VariableBinning(self.edges, name="mass")
        self.binned_obs = zfit.Space("mass", binning=binning)
        self.p: dict[str, Any] = {}
        for name, (start, lower, upper) in shape_defaults(self.background).items():
            self.p[name] = zfit.Parameter(f"tau3mu_{name}", start, lower, upper)
        for name in YIELDS:
            self.p[name] = zfit.Parameter(f"tau3mu_{name}", 100.0, 0.0, 1e9)
        ds, dplus = (
            crystal_ball_pdf(
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
        _, exponential, bernstein = binned_pdfs()
        if self.background == "poly2":
            background = bernstein(
                self.binned_obs,
                b1=self.p["bkg_b1"],
                b2=self.p["bkg_b2"],
                extended=self.p["n_bkg"],
                name="background",
            )
        else:
            background = exponential(
                self.binned_obs, lam=self.p["slope"], extended=self.p["n_bkg"], name="background"
            )
        self.binned_components = {"n_ds": ds, "n_dplus": dplus, "n_bkg": background}
        self.binned = zfit.pdf.BinnedSumPDF([ds, dplus, background], name="model")

    def _scaled_poisson_nll(self) -> Any:
        """-log L of the scaled Poisson counts n s given means mu s, less its value at
        mu = n (a constant)."""
        import tensorflow as tf

        n, mu = self._scaled_counts, self.binned.counts() * self._scale
        return tf.reduce_sum(mu - n + tf.math.xlogy(n, n) - tf.math.xlogy(n, mu))

    def use_data(self, counts: np.ndarray, variances: np.ndarray | None = None) -> None:
        """Fit ``counts`` next (sums of weights with ``variances`` when weighted)."""
        self.data.update_data(counts)
        self.weighted = variances is not None
        if variances is not None:
            scale = poisson_scale(counts, variances)
            self._scaled_counts.assign(counts * scale)
            self._scale.assign(scale)

    def fcn(self, x: np.ndarray) -> float:
        """The loss at parameter vector ``x``."""
        evaluate = self._evaluate_scaled if self.weighted else self._evaluate
        return float(evaluate(np.asarray(x, dtype=np.float64))[0])

    def grad(self, x: np.ndarray) -> np.ndarray:
        """The loss's gradient at ``x``, from TensorFlow."""
        value_gradient = self._value_gradient_scaled if self.weighted else self._value_gradient
        _, gradient = value_gradient(np.asarray(x, dtype=np.float64))
        return np.array([float(g) for g in gradient])

    def counts_at(self, x: np.ndarray) -> np.ndarray:
        """Expected counts per bin at ``x``; leaves the zfit parameters at ``x``."""
        evaluate = self._evaluate_scaled if self.weighted else self._evaluate
        return np.asarray(evaluate(np.asarray(x, dtype=np.float64))[1])


def _compiled(
    tf: Any, vector: list[Any], loss: Callable[[], Any], counts: Callable[[], Any]
) -> tuple[Callable, Callable]:
    """TensorFlow functions of the parameter vector: (loss, expected counts), and (loss,
    gradient); each compiled (XLA) at its first call."""

    def assign(x):
        for i, param in enumerate(vector):
            param.assign(x[i], read_value=False)

    # autograph off: AutoGraph's conversion of the zfit call tree is slow to trace;
    # XLA (jit_compile) fuses the few hundred operations into one call
    @tf.function(autograph=False, jit_compile=XLA)
    def evaluate(x):
        # the loss, and the expected counts for the pulls (one trace for both)
        assign(x)
        return loss(), counts()

    @tf.function(autograph=False, jit_compile=XLA)
    def value_gradient(x):
        assign(x)
        with tf.GradientTape() as tape:
            value = loss()
        return value, tape.gradient(value, vector)

    return evaluate, value_gradient


_MODELS: dict[tuple[str, tuple[float, ...]], ZfitModel] = {}


def model_for(edges: np.ndarray, background: str = "exponential") -> ZfitModel:
    """The :class:`ZfitModel` of this binning and background, built at its first use in
    the process."""
    key = (background, tuple(np.round(edges, 9)))
    if key not in _MODELS:
        _MODELS[key] = ZfitModel(edges, background)
    return _MODELS[key]


def fit_counts(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    minos: bool = False,
    min_entries: int = 50,
    gradient: bool = False,
    variances: np.ndarray | None = None,
    fixed: Mapping[str, float] | None = None,
    background: str = "exponential",
    free: Collection[str] = (),
) -> FitResult:
    """Fit bin counts with edges, zfit's loss; see :mod:`tau3mu.fit.strategy`.

    ``variances``: sums of squared weights of a weighted histogram (None, or equal to
    ``counts``: unweighted); ``fixed``: parameters held at the values given;
    ``free``: tail exponents that float (:func:`~tau3mu.fit.strategy.check_free`);
    ``background``: ``exponential`` or ``poly2``. ``gradient``: False (default) lets
    Minuit differentiate the loss numerically; True gives it the gradient from
    TensorFlow, as ``zfit.minimize.Minuit`` does by default: fewer loss calls, but the
    gradient graph takes seconds to compile, which a cold fit pays
    (benchmarks/bench_fit.py). Raises :class:`~tau3mu.errors.OptionError` for an
    unknown background or a bad ``fixed`` or ``free``.
    """
    from iminuit import Minuit

    tic = time.perf_counter()
    counts, edges, variances, fixed, free = checked_input(
        counts, edges, variances, background, fixed, free
    )
    if (failed := unfit(counts, min_entries, variances)) is not None:
        return failed
    model = model_for(edges, background)
    model.use_data(counts, variances)
    names = model.ORDER
    unit = 1.0 if variances is None else float(variances.sum() / counts.sum())
    gradient_function: Callable | None = model.grad if gradient else None
    m = Minuit(
        model.fcn,
        start_vector(counts, edges, names, background, unit),
        grad=gradient_function,
        name=names,
    )
    # zfit's errordef, and its tolerance 1e-3 on the EDM in units of errordef (iminuit
    # multiplies its tol by 0.002)
    m.errordef = model.errordef
    m.tol = 1e-3 / 0.002 / model.errordef
    return fit_result(
        m,
        counts,
        model.counts_at,
        minos=minos,
        tic=tic,
        background=background,
        fixed=fixed,
        variances=variances,
        free=free,
    )
