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
from collections.abc import Callable
from typing import Any

import numpy as np

from tau3mu.fit.parameters import PARAMETER_ORDER, SHAPE_DEFAULTS, YIELDS, start_vector
from tau3mu.fit.result import FitResult
from tau3mu.fit.strategy import fit_result, unfit

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
    """zfit objects for one binning, and the loss compiled once for all its fits.

    The loss is zfit's ``ExtendedBinnedNLL`` on ``BinnedSamplerData``, whose counts are
    swapped in place for each histogram (a warm fit). Minuit calls it through TensorFlow
    functions of the parameter vector (order :data:`PARAMETER_ORDER`), compiled on their
    first call: the loss value with the expected counts, and, only with
    ``gradient=True``, the value with its gradient. Minuit's errordef and EDM tolerance
    are those ``zfit.minimize.Minuit`` sets.
    """

    #: order of the parameter vector given to Minuit
    ORDER = PARAMETER_ORDER

    def __init__(self, edges: np.ndarray) -> None:
        zfit = import_zfit()
        import tensorflow as tf

        from tau3mu.fit.zfit_pdfs import binned_pdfs, crystal_ball_pdf

        self.edges = edges
        binning = zfit.binned.VariableBinning(edges, name="mass")
        self.binned_obs = zfit.Space("mass", binning=binning)
        self.p: dict[str, Any] = {}
        for name, (start, lower, upper) in SHAPE_DEFAULTS.items():
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
        background = binned_pdfs()[1](
            self.binned_obs, lam=self.p["slope"], extended=self.p["n_bkg"], name="background"
        )
        self.binned_components = {"n_ds": ds, "n_dplus": dplus, "n_bkg": background}
        self.binned = zfit.pdf.BinnedSumPDF([ds, dplus, background], name="model")
        self.data = zfit.data.BinnedSamplerData(
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

        # autograph off: AutoGraph's conversion of the zfit call tree is slow to trace;
        # XLA (jit_compile) fuses the few hundred operations into one call
        @tf.function(autograph=False, jit_compile=XLA)
        def evaluate(x):
            # the loss, and the expected counts for the pulls (one trace for both)
            assign(x)
            return self.loss.value(full=False), self.binned.counts()

        @tf.function(autograph=False, jit_compile=XLA)
        def value_gradient(x):
            assign(x)
            with tf.GradientTape() as tape:
                loss = self.loss.value(full=False)
            return loss, tape.gradient(loss, vector)

        self._evaluate, self._value_gradient = evaluate, value_gradient

    def fcn(self, x: np.ndarray) -> float:
        """The loss at parameter vector ``x``."""
        return float(self._evaluate(np.asarray(x, dtype=np.float64))[0])

    def grad(self, x: np.ndarray) -> np.ndarray:
        """The loss's gradient at ``x``, from TensorFlow."""
        _, gradient = self._value_gradient(np.asarray(x, dtype=np.float64))
        return np.array([float(g) for g in gradient])

    def counts_at(self, x: np.ndarray) -> np.ndarray:
        """Expected counts per bin at ``x``; leaves the zfit parameters at ``x``."""
        return np.asarray(self._evaluate(np.asarray(x, dtype=np.float64))[1])


_MODELS: dict[tuple[float, ...], ZfitModel] = {}


def model_for(edges: np.ndarray) -> ZfitModel:
    """The :class:`ZfitModel` of this binning, built at its first use in the process."""
    key = tuple(np.round(edges, 9))
    if key not in _MODELS:
        _MODELS[key] = ZfitModel(edges)
    return _MODELS[key]


def fit_counts(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    minos: bool = False,
    min_entries: int = 50,
    gradient: bool = False,
) -> FitResult:
    """Fit bin counts with edges, zfit's loss; see :mod:`tau3mu.fit.strategy`.

    ``gradient``: False (default) lets Minuit differentiate the loss numerically; True
    gives it the gradient from TensorFlow, as ``zfit.minimize.Minuit`` does by default:
    fewer loss calls, but the gradient graph takes seconds to compile, which a cold fit
    pays (benchmarks/bench_fit.py).
    """
    from iminuit import Minuit

    tic = time.perf_counter()
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if (failed := unfit(counts, min_entries)) is not None:
        return failed
    model = model_for(edges)
    model.data.update_data(counts)
    names = model.ORDER
    gradient_function: Callable | None = model.grad if gradient else None
    m = Minuit(model.fcn, start_vector(counts, edges, names), grad=gradient_function, name=names)
    # zfit's errordef, and its tolerance 1e-3 on the EDM in units of errordef (iminuit
    # multiplies its tol by 0.002)
    m.errordef = model.errordef
    m.tol = 1e-3 / 0.002 / model.errordef
    return fit_result(m, counts, model.counts_at, minos=minos, tic=tic)
