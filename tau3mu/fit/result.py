"""The outcome of a mass fit (:class:`FitResult`), written to and read back from JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tau3mu.fit.parameters import TAILS, YIELDS

__all__ = ["FitResult", "failed_result", "load_result", "tail_parameters"]


@dataclass
class FitResult:
    """Outcome of a mass fit; ``converged`` False means: do not use the numbers.

    ``params`` maps each parameter name to its ``value``, ``error`` (NaN when held fixed),
    Minos ``lower``/``upper`` (NaN unless asked for) and ``fixed`` (True when the fit held
    it at its value: the Crystal Ball tail exponents always, others where the strategy of
    :mod:`tau3mu.fit.strategy` had to).
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
        """The yields' entries of ``params``."""
        return {name: self.params[name] for name in YIELDS if name in self.params}

    def value(self, name: str) -> float:
        """The fitted (or fixed) value of parameter ``name``; KeyError if there is none."""
        return self.params[name]["value"]

    def error(self, name: str) -> float:
        """The parabolic error of ``name``; NaN when it was held fixed."""
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
        """A JSON-able dict: everything for a converged fit, the reason for a failed one."""
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
        """Write :meth:`to_dict` to ``path`` atomically; returns the path."""
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
        """A few lines for the terminal: status, each parameter, chi2/ndf."""
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


def failed_result(
    status: int, reason: str, entries: float, strategy: str = "", edm: float = math.nan
) -> FitResult:
    """A result that says the fit failed, and why, with no numbers."""
    return FitResult(
        converged=False,
        status=status,
        reason=reason,
        valid=False,
        edm=edm,
        strategy=strategy,
        entries=entries,
    )


def load_result(path: str | Path) -> FitResult:
    """The :class:`FitResult` saved by :meth:`FitResult.to_json` at ``path``."""
    return FitResult.from_dict(json.loads(Path(path).read_text()))


def tail_parameters(result: FitResult) -> dict[str, float]:
    """The Crystal Ball tails (``alpha_*``, ``n_cb_*``) of each peak the fit measured,
    to pass as ``fixed`` to another fit (data, with the tails of simulation).

    A peak the fit did not measure (its yield held at the lower bound, or below three
    times its error: e.g. no D+ in a Ds+ simulation) has no tails to give, and is left
    out. Raises ValueError for a fit that did not converge.
    """
    if not result.converged:
        raise ValueError(f"the fit did not converge ({result.reason}): it has no tails to give")
    out = {}
    for name in TAILS:
        peak_yield = f"n_{name.rsplit('_', 1)[1]}"
        if name not in result.params or result.is_fixed(peak_yield):
            continue
        if result.value(peak_yield) >= 3 * result.error(peak_yield):
            out[name] = float(result.value(name))
    return out


def _nan_for_null(value: Any) -> Any:
    """JSON's ``null`` back to NaN, inside dicts and lists of numbers."""
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: _nan_for_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_for_null(v) for v in value]
    return value
